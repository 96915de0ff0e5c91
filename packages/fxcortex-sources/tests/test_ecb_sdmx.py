"""The ECB SDMX source: recorded answers, both CSV shapes, and every way a payload can be bad."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, QuoteKind, Source, SourceError
from fxcortex.core.currencies import KNOWN_CODES
from fxcortex.sources import ecb
from fxcortex.sources.ecb_sdmx import EcbSdmxSource, fxcortex_register_sources, parse
from fxcortex.sources.testing import recorded_transport

FIXTURES = Path(__file__).parent / "fixtures" / "http"
URL = "https://data-api.ecb.europa.eu/service/data/EXR/D..EUR.SP00.A"
TODAY = date(2026, 11, 28)

FULL_HEADER = (
    "KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE,OBS_STATUS,"
    "OBS_CONF,OBS_PRE_BREAK,OBS_COM,TIME_FORMAT,BREAKS,COLLECTION,COMPILING_ORG,DISS_ORG,"
    "DOM_SER_IDS,PUBL_ECB,PUBL_MU,PUBL_PUBLIC,UNIT_INDEX_BASE,COMPILATION,COVERAGE,DECIMALS,"
    "NAT_TITLE,SOURCE_AGENCY,SOURCE_PUB,TITLE,TITLE_COMPL,UNIT,UNIT_MULT"
)


def full_row(code: str, day: str, value: str, *, unit_mult: str = "0", denom: str = "EUR") -> str:
    """A row of the full csvdata shape, its titles quoted because they hold commas."""
    return (
        f"EXR.D.{code}.EUR.SP00.A,D,{code},{denom},SP00,A,{day},{value},A,F,,,P1D,,A,,,,,,,,,,4,,"
        f'4F0,,"{code}/EUR","ECB reference exchange rate, {code}/Euro, 2:15 pm (C.E.T.)",'
        f"{code},{unit_mult}"
    )


GOOD_SHORT = (
    b"FREQ,CURRENCY,TIME_PERIOD,OBS_VALUE\n"
    b"D,USD,2026-03-02,1.1698\n"
    b"D,USD,2026-03-03,1.1632\n"
    b"D,GBP,2026-03-02,0.8739\n"
)
GOOD_FULL = (
    "\r\n".join(
        [
            FULL_HEADER,
            full_row("USD", "2026-03-02", "1.1698"),
            full_row("JPY", "2026-03-02", "183.12"),
            full_row("RUB", "2026-03-02", "NaN"),
        ]
    )
    + "\r\n"
).encode()


def fetch_recorded(folder: str, window: FetchWindow) -> list[Quote]:
    context = FetchContext(http_transport=recorded_transport(FIXTURES / folder))
    return list(EcbSdmxSource().fetch(window, context))


def refusal(payload: bytes, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        parse(payload, label="data.csv", today=TODAY, **options)  # type: ignore[arg-type]
    assert caught.value.source == "ecb-sdmx"
    return caught.value


# The source


def test_the_source_declares_the_ecb_schedule_currencies_and_history() -> None:
    source = EcbSdmxSource()

    assert isinstance(source, Source)
    assert source.name == "ecb-sdmx"
    assert source.schedule.cron == "0 16 * * 1-5"
    assert source.schedule.timezone == "Europe/Berlin"
    assert source.history_since == date(1999, 1, 4)
    assert source.observation_interval == timedelta(days=1)
    assert {"USD", "JPY", "GBP", "CYP", "TRL"} <= set(source.currencies)
    assert "EUR" not in source.currencies


def test_the_plugin_registers_one_ecb_sdmx_source() -> None:
    registered: list[object] = []

    fxcortex_register_sources(registered.append)

    assert registered == [EcbSdmxSource()]


def test_an_open_ended_window_asks_from_its_first_day_without_an_end_period() -> None:
    url = EcbSdmxSource().url(FetchWindow(since=date(2025, 1, 1)))

    assert url == f"{URL}?format=csvdata&startPeriod=2025-01-01"


def test_a_closed_window_asks_for_both_ends_and_an_open_start_for_the_first_fix() -> None:
    source = EcbSdmxSource()

    assert source.url(FetchWindow(since=date(2026, 3, 2), until=date(2026, 3, 6))) == (
        f"{URL}?format=csvdata&startPeriod=2026-03-02&endPeriod=2026-03-06"
    )
    assert source.url(FetchWindow(until=date(2000, 1, 31))) == (
        f"{URL}?format=csvdata&startPeriod=1999-01-04&endPeriod=2000-01-31"
    )


def test_symbols_narrow_the_series_key_and_the_declared_currencies() -> None:
    source = EcbSdmxSource().configure(symbols="usd, GBP")

    assert source.symbols == ("USD", "GBP")
    assert source.currencies == ("USD", "GBP")
    assert source.url(FetchWindow(since=date(2026, 3, 2))).startswith(
        "https://data-api.ecb.europa.eu/service/data/EXR/D.USD+GBP.EUR.SP00.A?"
    )


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"location": "x"}, "unknown options ['location']"),
        ({"symbols": "USD,EUR"}, "'EUR' is not a currency the ECB quotes"),
        ({"symbols": "USX"}, "'USX' is not a currency the ECB quotes"),
        ({"timeout": "0"}, "timeout '0' is not a positive number of seconds"),
        ({"timeout": "soon"}, "timeout 'soon' is not a positive number of seconds"),
        ({"backoff": "-1"}, "backoff '-1' is not a positive number of seconds"),
        ({"max_attempts": "0"}, "max_attempts '0' is not a whole number of at least 1"),
    ],
)
def test_configure_refuses_unknown_options_and_bad_values(
    options: dict[str, str], reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        EcbSdmxSource().configure(**options)

    assert caught.value.source == "ecb-sdmx"
    assert reason in caught.value.reason


# Recorded answers of the API (the short four-column CSV)


def test_the_recorded_recent_answer_gives_29_currencies_on_22_days() -> None:
    quotes = fetch_recorded("ecb_recent", FetchWindow(since=date(2026, 2, 17)))

    assert len(quotes) == 29 * 22
    per_currency = Counter(quote.pair.quote.code for quote in quotes)
    assert len(per_currency) == 29 and set(per_currency.values()) == {22}
    assert {quote.pair.base.code for quote in quotes} == {"EUR"}
    assert {quote.kind for quote in quotes} == {QuoteKind.MID}
    usd = {quote.observed_at: quote.rate for quote in quotes if quote.pair == Pair.of("EUR", "USD")}
    # 2026-03-18 is in winter time: the 14:15 concertation in Frankfurt is 13:15 UTC
    assert usd[datetime(2026, 3, 18, 13, 15, tzinfo=UTC)] == Decimal("1.15")
    assert usd[datetime(2026, 3, 2, 13, 15, tzinfo=UTC)] == Decimal("1.1698")


def test_the_recorded_history_answer_is_read_to_its_last_row() -> None:
    quotes = fetch_recorded("ecb_historical", FetchWindow(since=date(2025, 1, 1)))

    # 8,069 lines: the header, 8,067 observations and an empty ",,," row that closes the recording
    assert len(quotes) == 8067
    jpy = next(quote for quote in quotes if quote.pair == Pair.of("EUR", "JPY"))
    assert jpy.rate == Decimal("162.04")
    assert jpy.observed_at == datetime(2025, 1, 2, 13, 15, tzinfo=UTC)
    last = quotes[-1]
    assert last.pair == Pair.of("EUR", "THB") and last.rate == Decimal("37.147")
    # summer time: 14:15 in Frankfurt is 12:15 UTC
    assert last.observed_at == datetime(2025, 5, 7, 12, 15, tzinfo=UTC)


def test_bgn_stops_when_bulgaria_adopts_the_euro() -> None:
    quotes = fetch_recorded("ecb_historical", FetchWindow(since=date(2025, 1, 1)))

    bgn = [quote for quote in quotes if quote.pair.quote.code == "BGN"]
    assert len(bgn) == 255
    assert max(quote.observed_at for quote in bgn).date() == date(2025, 12, 31)
    assert {quote.rate for quote in bgn} == {Decimal("1.9558")}


def test_the_window_keeps_only_its_days_even_when_the_answer_has_more() -> None:
    payload = (FIXTURES / "ecb_historical" / "000.body").read_bytes()

    quotes = parse(payload, window=FetchWindow(since=date(2025, 3, 31), until=date(2025, 3, 31)))

    assert len(quotes) == 27
    gbp = next(quote for quote in quotes if quote.pair.quote.code == "GBP")
    assert gbp.rate == Decimal("0.83536")
    assert gbp.observed_at == datetime(2025, 3, 31, 12, 15, tzinfo=UTC)


def test_observed_at_is_the_instant_the_ecb_files_source_gives_the_same_fix() -> None:
    quotes = parse(GOOD_SHORT, today=TODAY)

    assert {quote.observed_at for quote in quotes} == {
        ecb.concertation_time(date(2026, 3, 2)),
        ecb.concertation_time(date(2026, 3, 3)),
    }


def test_an_unchanged_answer_yields_nothing() -> None:
    context = FetchContext(http_transport=httpx.MockTransport(lambda request: httpx.Response(304)))

    assert list(EcbSdmxSource().fetch(FetchWindow(since=date(2026, 3, 2)), context)) == []


# The full csvdata shape


def test_the_full_header_is_read_by_column_name_with_quoted_titles() -> None:
    quotes = parse(GOOD_FULL, today=TODAY)

    assert [(str(quote.pair), quote.rate) for quote in quotes] == [
        ("EUR/USD", Decimal("1.1698")),
        ("EUR/JPY", Decimal("183.12")),
    ]


def test_columns_may_come_in_any_order() -> None:
    payload = b"OBS_VALUE,TIME_PERIOD,CURRENCY\n1.1698,2026-03-02,USD\n"

    (quote,) = parse(payload, today=TODAY)

    assert quote.pair == Pair.of("EUR", "USD") and quote.rate == Decimal("1.1698")


def test_empty_and_nan_values_are_skipped() -> None:
    payload = (
        b"CURRENCY,TIME_PERIOD,OBS_VALUE\n"
        b"USD,2026-03-02,\nRUB,2026-03-02,NaN\nGBP,2026-03-02,0.8739\n"
    )

    quotes = parse(payload, today=TODAY)

    assert [str(quote.pair) for quote in quotes] == ["EUR/GBP"]


def test_a_unit_multiplier_scales_the_value_by_its_power_of_ten() -> None:
    payload = "\n".join([FULL_HEADER, full_row("IDR", "2026-03-02", "19.71", unit_mult="3")])

    (quote,) = parse(payload.encode(), today=TODAY)

    assert quote.rate == Decimal("19710")


def test_an_empty_answer_means_no_observations_in_the_period() -> None:
    assert parse(b"", today=TODAY) == []
    assert parse(b"FREQ,CURRENCY,TIME_PERIOD,OBS_VALUE\n", today=TODAY) == []


# Bad payloads


def test_an_html_page_served_as_data_is_refused() -> None:
    error = refusal(b"<!DOCTYPE html><html><body>Service unavailable</body></html>")

    assert error.location == "data.csv"
    assert "HTML page" in error.reason


def test_bytes_that_are_not_utf8_are_refused() -> None:
    error = refusal("CURRENCY,TIME_PERIOD,OBS_VALUE\nUSD,2026-03-02,1,1698 €\n".encode("cp1252"))

    assert "not UTF-8" in error.reason


def test_a_header_without_the_required_columns_is_refused() -> None:
    error = refusal(b"FREQ,CURRENCY,DATE,VALUE\nD,USD,2026-03-02,1.1698\n")

    assert error.location == "data.csv line 1"
    assert "lacks TIME_PERIOD, OBS_VALUE" in error.reason


def test_a_truncated_row_is_refused_naming_its_line() -> None:
    error = refusal(GOOD_SHORT[:-9])

    assert error.location == "data.csv line 4"
    assert "3 cells for 4 columns" in error.reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1.16x", "rate '1.16x' is not a number"),
        ("-1.16", "rate '-1.16' is not a positive number"),
        ("0", "rate '0' is not a positive number"),
        ("Infinity", "rate 'Infinity' is not a positive number"),
    ],
)
def test_a_value_that_is_not_a_positive_number_is_refused(value: str, reason: str) -> None:
    payload = f"FREQ,CURRENCY,TIME_PERIOD,OBS_VALUE\nD,USD,2026-03-02,{value}\n".encode()

    error = refusal(payload)

    assert error.location == "data.csv line 2 column OBS_VALUE"
    assert error.reason == reason


def test_an_unknown_currency_code_is_refused() -> None:
    error = refusal(b"FREQ,CURRENCY,TIME_PERIOD,OBS_VALUE\nD,XYZ,2026-03-02,1.5\n")

    assert error.location == "data.csv line 2 column CURRENCY"
    assert "unknown currency code 'XYZ'" in error.reason


def test_the_euro_quoted_against_itself_is_refused() -> None:
    error = refusal(b"FREQ,CURRENCY,TIME_PERIOD,OBS_VALUE\nD,EUR,2026-03-02,1\n")

    assert "EUR quoted against itself" in error.reason


def test_the_same_currency_twice_on_one_day_is_refused() -> None:
    error = refusal(GOOD_SHORT + b"D,USD,2026-03-02,1.1700\n")

    assert error.location == "data.csv line 5"
    assert "USD on 2026-03-02 appears twice" in error.reason


def test_a_day_in_the_future_is_refused() -> None:
    error = refusal(b"FREQ,CURRENCY,TIME_PERIOD,OBS_VALUE\nD,USD,2026-12-01,1.1\n")

    assert "2026-12-01 is in the future" in error.reason


def test_a_period_that_is_not_a_day_is_refused() -> None:
    error = refusal(b"FREQ,CURRENCY,TIME_PERIOD,OBS_VALUE\nD,USD,2026-03,1.1\n")

    assert error.location == "data.csv line 2 column TIME_PERIOD"
    assert "'2026-03' is not a day" in error.reason


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (
            full_row("USD", "2026-03-02", "1.1", denom="USD").replace("USD,USD", "GBP,USD", 1),
            "CURRENCY_DENOM",
        ),
        (full_row("USD", "2026-03-02", "1.1").replace(",D,USD,", ",M,USD,"), "FREQ"),
        (full_row("USD", "2026-03-02", "1.1").replace(",SP00,", ",EN00,"), "EXR_TYPE"),
    ],
)
def test_a_series_other_than_the_daily_euro_reference_rate_is_refused(
    row: str, column: str
) -> None:
    error = refusal(f"{FULL_HEADER}\n{row}\n".encode())

    assert error.location == f"data.csv line 2 column {column}"
    assert "not a daily euro reference rate" in error.reason


def test_a_unit_multiplier_that_is_not_a_power_of_ten_is_refused() -> None:
    payload = f"{FULL_HEADER}\n{full_row('USD', '2026-03-02', '1.1', unit_mult='x')}\n"

    error = refusal(payload.encode())

    assert error.location == "data.csv line 2 column UNIT_MULT"


def test_a_payload_cut_inside_a_quoted_title_is_refused() -> None:
    payload = "\n".join([FULL_HEADER, full_row("USD", "2026-03-02", "1.1")]).encode()

    error = refusal(payload[: payload.index(b"2:15 pm")])

    assert error.location == "data.csv line 2"
    assert "malformed CSV" in error.reason


# HTTP failures


def test_a_404_is_a_source_error_naming_the_url() -> None:
    context = FetchContext(
        http_transport=httpx.MockTransport(
            lambda request: httpx.Response(404, json={"detail": "No results found."})
        )
    )

    with pytest.raises(SourceError) as caught:
        list(EcbSdmxSource().fetch(FetchWindow(since=date(2026, 3, 2)), context))

    assert caught.value.source == "ecb-sdmx"
    assert "HTTP 404" in caught.value.reason
    assert caught.value.location == f"{URL}?format=csvdata&startPeriod=2026-03-02"


def test_server_errors_fail_after_the_configured_attempts() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    source = EcbSdmxSource().configure(max_attempts="3", backoff="0")

    with pytest.raises(SourceError, match="after 3 attempts: HTTP 503"):
        list(source.fetch(FetchWindow(), FetchContext(http_transport=httpx.MockTransport(handler))))
    assert len(calls) == 3


# Anything else is a SourceError, never another exception


def check_outcome(payload: bytes) -> None:
    """Parsing either gives valid euro quotes or raises a `SourceError` of this source."""
    try:
        quotes = parse(payload, label="fuzzed", today=TODAY)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "ecb-sdmx"
        assert refused.reason
        assert refused.location and refused.location.startswith("fuzzed")
    for quote in quotes:
        assert quote.pair.base.code == "EUR"
        assert quote.pair.quote.code in KNOWN_CODES
        assert quote.rate.is_finite() and quote.rate > 0
        assert quote.kind is QuoteKind.MID
        assert quote.observed_at.tzinfo is UTC
        assert quote.observed_at.date() <= TODAY + timedelta(days=1)
    assert len({quote.key for quote in quotes}) == len(quotes)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(min_value=0, max_value=2000),
        st.binary(min_size=1, max_size=6)
        | st.sampled_from([b",", b"\n", b'"', b"NaN", b"EUR", b"-", b"e9", b"\xff", b"\x00"]),
    ),
    min_size=1,
    max_size=4,
)


def mutate(payload: bytes, changes: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(payload)
    for kind, position, chunk in changes:
        at = position % (len(data) + 1)
        if kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=300).map(lambda tail: b"CURRENCY,TIME_PERIOD,OBS_VALUE\n" + tail),
    )
)
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(payload: bytes) -> None:
    check_outcome(payload)


@given(mutations)
@example([("replace", 60, b"UNIT_MULT")])
def test_a_mutated_short_csv_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD_SHORT, changes))


@given(mutations)
def test_a_mutated_full_csv_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD_FULL, changes))
