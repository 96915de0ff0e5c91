"""The Federal Reserve H.10 source, on payloads shaped like the Data Download Program's CSV.

No response was recorded: the payloads follow the shape documented in SOURCES.md, with the rates
the Board published for early March 2026 (BRL, CAD, CNY and DKK as FRED serves them; the rest
consistent with the ECB's fixes of those days).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, QuoteKind, Source, SourceError
from fxcortex.sources.fed_h10 import FedH10Source, fxcortex_register_sources, parse

TODAY = date(2026, 11, 28)
WINDOW = FetchWindow(since=date(2026, 3, 2), until=date(2026, 3, 6))

# (description, unit, multiplier, currency, series)
Column = tuple[str, str, str, str, str]
COLUMNS: list[Column] = [
    ("Australian Dollar", "Currency", "1", "AUD", "RXI$US_N.B.AL"),
    ("Euro-Area Euro", "Currency", "1", "EUR", "RXI$US_N.B.EU"),
    ("United Kingdom Pound", "Currency", "1", "GBP", "RXI$US_N.B.UK"),
    ("Brazilian Real", "Currency", "1", "BRL", "RXI_N.B.BZ"),
    ("Canadian Dollar", "Currency", "1", "CAD", "RXI_N.B.CA"),
    ("Chinese Yuan", "Currency", "1", "CNY", "RXI_N.B.CH"),
    ("Danish Krone", "Currency", "1", "DKK", "RXI_N.B.DN"),
    ("Japanese Yen", "Currency", "1", "JPY", "RXI_N.B.JA"),
    ("Nominal Broad Dollar Index", "Index:_Jan_2006_=_100", "1", "NA", "JRXWTFB_N.B"),
]
ROWS = [
    ("2026-03-02", "0.7056,1.1698,1.3386,5.1901,1.3705,6.8821,6.3906,157.4500,120.4187"),
    ("2026-03-03", "0.7019,1.1606,1.3314,5.2732,1.3662,6.8996,6.4392,157.6600,120.8812"),
    ("2026-03-04", "0.7044,1.1637,1.3355,5.2125,1.3661,6.8969,6.4199,157.2100,120.6020"),
    ("2026-03-05", "ND,ND,ND,ND,ND,ND,ND,ND,ND"),
    ("2026-03-06", "0.7061,1.1602,1.3367,5.2698,1.3599,6.8965,6.4371,157.9000,120.7716"),
]


def h10_csv(columns: Sequence[Column], rows: Sequence[tuple[str, str]]) -> bytes:
    """A Data Download Program CSV: six header rows, then one row per day."""

    def row(label: str, cells: Sequence[str]) -> str:
        return ",".join(f'"{cell}"' for cell in (label, *cells))

    lines = [
        row("Series Description", [column[0] for column in columns]),
        row("Unit:", [column[1] for column in columns]),
        row("Multiplier:", [column[2] for column in columns]),
        row("Currency:", [column[3] for column in columns]),
        row("Unique Identifier:", [f"H10/H10/{column[4]}" for column in columns]),
        row("Time Period", [column[4] for column in columns]),
        *(f"{day},{values}" for day, values in rows),
    ]
    return ("\n".join(lines) + "\n").encode()


GOOD = h10_csv(COLUMNS, ROWS)


def serving(handler: Callable[[httpx.Request], httpx.Response]) -> FetchContext:
    return FetchContext(http_transport=httpx.MockTransport(handler))


def csv_response(body: bytes) -> httpx.Response:
    return httpx.Response(200, headers={"Content-Type": "text/csv"}, content=body)


def refusal(payload: bytes, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        parse(payload, label="h10.csv", today=TODAY, **options)  # type: ignore[arg-type]
    assert caught.value.source == "fed-h10"
    return caught.value


def fetched(window: FetchWindow = WINDOW) -> tuple[list[Quote], list[str]]:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return csv_response(GOOD)

    return list(FedH10Source().fetch(window, serving(handler))), asked


def of(quotes: list[Quote], pair: str) -> list[Decimal]:
    return [quote.rate for quote in quotes if str(quote.pair) == pair]


# The source


def test_the_source_declares_a_weekly_monday_release_in_new_york_and_its_history() -> None:
    source = FedH10Source()

    assert isinstance(source, Source)
    assert source.name == "fed-h10"
    assert source.schedule.cron == "15 16 * * 1"
    assert source.schedule.timezone == "America/New_York"
    assert source.history_since == date(1971, 1, 4)
    assert source.observation_interval == timedelta(days=1)
    assert {"EUR", "JPY", "GBP", "LKR"} <= set(source.currencies)
    assert "USD" not in source.currencies


def test_the_plugin_registers_the_fed_h10_source() -> None:
    registered: list[object] = []

    fxcortex_register_sources(registered.append)

    assert registered == [FedH10Source()]


def test_the_url_asks_for_the_all_currency_package_between_mm_dd_yyyy_dates() -> None:
    query = parse_qs(urlsplit(FedH10Source().url(WINDOW)).query, keep_blank_values=True)

    assert query == {
        "rel": ["H10"],
        "series": ["60f32914ab61dfab590e0e470153e3ae"],
        "lastobs": [""],
        "from": ["03/02/2026"],
        "to": ["03/06/2026"],
        "filetype": ["csv"],
        "label": ["include"],
        "layout": ["seriescolumn"],
        "type": ["package"],
    }


def test_an_open_window_starts_in_1971_and_runs_to_the_newest() -> None:
    query = parse_qs(urlsplit(FedH10Source().url(FetchWindow())).query, keep_blank_values=True)

    assert (query["from"], query["to"]) == (["01/04/1971"], [""])


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"series": "abc"}, "unknown options ['series']"),
        ({"timeout": "inf"}, "timeout 'inf' is not a positive number of seconds"),
        ({"max_attempts": "-2"}, "max_attempts '-2' is not a whole number of at least 1"),
    ],
)
def test_configure_refuses_unknown_options_and_bad_values(
    options: dict[str, str], reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        FedH10Source().configure(**options)

    assert caught.value.source == "fed-h10"
    assert reason in caught.value.reason


def test_configure_sets_the_http_options_on_a_copy() -> None:
    source = FedH10Source().configure(timeout="5", max_attempts="2", backoff="0")

    assert (source.timeout, source.max_attempts, source.backoff) == (5.0, 2, 0.0)


# Directions, units, time


def test_a_fetch_asks_once_and_gives_eight_currencies_on_four_days() -> None:
    quotes, asked = fetched()

    assert asked == [FedH10Source().url(WINDOW)]
    assert len(quotes) == 8 * 4  # 5 March is ND throughout
    assert {quote.kind for quote in quotes} == {QuoteKind.MID}
    assert all("USD" in (quote.pair.base.code, quote.pair.quote.code) for quote in quotes)


def test_rxi_us_series_are_dollars_per_foreign_unit() -> None:
    quotes, _ = fetched()

    assert of(quotes, "EUR/USD") == [
        Decimal("1.1698"),
        Decimal("1.1606"),
        Decimal("1.1637"),
        Decimal("1.1602"),
    ]
    assert of(quotes, "GBP/USD")[0] == Decimal("1.3386")
    assert of(quotes, "AUD/USD")[0] == Decimal("0.7056")
    assert of(quotes, "USD/EUR") == []


def test_the_other_series_are_foreign_units_per_dollar() -> None:
    quotes, _ = fetched()

    assert of(quotes, "USD/BRL")[0] == Decimal("5.1901")
    assert of(quotes, "USD/CAD")[0] == Decimal("1.3705")
    assert of(quotes, "USD/CNY")[0] == Decimal("6.8821")
    assert of(quotes, "USD/JPY") == [
        Decimal("157.4500"),
        Decimal("157.6600"),
        Decimal("157.2100"),
        Decimal("157.9000"),
    ]
    assert of(quotes, "JPY/USD") == []


def test_the_broad_dollar_index_is_dropped() -> None:
    quotes, _ = fetched()

    assert not any("NA" in str(quote.pair) for quote in quotes)
    assert not any(quote.rate == Decimal("120.4187") for quote in quotes)


def test_rates_are_noon_in_new_york() -> None:
    quotes, _ = fetched()

    # 12:00 EST (daylight saving time starts on 8 March 2026) is 17:00 UTC
    assert {quote.observed_at for quote in quotes} == {
        datetime(2026, 3, day, 17, 0, tzinfo=UTC) for day in (2, 3, 4, 6)
    }
    summer = h10_csv(COLUMNS[:1], [("2026-07-01", "0.6600")])
    (quote,) = parse(summer, today=TODAY)
    assert quote.observed_at == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)  # 12:00 EDT


def test_the_multiplier_scales_the_value() -> None:
    payload = h10_csv(
        [("Korean Won", "Currency", "1000", "KRW", "RXI_N.B.KO")], [("2026-03-02", "1.4521")]
    )

    (quote,) = parse(payload, today=TODAY)

    assert (quote.pair, quote.rate) == (Pair.of("USD", "KRW"), Decimal("1452.1000"))


def test_the_window_keeps_only_its_days() -> None:
    quotes = parse(GOOD, window=FetchWindow(since=date(2026, 3, 4)), today=TODAY)

    assert {quote.observed_at.date() for quote in quotes} == {date(2026, 3, 4), date(2026, 3, 6)}


def test_legacy_currencies_of_old_rows_are_kept_under_their_codes() -> None:
    payload = h10_csv(
        [("German Mark", "Currency", "1", "DEM", "RXI_N.B.GE")], [("1998-12-31", "1.6670")]
    )

    (quote,) = parse(payload, today=TODAY)

    assert quote.pair == Pair.of("USD", "DEM")


def test_a_bom_and_crlf_line_ends_are_read() -> None:
    payload = b"\xef\xbb\xbf" + GOOD.replace(b"\n", b"\r\n")

    assert len(parse(payload, today=TODAY)) == 8 * 4


def test_an_unchanged_answer_yields_nothing() -> None:
    assert list(FedH10Source().fetch(WINDOW, serving(lambda r: httpx.Response(304)))) == []


# Bad payloads


def test_an_html_page_served_as_data_is_refused() -> None:
    error = refusal(b"<html><head><title>Error</title></head><body>Oops</body></html>")

    assert "HTML page" in error.reason
    assert error.location == "h10.csv"


def test_text_that_is_not_utf8_is_refused() -> None:
    assert "not UTF-8 text" in refusal(GOOD.decode().encode("utf-16")).reason


@pytest.mark.parametrize(
    ("payload", "reason", "location"),
    [
        (b"", "header row 'Series Description' expected, found ''", "h10.csv"),
        (GOOD[: GOOD.index(b'"Currency:"')], "header row 'Currency:' expected", "h10.csv"),
        (
            GOOD.replace(b'"Multiplier:"', b'"Multiplier"'),
            "header row 'Multiplier:' expected, found 'Multiplier'",
            "h10.csv line 3",
        ),
        (
            b"Time Period,RXI_N.B.JA\n2026-03-02,157.45\n",
            "header row 'Series Description' expected, found 'Time Period'",
            "h10.csv line 1",
        ),
        (
            GOOD.replace(b',"RXI_N.B.JA","JRXWTFB_N.B"', b',"RXI_N.B.JA"'),
            "the 'Time Period' row 9",
            "h10.csv line 1",
        ),
        (b'"Series Description,"AUD\n', "malformed CSV", "h10.csv line 1"),
    ],
)
def test_a_payload_without_the_six_header_rows_is_refused(
    payload: bytes, reason: str, location: str
) -> None:
    error = refusal(payload)

    assert reason in error.reason
    assert error.location == location


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        (("Yen", "Currency", "1", "JPN", "RXI_N.B.JA"), "Currency: 'JPN' is not a known"),
        (("Yen", "Currency", "1", "NA", "RXI_N.B.JA"), "Currency: 'NA' is not a known"),
        (("Dollar", "Currency", "1", "USD", "RXI_N.B.US"), "Currency: 'USD' is not a known"),
        (("Yen", "Currency", "0", "JPY", "RXI_N.B.JA"), "Multiplier: '0' is not a positive"),
        (("Yen", "Currency", "0.01", "JPY", "RXI_N.B.JA"), "Multiplier: '0.01' is not"),
        (("Yen", "Currency", "1", "JPY", ""), "series '' is empty or twice"),
    ],
)
def test_a_bad_exchange_rate_column_is_refused(column: Column, reason: str) -> None:
    error = refusal(h10_csv([COLUMNS[0], column], [("2026-03-02", "0.7056,157.45")]))

    assert reason in error.reason
    assert error.location == f"h10.csv column {column[4]}"


def test_an_identifier_of_another_series_is_refused() -> None:
    payload = GOOD.replace(b'"H10/H10/RXI_N.B.JA"', b'"H10/H10/RXI_N.B.CA"')

    error = refusal(payload)

    assert error.reason == "identifier 'H10/H10/RXI_N.B.CA' is not that of RXI_N.B.JA"


def test_a_series_twice_or_two_series_of_one_pair_are_refused() -> None:
    twice = refusal(h10_csv([COLUMNS[7], COLUMNS[7]], [("2026-03-02", "157.45,157.45")]))
    other_name = ("Yen", "Currency", "1", "JPY", "RXI_N.B.JA2")
    same_pair = refusal(h10_csv([COLUMNS[7], other_name], [("2026-03-02", "157.45,157.45")]))

    assert twice.reason == "series 'RXI_N.B.JA' is empty or twice"
    assert same_pair.reason == "a second series quoting USD/JPY"


@pytest.mark.parametrize(
    ("row", "reason", "location"),
    [
        (("2026-03-09", "0.7056,-1.1698"), "rate '-1.1698' is not a positive", "RXI$US_N.B.EU"),
        (("2026-03-09", "0.7056,0.0000"), "rate '0.0000' is not a positive", "RXI$US_N.B.EU"),
        (("2026-03-09", "0.7056,1,17"), "4 cells for 3 columns", None),
        (("2026-03-09", "0.7056"), "2 cells for 3 columns", None),
        (("2026-03-09", "0.7056,NaN"), "rate 'NaN' is not a number", "RXI$US_N.B.EU"),
        (("2026-03-09", "0.7056,1.1e2"), "rate '1.1e2' is not a number", "RXI$US_N.B.EU"),
        (("2026-03-09", "0.7056,N/A"), "rate 'N/A' is not a number", "RXI$US_N.B.EU"),
        (("03/09/2026", "0.7056,1.1698"), "'03/09/2026' is not a day", None),
        (("2026-13-09", "0.7056,1.1698"), "'2026-13-09' is not a day", None),
        (("2026-12-09", "0.7056,1.1698"), "2026-12-09 is in the future", "2026-12-09"),
        (("2026-03-02", "0.7056,1.1698"), "2026-03-02 appears twice", "2026-03-02"),
    ],
)
def test_a_bad_data_row_is_refused_naming_its_line(
    row: tuple[str, str], reason: str, location: str | None
) -> None:
    payload = h10_csv(COLUMNS[:2], [("2026-03-02", "0.7056,1.1698"), row])

    error = refusal(payload)

    assert reason in error.reason
    assert error.location is not None
    assert error.location.startswith("h10.csv line 8")
    if location is not None:
        assert error.location.endswith(location)


def test_an_nd_value_or_an_empty_cell_is_a_day_without_a_rate() -> None:
    payload = h10_csv(COLUMNS[:2], [("2026-03-02", "ND,1.1698"), ("2026-03-03", ",")])

    assert [str(quote.pair) for quote in parse(payload, today=TODAY)] == ["EUR/USD"]


# HTTP failures


def test_a_404_is_a_source_error_naming_the_url() -> None:
    with pytest.raises(SourceError) as caught:
        list(FedH10Source().fetch(WINDOW, serving(lambda r: httpx.Response(404))))

    assert caught.value.source == "fed-h10"
    assert "HTTP 404" in caught.value.reason
    assert caught.value.location == FedH10Source().url(WINDOW)


def test_server_errors_fail_after_the_configured_attempts() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502)

    source = FedH10Source().configure(max_attempts="2", backoff="0")

    with pytest.raises(SourceError, match="after 2 attempts: HTTP 502"):
        list(source.fetch(WINDOW, serving(handler)))
    assert len(calls) == 2


# Anything else is a SourceError, never another exception


def check_outcome(payload: bytes) -> None:
    """Parsing either gives valid USD quotes or raises a `SourceError` of this source."""
    try:
        quotes = parse(payload, label="fuzzed", today=TODAY)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "fed-h10"
        assert refused.reason
        assert refused.location and refused.location.startswith("fuzzed")
    for quote in quotes:
        assert "USD" in (quote.pair.base.code, quote.pair.quote.code)
        assert quote.pair.base != quote.pair.quote
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
        st.integers(min_value=0, max_value=2_000),
        st.binary(min_size=1, max_size=6)
        | st.sampled_from([b",", b'"', b"\n", b"ND", b"-", b"$", b"RXI_", b"0", b"\xff"]),
    ),
    min_size=1,
    max_size=4,
)


@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=300).map(lambda tail: GOOD[: GOOD.index(b"2026-03-02")] + tail),
    )
)
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(payload: bytes) -> None:
    check_outcome(payload)


@given(mutations)
def test_a_mutated_download_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD, changes))


@given(
    st.sampled_from(["RXI$US_N.B.EU", "RXI_N.B.JA", "JRXWTFB_N.B", "RXI", "X"]),
    st.sampled_from(["EUR", "JPY", "USD", "NA", ""]),
    st.text(alphabet="0123456789.-", max_size=6),
    st.text(alphabet="0123456789.-ND", max_size=10),
)
def test_any_column_header_and_value_parse_or_are_refused(
    series: str, code: str, multiplier: str, value: str
) -> None:
    check_outcome(h10_csv([("Any", "Currency", multiplier, code, series)], [("2026-03-02", value)]))
