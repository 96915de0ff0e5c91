"""The Norges Bank source: the recorded SDMX answer, and every way a payload can be bad."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, QuoteKind, Source, SourceError
from fxcortex.sources.norges_bank import NorgesBankSource, fxcortex_register_sources, parse
from fxcortex.sources.testing import recorded_transport

FIXTURES = Path(__file__).parent / "fixtures" / "http" / "nb"
RECORDED = (FIXTURES / "000.body").read_bytes()
URL = "https://data.norges-bank.no/api/data/EXR/B..NOK.SP"
WINDOW = FetchWindow(since=date(2026, 3, 16), until=date(2026, 3, 24))
TODAY = date(2026, 11, 28)
HEADER = (
    "FREQ,BASE_CUR,QUOTE_CUR,TENOR,DECIMALS,CALCULATED,UNIT_MULT,COLLECTION,TIME_PERIOD,OBS_VALUE"
)


def csv_payload(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


GOOD = csv_payload(
    "B,USD,NOK,SP,4,false,0,C,2026-06-15,10.0112",
    "B,SEK,NOK,SP,2,false,2,C,2026-06-15,104.05",
    "B,TWI,NOK,SP,2,true,0,C,2026-06-15,125.11",
)


def fetch_recorded(window: FetchWindow) -> list[Quote]:
    context = FetchContext(http_transport=recorded_transport(FIXTURES))
    return list(NorgesBankSource().fetch(window, context))


def serving(handler: Callable[[httpx.Request], httpx.Response]) -> FetchContext:
    return FetchContext(http_transport=httpx.MockTransport(handler))


def refusal(payload: bytes, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        parse(payload, label="nb.csv", today=TODAY, **options)  # type: ignore[arg-type]
    assert caught.value.source == "norges-bank"
    return caught.value


def on(quotes: list[Quote], code: str, day: date) -> Quote:
    (quote,) = [q for q in quotes if q.pair.base.code == code and q.observed_at.date() == day]
    return quote


# The source


def test_the_source_declares_its_schedule_in_oslo_its_currencies_and_history() -> None:
    source = NorgesBankSource()

    assert isinstance(source, Source)
    assert source.name == "norges-bank"
    assert source.schedule.timezone == "Europe/Oslo"
    assert source.schedule.cron == "0 16 * * 1-5"
    assert source.history_since == date(1999, 1, 4)
    assert source.observation_interval == timedelta(days=1)
    assert len(source.currencies) == 36 and "XDR" in source.currencies
    assert not {"NOK", "I44", "TWI"} & set(source.currencies)


def test_the_plugin_registers_the_norges_bank_source() -> None:
    registered: list[object] = []

    fxcortex_register_sources(registered.append)

    assert registered == [NorgesBankSource()]


def test_the_url_asks_for_the_window_and_leaves_an_open_end_open() -> None:
    source = NorgesBankSource()

    assert source.url(WINDOW) == (
        f"{URL}?format=csvdata&startPeriod=2026-03-16&endPeriod=2026-03-24"
    )
    assert source.url(FetchWindow(since=date(2026, 3, 16))) == (
        f"{URL}?format=csvdata&startPeriod=2026-03-16"
    )
    assert source.url(FetchWindow()) == f"{URL}?format=csvdata&startPeriod=1999-01-04"
    assert source.url(FetchWindow(since=date(1990, 1, 1))).endswith("startPeriod=1999-01-04")


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"symbols": "USD"}, "unknown options ['symbols']"),
        ({"timeout": "soon"}, "timeout 'soon' is not a positive number of seconds"),
        ({"backoff": "-1"}, "backoff '-1' is not a positive number of seconds"),
        ({"max_attempts": "1.5"}, "max_attempts '1.5' is not a whole number of at least 1"),
    ],
)
def test_configure_refuses_unknown_options_and_bad_values(
    options: dict[str, str], reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        NorgesBankSource().configure(**options)

    assert caught.value.source == "norges-bank"
    assert reason in caught.value.reason


def test_configure_sets_the_http_options_on_a_copy() -> None:
    source = NorgesBankSource().configure(timeout="5", max_attempts="2", backoff="0")

    assert (source.timeout, source.max_attempts, source.backoff) == (5.0, 2, 0.0)
    assert NorgesBankSource().max_attempts == 5


# The recorded answer


def test_the_recorded_answer_gives_36_currencies_in_kroner_on_7_days() -> None:
    quotes = fetch_recorded(WINDOW)

    assert len(quotes) == 36 * 7
    assert {quote.pair.quote.code for quote in quotes} == {"NOK"}
    assert set(Counter(quote.pair.base.code for quote in quotes).values()) == {7}
    assert {quote.kind for quote in quotes} == {QuoteKind.MID}


def test_the_indices_i44_and_twi_are_dropped_and_xdr_is_kept() -> None:
    quotes = fetch_recorded(WINDOW)

    codes = {quote.pair.base.code for quote in quotes}
    assert not {"I44", "TWI"} & codes
    assert on(quotes, "XDR", date(2026, 3, 24)).rate == Decimal("13.2271")


def test_usd_is_kroner_per_dollar_recorded_at_1415_oslo() -> None:
    quotes = fetch_recorded(WINDOW)

    usd = on(quotes, "USD", date(2026, 3, 16))
    assert usd.pair == Pair.of("USD", "NOK")
    assert usd.rate == Decimal("9.7134")
    # 14:15 CET (before the switch to summer time on 29 March) is 13:15 UTC
    assert usd.observed_at == datetime(2026, 3, 16, 13, 15, tzinfo=UTC)


def test_unit_mult_2_means_per_100_units() -> None:
    quotes = fetch_recorded(WINDOW)

    assert on(quotes, "DKK", date(2026, 3, 16)).rate == Decimal("1.4921")  # 149.21 per 100
    assert on(quotes, "JPY", date(2026, 3, 16)).rate == Decimal("0.061037")  # 6.1037 per 100
    assert on(quotes, "ISK", date(2026, 3, 24)).rate == Decimal("0.078")  # 7.8 per 100
    assert on(quotes, "VND", date(2026, 3, 24)).rate == Decimal("0.000368")  # 0.0368 per 100
    assert on(quotes, "EUR", date(2026, 3, 24)).rate == Decimal("11.2305")  # UNIT_MULT 0


def test_a_summer_day_is_recorded_at_1215_utc_and_keeps_its_digits() -> None:
    quotes = parse(GOOD, today=TODAY)

    assert [(str(quote.pair), str(quote.rate)) for quote in quotes] == [
        ("USD/NOK", "10.0112"),
        ("SEK/NOK", "1.0405"),
    ]
    assert {quote.observed_at for quote in quotes} == {datetime(2026, 6, 15, 12, 15, tzinfo=UTC)}


def test_the_window_keeps_only_its_days() -> None:
    quotes = parse(RECORDED, window=FetchWindow(since=date(2026, 3, 23)), today=TODAY)

    assert {quote.observed_at.date() for quote in quotes} == {date(2026, 3, 23), date(2026, 3, 24)}
    assert len(quotes) == 36 * 2


def test_columns_are_found_by_name_in_any_order() -> None:
    payload = csv_payload(
        "10.0112,2026-06-15,0,NOK,USD", header="OBS_VALUE,TIME_PERIOD,UNIT_MULT,QUOTE_CUR,BASE_CUR"
    )

    (quote,) = parse(payload, today=TODAY)

    assert (quote.pair, quote.rate) == (Pair.of("USD", "NOK"), Decimal("10.0112"))


def test_an_empty_or_nan_value_is_a_day_without_a_rate() -> None:
    payload = csv_payload(
        "B,USD,NOK,SP,4,false,0,C,2026-06-15,",
        "B,EUR,NOK,SP,4,false,0,C,2026-06-15,NaN",
        "B,GBP,NOK,SP,4,false,0,C,2026-06-15,13.4",
        "",
    )

    assert [str(quote.pair) for quote in parse(payload, today=TODAY)] == ["GBP/NOK"]


def test_an_empty_body_and_a_header_alone_are_no_quotes() -> None:
    assert parse(csv_payload(), today=TODAY) == []


def test_an_unchanged_answer_yields_nothing() -> None:
    assert list(NorgesBankSource().fetch(WINDOW, serving(lambda r: httpx.Response(304)))) == []


# Bad payloads


def test_an_html_page_served_as_data_is_refused() -> None:
    error = refusal(b"<!DOCTYPE html><html><body>Maintenance</body></html>")

    assert "HTML page" in error.reason
    assert error.location == "nb.csv"


def test_text_that_is_not_utf8_is_refused() -> None:
    error = refusal(HEADER.encode("utf-16"))

    assert "not UTF-8 text" in error.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "the header lacks BASE_CUR, QUOTE_CUR, UNIT_MULT, TIME_PERIOD, OBS_VALUE"),
        (b"FREQ,BASE_CUR,QUOTE_CUR,TIME_PERIOD,OBS_VALUE\n", "the header lacks UNIT_MULT"),
        (
            b"BASE_CUR,QUOTE_CUR,UNIT_MULT,TIME_PERIOD,OBS_VALUE,OBS_VALUE\n",
            "column OBS_VALUE appears twice",
        ),
        (b'"BASE_CUR,QUOTE_CUR\n', "malformed CSV"),
    ],
)
def test_a_payload_without_the_required_header_is_refused(payload: bytes, reason: str) -> None:
    error = refusal(payload)

    assert reason in error.reason
    assert error.location == "nb.csv line 1"


@pytest.mark.parametrize(
    ("row", "reason", "column"),
    [
        ("B,USD,NOK,SP,4,false,0,C,2026-06-15,n/a", "rate 'n/a' is not a number", "OBS_VALUE"),
        ("B,USD,NOK,SP,4,false,0,C,2026-06-15,10,01", "11 cells for 10 columns", None),
        ("B,USD,NOK,SP,4,false,0,C,2026-06-15", "9 cells for 10 columns", None),
        ("B,USD,NOK,SP,4,false,0,C,2026-06-15,-10.0", "is not a positive number", "OBS_VALUE"),
        ("B,USD,NOK,SP,4,false,0,C,2026-06-15,0.0000", "is not a positive number", "OBS_VALUE"),
        ("B,USD,NOK,SP,4,false,0,C,2026-06-15,Infinity", "is not a number", "OBS_VALUE"),
        ("B,USD,NOK,SP,4,false,0,C,2026-06-15,1_0", "is not a number", "OBS_VALUE"),
        ("B,USD,NOK,SP,4,false,-2,C,2026-06-15,10.0", "UNIT_MULT '-2' is not", "UNIT_MULT"),
        ("B,USD,NOK,SP,4,false,,C,2026-06-15,10.0", "UNIT_MULT '' is not", "UNIT_MULT"),
        ("B,USD,NOK,SP,4,false,19,C,2026-06-15,10.0", "from 0 to 18", "UNIT_MULT"),
        ("B,XYZ,NOK,SP,4,false,0,C,2026-06-15,10.0", "unknown currency code 'XYZ'", "BASE_CUR"),
        ("B,NOK,NOK,SP,4,false,0,C,2026-06-15,1", "NOK quoted against itself", "BASE_CUR"),
        ("B,USD,SEK,SP,4,false,0,C,2026-06-15,10.0", "QUOTE_CUR is 'SEK'", "QUOTE_CUR"),
        ("M,USD,NOK,SP,4,false,0,C,2026-06,10.0", "FREQ is 'M'", "FREQ"),
        ("B,USD,NOK,3M,4,false,0,C,2026-06-15,10.0", "TENOR is '3M'", "TENOR"),
        ("B,USD,NOK,SP,4,false,0,C,15.06.2026,10.0", "'15.06.2026' is not a day", "TIME_PERIOD"),
        ("B,USD,NOK,SP,4,false,0,C,20260615,10.0", "'20260615' is not a day", "TIME_PERIOD"),
        ("B,USD,NOK,SP,4,false,0,C,2026-12-15,10.0", "2026-12-15 is in the future", "TIME_PERIOD"),
    ],
)
def test_a_bad_row_is_refused_naming_its_line_and_column(
    row: str, reason: str, column: str | None
) -> None:
    error = refusal(csv_payload("B,EUR,NOK,SP,4,false,0,C,2026-06-15,11.6", row))

    assert reason in error.reason
    assert error.location == "nb.csv line 3" + (f" column {column}" if column else "")


def test_an_unknown_non_iso_series_is_an_error_not_a_silent_drop() -> None:
    error = refusal(csv_payload("B,I45,NOK,SP,2,true,0,C,2026-06-15,114.1"))

    assert error.reason == "unknown currency code 'I45'"


def test_a_currency_twice_on_one_day_is_refused() -> None:
    row = "B,USD,NOK,SP,4,false,0,C,2026-06-15,10.0112"

    error = refusal(csv_payload(row, row))

    assert error.reason == "USD on 2026-06-15 appears twice"
    assert error.location == "nb.csv line 3"


# HTTP failures


def test_a_404_is_a_source_error_naming_the_url() -> None:
    with pytest.raises(SourceError) as caught:
        list(NorgesBankSource().fetch(WINDOW, serving(lambda r: httpx.Response(404))))

    assert caught.value.source == "norges-bank"
    assert "HTTP 404" in caught.value.reason
    assert caught.value.location == NorgesBankSource().url(WINDOW)


def test_server_errors_fail_after_the_configured_attempts() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    source = NorgesBankSource().configure(max_attempts="2", backoff="0")

    with pytest.raises(SourceError, match="after 2 attempts: HTTP 500"):
        list(source.fetch(WINDOW, serving(handler)))
    assert len(calls) == 2


# Anything else is a SourceError, never another exception


def check_outcome(payload: bytes) -> None:
    """Parsing either gives valid XXX/NOK quotes or raises a `SourceError` of this source."""
    try:
        quotes = parse(payload, label="fuzzed", today=TODAY)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "norges-bank"
        assert refused.reason
        assert refused.location and refused.location.startswith("fuzzed")
    for quote in quotes:
        assert quote.pair.quote.code == "NOK" and quote.pair.base.code not in ("I44", "TWI")
        assert quote.rate.is_finite() and quote.rate > 0
        assert quote.kind is QuoteKind.MID
        assert quote.observed_at.tzinfo is UTC
        assert quote.observed_at.date() <= TODAY + timedelta(days=1)
    assert len({quote.key for quote in quotes}) == len(quotes)


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


mutations = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(min_value=0, max_value=12_000),
        st.binary(min_size=1, max_size=6)
        | st.sampled_from([b",", b'"', b"\n", b"\r", b"-", b"9", b"E99", b"NaN", b"\xff"]),
    ),
    min_size=1,
    max_size=4,
)


@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=300).map(lambda tail: HEADER.encode() + b"\n" + tail),
    )
)
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(payload: bytes) -> None:
    check_outcome(payload)


@given(mutations)
def test_a_mutated_answer_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(RECORDED, changes))


@given(
    st.lists(
        st.text(alphabet="0123456789.-eENaB", max_size=10),
        min_size=3,
        max_size=3,
    ),
    st.sampled_from(["USD", "DKK", "I44", "XDR", "ABC", "NOK", ""]),
)
def test_any_row_values_parse_or_are_refused(cells: list[str], code: str) -> None:
    unit_mult, day, value = cells
    check_outcome(csv_payload(f"B,{code},NOK,SP,4,false,{unit_mult},C,2026-06-{day},{value}"))
