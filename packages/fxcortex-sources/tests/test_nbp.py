"""The NBP sources (tables A, B, C): recorded answers, 93-day chunks, 404s, and bad payloads."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import (
    FetchContext,
    FetchWindow,
    Pair,
    Quote,
    QuoteKind,
    Registry,
    Source,
    SourceError,
    make_plugin_manager,
)
from fxcortex.sources import nbp
from fxcortex.sources.nbp import NbpSource, fxcortex_register_sources, parse
from fxcortex.sources.testing import recorded_transport

FIXTURES = Path(__file__).parent / "fixtures" / "http"
TABLES_URL = "https://api.nbp.pl/api/exchangerates/tables"
TODAY = date(2026, 11, 28)
RECORDED_WINDOW = FetchWindow(since=date(2026, 3, 1), until=date(2026, 3, 5))


def table_c(day: str, number: str, rates: list[dict[str, Any]]) -> dict[str, Any]:
    """A table C shaped like the one in SOURCES.md."""
    return {"table": "C", "no": number, "tradingDate": day, "effectiveDate": day, "rates": rates}


GOOD_A = json.dumps(
    [
        {
            "table": "A",
            "no": "009/A/NBP/2026",
            "effectiveDate": "2026-01-14",
            "rates": [
                {"currency": "dolar amerykański", "code": "USD", "mid": 3.6012},
                {"currency": "forint (Węgry)", "code": "HUF", "mid": 0.010921},
            ],
        }
    ],
    ensure_ascii=False,
).encode()
GOOD_C = json.dumps(
    [
        table_c(
            "2022-02-25",
            "039/C/NBP/2022",
            [
                {"currency": "dolar amerykański", "code": "USD", "bid": 4.1367, "ask": 4.2203},
                {"currency": "euro", "code": "EUR", "bid": 4.648, "ask": 4.7418},
            ],
        )
    ],
    ensure_ascii=False,
).encode()


def fetch_recorded(table: str) -> list[Quote]:
    context = FetchContext(http_transport=recorded_transport(FIXTURES / "nbp"))
    return list(NbpSource.of(table).fetch(RECORDED_WINDOW, context))


def serving(handler: Callable[[httpx.Request], httpx.Response]) -> FetchContext:
    return FetchContext(http_transport=httpx.MockTransport(handler))


def refusal(payload: bytes, table: str = "A", **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        parse(payload, table=table, label="nbp.json", today=TODAY, **options)  # type: ignore[arg-type]
    assert caught.value.source == f"nbp-{table.lower()}"
    return caught.value


def with_rate(entry: dict[str, Any], table: str = "A", day: str = "2026-01-14") -> bytes:
    return json.dumps(
        [{"table": table, "no": "009/A/NBP/2026", "effectiveDate": day, "rates": [entry]}]
    ).encode()


# The sources


def test_each_table_is_its_own_source_with_its_own_schedule() -> None:
    registered: list[NbpSource] = []

    fxcortex_register_sources(registered.append)

    assert [source.name for source in registered] == ["nbp-a", "nbp-b", "nbp-c"]
    assert all(isinstance(source, Source) for source in registered)
    a, b, c = registered
    assert (a.schedule.cron, b.schedule.cron, c.schedule.cron) == (
        "15 12 * * 1-5",
        "15 12 * * 3",
        "15 8 * * 1-5",
    )
    assert {source.schedule.timezone for source in registered} == {"Europe/Warsaw"}
    assert (a.observation_interval, b.observation_interval, c.observation_interval) == (
        timedelta(days=1),
        timedelta(days=7),
        timedelta(days=1),
    )
    assert {source.history_since for source in registered} == {date(2002, 1, 2)}
    assert len(a.currencies) == 32 and "XDR" in a.currencies and "PLN" not in a.currencies
    assert b.currencies == ()
    assert len(c.currencies) == 13


def test_a_table_option_is_refused_pointing_at_the_three_sources() -> None:
    with pytest.raises(SourceError) as caught:
        NbpSource.of("A").configure(table="C")

    assert caught.value.source == "nbp-a"
    assert "unknown options ['table']" in caught.value.reason
    assert "nbp-a, nbp-b, nbp-c" in caught.value.reason


def test_configure_sets_the_http_options_and_refuses_bad_values() -> None:
    source = NbpSource.of("B").configure(timeout="10", max_attempts="1", backoff="0")

    assert (source.name, source.timeout, source.max_attempts, source.backoff) == (
        "nbp-b",
        10.0,
        1,
        0.0,
    )
    with pytest.raises(SourceError, match="max_attempts '0' is not a whole number"):
        NbpSource.of("B").configure(max_attempts="0")


def test_the_plugin_manager_collects_the_sources_by_name() -> None:
    manager = make_plugin_manager(plugins=[("nbp", nbp)], load_entry_points=False)
    registry = Registry.collect(manager)

    assert [registry.source(name).name for name in ["nbp-a", "nbp-b", "nbp-c"]] == [
        "nbp-a",
        "nbp-b",
        "nbp-c",
    ]


# Windows and chunks


def test_a_long_window_is_cut_into_queries_of_at_most_93_days() -> None:
    source = NbpSource.of("A")

    chunks = source.chunks(FetchWindow(since=date(2025, 1, 1), until=date(2025, 7, 31)), TODAY)

    assert [source.url(chunk) for chunk in chunks] == [
        f"{TABLES_URL}/A/2025-01-01/2025-04-03/?format=json",
        f"{TABLES_URL}/A/2025-04-04/2025-07-05/?format=json",
        f"{TABLES_URL}/A/2025-07-06/2025-07-31/?format=json",
    ]
    assert all((chunk.until - chunk.since).days + 1 <= 93 for chunk in chunks)  # type: ignore[operator]


def test_an_open_or_future_end_stops_at_today_and_an_early_start_at_2002() -> None:
    source = NbpSource.of("C")

    (chunk,) = source.chunks(FetchWindow(since=date(2026, 11, 1), until=date(2027, 1, 1)), TODAY)
    assert (chunk.since, chunk.until) == (date(2026, 11, 1), TODAY)
    (open_chunk,) = source.chunks(FetchWindow(since=date(2026, 11, 20)), TODAY)
    assert open_chunk.until == TODAY
    first = source.chunks(FetchWindow(since=date(1995, 1, 1), until=date(2002, 2, 1)), TODAY)
    assert [(chunk.since, chunk.until) for chunk in first] == [(date(2002, 1, 2), date(2002, 2, 1))]


def test_a_window_entirely_after_today_asks_nothing() -> None:
    asked: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(500)

    quotes = list(NbpSource.of("A").fetch(FetchWindow(since=date(2099, 1, 1)), serving(handler)))

    assert quotes == [] and asked == []


# Recorded answers


def test_the_recorded_table_a_gives_32_currencies_in_zloty_on_4_days() -> None:
    quotes = fetch_recorded("A")

    assert len(quotes) == 4 * 32
    assert {quote.pair.quote.code for quote in quotes} == {"PLN"}
    assert set(Counter(quote.pair.base.code for quote in quotes).values()) == {4}
    assert {quote.kind for quote in quotes} == {QuoteKind.MID}
    assert {quote.source for quote in quotes} == {"nbp-a"}


def test_usd_mid_is_zloty_per_dollar_published_at_1215_warsaw() -> None:
    quotes = fetch_recorded("A")

    usd = {quote.observed_at: quote.rate for quote in quotes if quote.pair == Pair.of("USD", "PLN")}
    # 12:15 CET is 11:15 UTC
    assert usd == {
        datetime(2026, 3, 2, 11, 15, tzinfo=UTC): Decimal("3.6056"),
        datetime(2026, 3, 3, 11, 15, tzinfo=UTC): Decimal("3.682"),
        datetime(2026, 3, 4, 11, 15, tzinfo=UTC): Decimal("3.677"),
        datetime(2026, 3, 5, 11, 15, tzinfo=UTC): Decimal("3.6771"),
    }


def test_rates_are_per_one_unit_even_where_the_printed_table_uses_100() -> None:
    quotes = fetch_recorded("A")

    first_day = {
        quote.pair.base.code: quote.rate
        for quote in quotes
        if quote.observed_at.date() == date(2026, 3, 2)
    }
    assert first_day["HUF"] == Decimal("0.011155")
    assert first_day["JPY"] == Decimal("0.022963")
    assert first_day["EUR"] == Decimal("4.2304")
    assert first_day["XDR"] == Decimal("4.9266")


def test_the_recorded_table_b_is_one_wednesday_of_116_currencies() -> None:
    quotes = fetch_recorded("B")

    assert len(quotes) == 116
    assert {quote.observed_at for quote in quotes} == {datetime(2026, 3, 4, 11, 15, tzinfo=UTC)}
    rates = {quote.pair.base.code: quote.rate for quote in quotes}
    assert rates["IRR"] == Decimal("0.0000028")
    assert rates["VND"] == Decimal("0.00014035")
    assert rates["ZWG"] == Decimal("0.1429")


def test_the_window_keeps_only_its_tables() -> None:
    payload = (FIXTURES / "nbp" / "000.body").read_bytes()

    quotes = parse(
        payload, table="A", window=FetchWindow(since=date(2026, 3, 4), until=date(2026, 3, 4))
    )

    assert len(quotes) == 32
    assert {quote.observed_at.date() for quote in quotes} == {date(2026, 3, 4)}


# Table C: bid and ask


def test_table_c_gives_a_bid_and_an_ask_per_currency_at_0815_warsaw() -> None:
    quotes = parse(GOOD_C, table="C", today=TODAY)

    assert [(str(quote.pair), quote.kind, quote.rate) for quote in quotes] == [
        ("USD/PLN", QuoteKind.BID, Decimal("4.1367")),
        ("USD/PLN", QuoteKind.ASK, Decimal("4.2203")),
        ("EUR/PLN", QuoteKind.BID, Decimal("4.648")),
        ("EUR/PLN", QuoteKind.ASK, Decimal("4.7418")),
    ]
    assert {quote.observed_at for quote in quotes} == {datetime(2022, 2, 25, 7, 15, tzinfo=UTC)}
    assert {quote.source for quote in quotes} == {"nbp-c"}


def test_table_c_is_fetched_from_its_own_url() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, content=GOOD_C)

    window = FetchWindow(since=date(2022, 2, 25), until=date(2022, 2, 25))
    quotes = list(NbpSource.of("C").fetch(window, serving(handler)))

    assert asked == [f"{TABLES_URL}/C/2022-02-25/2022-02-25/?format=json"]
    assert len(quotes) == 4


def test_numbers_in_exponent_form_keep_their_exact_value() -> None:
    payload = with_rate({"code": "IRR", "mid": 1}).replace(b'"mid": 1}', b'"mid": 2.8e-06}')

    (quote,) = parse(payload, table="A", today=TODAY)

    assert quote.rate == Decimal("0.0000028")


# HTTP: 404 means no tables


def test_a_range_without_tables_is_a_404_that_yields_nothing() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="404 NotFound - Not Found - Brak danych")

    window = FetchWindow(since=date(2026, 3, 7), until=date(2026, 3, 8))

    assert list(NbpSource.of("A").fetch(window, serving(handler))) == []


def test_a_404_chunk_adds_nothing_while_the_other_chunks_are_read() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if "/2025-10-01/" in request.url.path:
            return httpx.Response(404, text="404 NotFound - Not Found - Brak danych")
        return httpx.Response(200, content=GOOD_A)

    window = FetchWindow(since=date(2025, 10, 1), until=date(2026, 1, 31))
    quotes = list(NbpSource.of("A").fetch(window, serving(handler)))

    assert asked == [
        "/api/exchangerates/tables/A/2025-10-01/2026-01-01/",
        "/api/exchangerates/tables/A/2026-01-02/2026-01-31/",
    ]
    assert [(str(quote.pair), quote.rate) for quote in quotes] == [
        ("USD/PLN", Decimal("3.6012")),
        ("HUF/PLN", Decimal("0.010921")),
    ]


def test_one_malformed_chunk_fails_the_whole_fetch() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "/2026-01-02/" in request.url.path:
            return httpx.Response(200, content=GOOD_A[:-20])
        return httpx.Response(200, content=GOOD_A)  # a good first chunk stores nothing either

    window = FetchWindow(since=date(2025, 10, 1), until=date(2026, 1, 31))
    with pytest.raises(SourceError) as caught:
        list(NbpSource.of("A").fetch(window, serving(handler)))
    assert caught.value.location == f"{TABLES_URL}/A/2026-01-02/2026-01-31/?format=json"


def test_a_bad_query_is_a_source_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="400 BadRequest - Błędny zakres dat")

    with pytest.raises(SourceError) as caught:
        list(NbpSource.of("B").fetch(RECORDED_WINDOW, serving(handler)))

    assert caught.value.source == "nbp-b"
    assert "HTTP 400" in caught.value.reason


def test_server_errors_fail_after_the_configured_attempts() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    source = NbpSource.of("A").configure(max_attempts="3", backoff="0")

    with pytest.raises(SourceError, match="after 3 attempts: HTTP 500"):
        list(source.fetch(RECORDED_WINDOW, serving(handler)))
    assert len(calls) == 3


def test_an_unchanged_table_yields_nothing() -> None:
    quotes = list(
        NbpSource.of("A").fetch(RECORDED_WINDOW, serving(lambda request: httpx.Response(304)))
    )

    assert quotes == []


# Bad payloads


def test_an_html_page_served_as_data_is_refused() -> None:
    error = refusal(b"<html><body><h1>Serwis niedost\xc4\x99pny</h1></body></html>")

    assert error.location == "nbp.json"
    assert "HTML page" in error.reason


@pytest.mark.parametrize(
    "payload",
    [GOOD_A[:-3], b"", '[{"no": "złoty"}]'.encode("cp1250"), b"[" * 100_000],
)
def test_truncated_undecodable_or_absurdly_nested_json_is_refused(payload: bytes) -> None:
    error = refusal(payload)

    assert error.location == "nbp.json"
    assert "not valid JSON" in error.reason


@pytest.mark.parametrize("payload", [b"{}", b'{"rates": []}', b'"A"'])
def test_a_document_that_is_not_a_list_of_tables_is_refused(payload: bytes) -> None:
    assert refusal(payload).reason == "not a list of tables"


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ({"table": "B", "effectiveDate": "2026-01-14", "rates": []}, "table 'B' where table 'A'"),
        ({"table": "A", "rates": []}, "effectiveDate is missing"),
        ({"table": "A", "effectiveDate": "14.01.2026", "rates": []}, "'14.01.2026' is not a date"),
        ({"table": "A", "effectiveDate": "2026-01-14"}, "no 'rates' list"),
        ({"table": "A", "effectiveDate": "2026-12-14", "rates": []}, "2026-12-14 is in the future"),
        ("A", "a table is not an object"),
    ],
)
def test_a_malformed_table_is_refused(table: object, reason: str) -> None:
    assert reason in refusal(json.dumps([table]).encode()).reason


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"currency": "dolar amerykański", "mid": 3.6}, "unknown currency code None"),
        ({"code": "USX", "mid": 3.6}, "unknown currency code 'USX'"),
        ({"code": "PLN", "mid": 1}, "PLN quoted in złoty"),
        ({"code": "USD"}, "no 'mid' rate"),
        ({"code": "USD", "mid": "3,6056"}, "mid '3,6056' is not a number"),
        ({"code": "USD", "mid": None}, "mid None is not a number"),
        ({"code": "USD", "mid": True}, "mid True is not a number"),
        ({"code": "USD", "mid": -3.6}, "mid -3.6 is not a positive number"),
        ({"code": "USD", "mid": 0}, "mid 0 is not a positive number"),
    ],
)
def test_a_malformed_rate_is_refused_naming_the_table(entry: dict[str, Any], reason: str) -> None:
    error = refusal(with_rate(entry))

    assert reason in error.reason
    assert error.location is not None
    assert error.location.startswith("nbp.json [0] table 009/A/NBP/2026")


def test_a_nan_or_infinite_number_is_refused() -> None:
    payload = b'[{"table":"A","effectiveDate":"2026-01-14","rates":[{"code":"USD","mid":NaN}]}]'

    assert "is not a positive number" in refusal(payload).reason
    assert "is not a positive number" in refusal(payload.replace(b"NaN", b"Infinity")).reason


def test_the_location_names_the_table_and_the_currency() -> None:
    error = refusal(with_rate({"code": "USD", "mid": -1}))

    assert error.location == "nbp.json [0] table 009/A/NBP/2026 USD"


def test_a_table_c_rate_without_its_ask_is_refused() -> None:
    payload = json.dumps([table_c("2022-02-25", "039/C", [{"code": "EUR", "bid": 4.6}])]).encode()

    assert "no 'ask' rate" in refusal(payload, table="C").reason


def test_a_bid_above_the_ask_is_refused() -> None:
    payload = json.dumps(
        [table_c("2022-02-25", "039/C", [{"code": "EUR", "bid": 4.8, "ask": 4.7}])]
    ).encode()

    assert "bid 4.8 is above ask 4.7" in refusal(payload, table="C").reason


def test_a_currency_twice_in_a_table_is_refused() -> None:
    payload = json.dumps(
        [
            {
                "table": "A",
                "no": "009/A/NBP/2026",
                "effectiveDate": "2026-01-14",
                "rates": [{"code": "USD", "mid": 3.6}, {"code": "USD", "mid": 3.7}],
            }
        ]
    ).encode()

    assert "USD appears twice in the table" in refusal(payload).reason


def test_a_rate_given_twice_in_one_entry_is_refused() -> None:
    payload = (
        b'[{"table":"A","effectiveDate":"2026-01-14","rates":[{"code":"USD","mid":3.6,"mid":3.7}]}]'
    )

    error = refusal(payload)

    assert error.reason == "key 'mid' appears twice in one object"


def test_two_tables_on_one_day_are_refused() -> None:
    tables = json.loads(GOOD_A)

    error = refusal(json.dumps(tables + tables).encode())

    assert error.reason == "two tables on 2026-01-14"
    assert error.location == "nbp.json [1] table 009/A/NBP/2026"


# Anything else is a SourceError, never another exception


def check_outcome(payload: bytes, table: str) -> None:
    """Parsing either gives valid złoty quotes or raises a `SourceError` of this source."""
    try:
        quotes = parse(payload, table=table, label="fuzzed", today=TODAY)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == f"nbp-{table.lower()}"
        assert refused.reason
        assert refused.location and refused.location.startswith("fuzzed")
    for quote in quotes:
        assert quote.pair.quote.code == "PLN" and quote.pair.base.code != "PLN"
        assert quote.rate.is_finite() and quote.rate > 0
        assert quote.kind in ((QuoteKind.BID, QuoteKind.ASK) if table == "C" else (QuoteKind.MID,))
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
        st.integers(min_value=0, max_value=1000),
        st.binary(min_size=1, max_size=6)
        | st.sampled_from([b"{", b"]", b'"', b",", b"null", b"1e9999", b"-", b"NaN", b"\xff"]),
    ),
    min_size=1,
    max_size=4,
)


@given(st.binary(max_size=400), st.sampled_from(["A", "B", "C"]))
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(
    payload: bytes, table: str
) -> None:
    check_outcome(payload, table)


@given(mutations)
def test_a_mutated_table_a_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD_A, changes), "A")


@given(mutations)
def test_a_mutated_table_c_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD_C, changes), "C")


@given(
    st.recursive(
        st.none() | st.booleans() | st.text(max_size=12) | st.integers() | st.floats(),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["table", "effectiveDate", "rates", "code", "mid", "bid", "ask"]),
                children,
            )
        ),
        max_leaves=12,
    )
)
def test_any_json_shape_parses_to_valid_quotes_or_a_source_error(value: object) -> None:
    check_outcome(json.dumps([value]).encode(), "C")
