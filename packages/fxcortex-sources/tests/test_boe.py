"""The Bank of England source, on payloads shaped like the IADB's CSV.

No response was recorded here: the payloads follow the shape in SOURCES.md, whose recorded row
(17 Mar 2026: USD 1.3343, EUR 1.1577, JPY 212.1937) they start with.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Quote, QuoteKind, Source, SourceError
from fxcortex.core.currencies import KNOWN_CODES
from fxcortex.sources.boe import SERIES, BoeSource, fxcortex_register_sources, parse

TODAY = date(2026, 11, 28)
WINDOW = FetchWindow(since=date(2026, 3, 17), until=date(2026, 3, 20))
SOURCES_MD_URL = (
    "https://www.bankofengland.co.uk/boeapps/database/_iadb-fromshowcolumns.asp?csv.x=yes"
    "&Datefrom=17/Mar/2026&Dateto=20/Mar/2026&SeriesCodes=XUDLUSS,XUDLERS,XUDLJYS&CSVF=TN"
    "&UsingCodes=Y"
)
GOOD = (
    b"DATE,XUDLUSS,XUDLERS,XUDLJYS,XUDLBK89,XUDLBK95\n"
    b"17 Mar 2026,1.3343,1.1577,212.1937,9.1880,58.9764\n"
    b"18 Mar 2026,1.3311,1.1575,212.3867,9.1690,58.8636\n"
    b"19 Mar 2026,1.3290,1.1569,211.8754,9.1507,58.8101\n"
    b"20 Mar 2026,1.3325,1.1581,212.0500,,58.9902\n"
)


def serving(handler: Callable[[httpx.Request], httpx.Response]) -> FetchContext:
    return FetchContext(http_transport=httpx.MockTransport(handler))


def csv_response(body: bytes) -> httpx.Response:
    return httpx.Response(
        200,
        headers={"Content-Type": "application/csv", "Cache-Control": "private, max-age=15"},
        content=body,
    )


def refusal(payload: bytes, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        parse(payload, label="iadb.csv", today=TODAY, **options)  # type: ignore[arg-type]
    assert caught.value.source == "boe"
    return caught.value


def fetched(
    source: BoeSource, window: FetchWindow = WINDOW
) -> tuple[list[Quote], list[httpx.Request]]:
    asked: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return csv_response(GOOD)

    return list(source.fetch(window, serving(handler))), asked


def of(quotes: list[Quote], pair: str) -> list[Decimal]:
    return [quote.rate for quote in quotes if str(quote.pair) == pair]


# The source


def test_the_source_declares_its_schedule_in_london_its_currencies_and_history() -> None:
    source = BoeSource()

    assert isinstance(source, Source)
    assert source.name == "boe"
    assert source.schedule.timezone == "Europe/London"
    assert source.schedule.cron == "0 17 * * 1-5"
    assert source.history_since == date(2000, 1, 4)
    assert source.observation_interval == timedelta(days=1)
    assert len(source.currencies) == 26 and "GBP" not in source.currencies


def test_the_series_map_to_distinct_known_currencies() -> None:
    assert len(SERIES) == 26
    assert len(set(SERIES.values())) == 26
    assert set(SERIES.values()) <= KNOWN_CODES
    assert {code: SERIES[code] for code in ("XUDLUSS", "XUDLERS", "XUDLJYS")} == {
        "XUDLUSS": "USD",
        "XUDLERS": "EUR",
        "XUDLJYS": "JPY",
    }
    assert (SERIES["XUDLSFS"], SERIES["XUDLCDS"], SERIES["XUDLADS"]) == ("CHF", "CAD", "AUD")
    assert (SERIES["XUDLBK89"], SERIES["XUDLBK95"]) == ("CNY", "TRY")


def test_the_plugin_registers_the_boe_source() -> None:
    registered: list[object] = []

    fxcortex_register_sources(registered.append)

    assert registered == [BoeSource()]


def test_the_url_is_the_one_in_sources_md_for_its_three_currencies() -> None:
    source = BoeSource().configure(currencies="USD,EUR,JPY")

    assert source.url(WINDOW) == SOURCES_MD_URL


def test_an_open_window_runs_from_2000_to_today_in_london_for_every_series() -> None:
    url = BoeSource().url(FetchWindow(), today=date(2026, 4, 1))

    query = parse_qs(urlsplit(url).query)
    assert query["Datefrom"] == ["04/Jan/2000"]
    assert query["Dateto"] == ["01/Apr/2026"]
    assert query["SeriesCodes"][0].split(",") == list(SERIES)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"series": "XUDLUSS"}, "unknown options ['series']"),
        ({"currencies": "USD,BRL"}, "no Bank of England series for 'BRL'"),
        ({"timeout": "0"}, "timeout '0' is not a positive number of seconds"),
        ({"max_attempts": "x"}, "max_attempts 'x' is not a whole number of at least 1"),
    ],
)
def test_configure_refuses_unknown_options_and_bad_values(
    options: dict[str, str], reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        BoeSource().configure(**options)

    assert caught.value.source == "boe"
    assert reason in caught.value.reason


def test_configure_sets_the_currencies_user_agent_and_http_options_on_a_copy() -> None:
    source = BoeSource().configure(
        currencies="eur, usd", user_agent="Mozilla/5.0", max_attempts="2", backoff="0"
    )

    assert source.series == ("XUDLERS", "XUDLUSS")
    assert source.currencies == ("EUR", "USD")
    assert (source.user_agent, source.max_attempts, source.backoff) == ("Mozilla/5.0", 2, 0.0)
    assert BoeSource().series == tuple(SERIES)


def test_the_user_agent_option_is_sent() -> None:
    _, asked = fetched(BoeSource().configure(user_agent="Mozilla/5.0 (X11; Linux x86_64)"))
    _, default = fetched(BoeSource())

    assert asked[0].headers["User-Agent"] == "Mozilla/5.0 (X11; Linux x86_64)"
    assert default[0].headers["User-Agent"].startswith("fxcortex/")


# Direction, time


def test_a_fetch_asks_once_and_gives_pounds_against_five_currencies() -> None:
    quotes, asked = fetched(BoeSource())

    assert [str(request.url) for request in asked] == [BoeSource().url(WINDOW)]
    assert len(quotes) == 5 * 4 - 1  # CNY has no rate on 20 March
    assert {quote.pair.base.code for quote in quotes} == {"GBP"}
    assert {quote.kind for quote in quotes} == {QuoteKind.MID}


def test_values_are_foreign_currency_per_pound() -> None:
    quotes, _ = fetched(BoeSource())

    assert of(quotes, "GBP/USD") == [
        Decimal("1.3343"),
        Decimal("1.3311"),
        Decimal("1.3290"),
        Decimal("1.3325"),
    ]
    assert of(quotes, "GBP/EUR")[0] == Decimal("1.1577")
    assert of(quotes, "GBP/JPY")[0] == Decimal("212.1937")
    assert of(quotes, "GBP/CNY") == [Decimal("9.1880"), Decimal("9.1690"), Decimal("9.1507")]
    assert of(quotes, "GBP/TRY")[-1] == Decimal("58.9902")
    assert of(quotes, "USD/GBP") == []


def test_rates_are_observed_at_four_in_the_afternoon_in_london() -> None:
    quotes, _ = fetched(BoeSource())

    # GMT until 29 March 2026: 16:00 London is 16:00 UTC
    assert {quote.observed_at for quote in quotes} == {
        datetime(2026, 3, day, 16, 0, tzinfo=UTC) for day in (17, 18, 19, 20)
    }
    (summer,) = parse(b"DATE,XUDLUSS\n01 Jul 2026,1.3500\n", today=TODAY)
    assert summer.observed_at == datetime(2026, 7, 1, 15, 0, tzinfo=UTC)  # 16:00 BST


def test_the_window_keeps_only_its_days() -> None:
    quotes = parse(GOOD, window=FetchWindow(since=date(2026, 3, 19)), today=TODAY)

    assert {quote.observed_at.date() for quote in quotes} == {date(2026, 3, 19), date(2026, 3, 20)}


def test_a_header_alone_is_no_quotes_and_crlf_is_read() -> None:
    assert parse(b"DATE,XUDLUSS\r\n", today=TODAY) == []
    assert len(parse(GOOD.replace(b"\n", b"\r\n"), today=TODAY)) == 19


def test_an_unchanged_answer_yields_nothing() -> None:
    assert list(BoeSource().fetch(WINDOW, serving(lambda r: httpx.Response(304)))) == []


# Bad payloads


def test_an_html_error_page_served_as_data_is_refused() -> None:
    error = refusal(b"<!DOCTYPE html><html><body>Invalid series code</body></html>")

    assert "HTML page" in error.reason
    assert error.location == "iadb.csv"


def test_text_that_is_not_utf8_is_refused() -> None:
    assert "not UTF-8 text" in refusal(GOOD.decode().encode("utf-16")).reason


@pytest.mark.parametrize(
    ("payload", "reason", "location"),
    [
        (b"", "the first column is not DATE", "iadb.csv line 1"),
        (b"Date,XUDLUSS\n", "the first column is not DATE", "iadb.csv line 1"),
        (b"DATE,XUDLXXX\n", "series 'XUDLXXX' has no known currency", "iadb.csv line 1 XUDLXXX"),
        (b"DATE,XUDLUSS,XUDLUSS\n", "series XUDLUSS appears twice", "iadb.csv line 1 XUDLUSS"),
        (b'DATE,"XUDLUSS\n', "malformed CSV", "iadb.csv line 1"),
    ],
)
def test_a_bad_header_is_refused(payload: bytes, reason: str, location: str) -> None:
    error = refusal(payload)

    assert reason in error.reason
    assert error.location == location


@pytest.mark.parametrize(
    ("row", "reason", "location"),
    [
        (b"18 Mar 2026,-1.3311,1.1575", "rate '-1.3311' is not a positive number", "XUDLUSS"),
        (b"18 Mar 2026,1.3311,0", "rate '0' is not a positive number", "XUDLERS"),
        (b"18 Mar 2026,1.3311,n/a", "rate 'n/a' is not a number", "XUDLERS"),
        (b"18 Mar 2026,1.3311,1.1e0", "rate '1.1e0' is not a number", "XUDLERS"),
        (b"18 Mar 2026,1.3311", "2 cells for 3 columns", None),
        (b"18 Mar 2026,1.3311,1.1575,1", "4 cells for 3 columns", None),
        (b"2026-03-18,1.3311,1.1575", "'2026-03-18' is not a day (DD Mon YYYY)", None),
        ("18 Mär 2026,1.3311,1.1575".encode(), "is not a day (DD Mon YYYY)", None),
        (b"18 MAR 2026,1.3311,1.1575", "'18 MAR 2026' is not a day", None),
        (b"31 Feb 2026,1.3311,1.1575", "'31 Feb 2026' is not a day", None),
        (b"17 Mar 2026,1.3311,1.1575", "2026-03-17 appears twice", "17 Mar 2026"),
        (b"18 Dec 2026,1.3311,1.1575", "2026-12-18 is in the future", "18 Dec 2026"),
    ],
)
def test_a_bad_row_is_refused_naming_its_line(
    row: bytes, reason: str, location: str | None
) -> None:
    payload = b"DATE,XUDLUSS,XUDLERS\n17 Mar 2026,1.3343,1.1577\n" + row + b"\n"

    error = refusal(payload)

    assert reason in error.reason
    assert error.location is not None
    assert error.location.startswith("iadb.csv line 3")
    if location is not None:
        assert error.location.endswith(location)


# HTTP failures


def test_a_404_is_a_source_error_naming_the_url() -> None:
    with pytest.raises(SourceError) as caught:
        list(BoeSource().fetch(WINDOW, serving(lambda r: httpx.Response(404))))

    assert caught.value.source == "boe"
    assert "HTTP 404" in caught.value.reason
    assert caught.value.location == BoeSource().url(WINDOW)


def test_server_errors_fail_after_the_configured_attempts() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    source = BoeSource().configure(max_attempts="2", backoff="0")

    with pytest.raises(SourceError, match="after 2 attempts: HTTP 503"):
        list(source.fetch(WINDOW, serving(handler)))
    assert len(calls) == 2


# Anything else is a SourceError, never another exception


def check_outcome(payload: bytes) -> None:
    """Parsing either gives valid GBP/XXX quotes or raises a `SourceError` of this source."""
    try:
        quotes = parse(payload, label="fuzzed", today=TODAY)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "boe"
        assert refused.reason
        assert refused.location and refused.location.startswith("fuzzed")
    for quote in quotes:
        assert quote.pair.base.code == "GBP" and quote.pair.quote.code in SERIES.values()
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
        st.integers(min_value=0, max_value=400),
        st.binary(min_size=1, max_size=6)
        | st.sampled_from([b",", b'"', b"\n", b"-", b"Feb", b"31", b"XUDL", b"0", b"\xff"]),
    ),
    min_size=1,
    max_size=4,
)


@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=300).map(lambda tail: b"DATE,XUDLUSS,XUDLERS\n" + tail),
    )
)
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(payload: bytes) -> None:
    check_outcome(payload)


@given(mutations)
def test_a_mutated_csv_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD, changes))


@given(
    st.text(alphabet="0123456789 JanFebMrDcu-", max_size=14),
    st.text(alphabet="0123456789.-e", max_size=10),
)
def test_any_day_and_value_parse_or_are_refused(day: str, value: str) -> None:
    check_outcome(f"DATE,XUDLUSS\n{day},{value}\n".encode())
