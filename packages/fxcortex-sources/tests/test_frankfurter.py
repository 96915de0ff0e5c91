"""The Frankfurter sources (API v1 and v2) on payloads shaped as documented, good and bad."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
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
from fxcortex.sources import ecb, frankfurter
from fxcortex.sources.frankfurter import (
    FrankfurterSource,
    FrankfurterV2Source,
    fxcortex_register_sources,
    parse_v1,
    parse_v2,
)

V1 = "https://api.frankfurter.dev/v1"
V2 = "https://api.frankfurter.dev/v2"
TODAY = date(2026, 11, 28)

V1_DAY = b'{"amount":1.0,"base":"EUR","date":"2024-01-15","rates":{"GBP":0.8623,"USD":1.089}}'
V1_SERIES = (
    b'{"amount":1.0,"base":"EUR","start_date":"2024-01-15","end_date":"2024-01-16",'
    b'"rates":{"2024-01-15":{"GBP":0.8623,"USD":1.089},"2024-01-16":{"GBP":0.86028,"USD":1.0887}}}'
)
V1_USD_BASE = (
    b'{"amount":1.0,"base":"USD","date":"2024-01-15",'
    b'"rates":{"CHF":0.8557,"EUR":0.91827,"GBP":0.79183}}'
)
V2_ROWS = (
    b'[{"date":"2024-01-15","base":"EUR","quote":"EUR","rate":1.0},'
    b'{"date":"2024-01-15","base":"EUR","quote":"USD","rate":1.089},'
    b'{"date":"2024-01-15","base":"EUR","quote":"PLN","rate":4.3705}]'
)


def serving(payload: bytes, asked: list[str] | None = None, status: int = 200) -> FetchContext:
    def handler(request: httpx.Request) -> httpx.Response:
        if asked is not None:
            asked.append(str(request.url))
        return httpx.Response(status, content=payload, headers={"Content-Type": "application/json"})

    return FetchContext(http_transport=httpx.MockTransport(handler))


def refusal(parse: Callable[..., list[Quote]], payload: bytes, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        parse(payload, label="answer.json", today=TODAY, **options)
    return caught.value


def rendered(quotes: list[Quote]) -> list[tuple[str, str, str]]:
    return [(str(q.pair), str(q.rate), q.observed_at.isoformat()) for q in quotes]


# The sources


def test_the_plugin_registers_v1_and_v2() -> None:
    registered: list[object] = []

    fxcortex_register_sources(registered.append)

    assert registered == [FrankfurterSource(), FrankfurterV2Source()]
    assert all(isinstance(source, Source) for source in registered)


def test_v1_declares_the_ecb_schedule_and_history() -> None:
    source = FrankfurterSource()

    assert source.name == "frankfurter"
    assert (source.schedule.cron, source.schedule.timezone) == ("0 16 * * 1-5", "Europe/Berlin")
    assert source.history_since == date(1999, 1, 4)
    assert source.observation_interval == timedelta(days=1)
    assert len(source.currencies) == 30 and {"EUR", "USD", "JPY"} <= set(source.currencies)


def test_v2_declares_an_hourly_schedule_varying_currencies_and_a_long_history() -> None:
    source = FrankfurterV2Source()

    assert source.name == "frankfurter-v2"
    assert (source.schedule.cron, source.schedule.timezone) == ("0 * * * *", "UTC")
    assert source.currencies == ()
    assert source.history_since == date(1948, 1, 1)


def test_the_plugin_manager_collects_the_sources_by_name() -> None:
    manager = make_plugin_manager(plugins=[("frankfurter", frankfurter)], load_entry_points=False)
    registry = Registry.collect(manager)

    assert [registry.source(name).name for name in ["frankfurter", "frankfurter-v2"]] == [
        "frankfurter",
        "frankfurter-v2",
    ]


# v1 URLs


@pytest.mark.parametrize(
    ("window", "url"),
    [
        (FetchWindow(), f"{V1}/latest"),
        (FetchWindow(since=date(2024, 1, 15), until=date(2024, 1, 15)), f"{V1}/2024-01-15"),
        (
            FetchWindow(since=date(2024, 1, 1), until=date(2024, 12, 31)),
            f"{V1}/2024-01-01..2024-12-31",
        ),
        (FetchWindow(since=date(2024, 1, 1)), f"{V1}/2024-01-01.."),
        (FetchWindow(until=date(1999, 2, 1)), f"{V1}/1999-01-04..1999-02-01"),
    ],
)
def test_v1_asks_latest_a_day_or_a_time_series_by_window(window: FetchWindow, url: str) -> None:
    assert FrankfurterSource().url(window) == url


def test_v1_sends_base_and_symbols() -> None:
    source = FrankfurterSource().configure(base="usd", symbols="CHF, gbp")

    assert source.url(FetchWindow()) == f"{V1}/latest?base=USD&symbols=CHF,GBP"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"quotes": "USD"}, "unknown options ['quotes']"),
        ({"base": "EURO"}, "base: 'EURO' is not a known currency code"),
        ({"symbols": "USD,XYZ"}, "symbols: 'XYZ' is not a known currency code"),
        ({"timeout": "0"}, "timeout '0' is not a positive number of seconds"),
        ({"max_attempts": "1.5"}, "max_attempts '1.5' is not a whole number of at least 1"),
    ],
)
def test_v1_configure_refuses_unknown_options_and_bad_values(
    options: dict[str, str], reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        FrankfurterSource().configure(**options)

    assert caught.value.source == "frankfurter"
    assert reason in caught.value.reason


# v1 payloads


def test_v1_latest_gives_euro_quotes_at_the_ecb_concertation() -> None:
    asked: list[str] = []

    quotes = list(FrankfurterSource().fetch(FetchWindow(), serving(V1_DAY, asked)))

    assert asked == [f"{V1}/latest"]
    # 14:15 CET on 2024-01-15 is 13:15 UTC, the instant the ecb source gives the same fix
    assert rendered(quotes) == [
        ("EUR/GBP", "0.8623", "2024-01-15T13:15:00+00:00"),
        ("EUR/USD", "1.089", "2024-01-15T13:15:00+00:00"),
    ]
    assert quotes[0].observed_at == ecb.concertation_time(date(2024, 1, 15))
    assert {(quote.kind, quote.source) for quote in quotes} == {(QuoteKind.MID, "frankfurter")}


def test_v1_time_series_gives_every_day_keyed_in_rates() -> None:
    window = FetchWindow(since=date(2024, 1, 15), until=date(2024, 1, 16))
    asked: list[str] = []

    quotes = list(FrankfurterSource().fetch(window, serving(V1_SERIES, asked)))

    assert asked == [f"{V1}/2024-01-15..2024-01-16"]
    assert rendered(quotes) == [
        ("EUR/GBP", "0.8623", "2024-01-15T13:15:00+00:00"),
        ("EUR/USD", "1.089", "2024-01-15T13:15:00+00:00"),
        ("EUR/GBP", "0.86028", "2024-01-16T13:15:00+00:00"),
        ("EUR/USD", "1.0887", "2024-01-16T13:15:00+00:00"),
    ]


def test_v1_with_another_base_quotes_that_base_including_the_euro() -> None:
    source = FrankfurterSource().configure(base="USD")

    quotes = list(source.fetch(FetchWindow(), serving(V1_USD_BASE)))

    assert [(str(q.pair), q.rate) for q in quotes] == [
        ("USD/CHF", Decimal("0.8557")),
        ("USD/EUR", Decimal("0.91827")),
        ("USD/GBP", Decimal("0.79183")),
    ]


def test_v1_rates_for_an_amount_are_divided_down_to_one_unit() -> None:
    payload = b'{"amount":100,"base":"EUR","date":"2024-01-15","rates":{"JPY":16033.0}}'

    (quote,) = parse_v1(payload, today=TODAY)

    assert quote.pair == Pair.of("EUR", "JPY") and quote.rate == Decimal("160.33")


def test_v1_numbers_keep_digits_a_float_would_lose() -> None:
    payload = (
        b'{"amount":1.0,"base":"EUR","date":"2024-01-15","rates":{"USD":1.08900000000000000001}}'
    )

    (quote,) = parse_v1(payload, today=TODAY)

    assert quote.rate == Decimal("1.08900000000000000001")


def test_v1_a_day_outside_the_window_yields_nothing() -> None:
    # /v1/2024-01-13 (a Saturday) answers the Friday fix of 2024-01-12
    payload = V1_DAY.replace(b"2024-01-15", b"2024-01-12")
    window = FetchWindow(since=date(2024, 1, 13), until=date(2024, 1, 13))

    assert list(FrankfurterSource().fetch(window, serving(payload))) == []


def test_v1_the_base_against_itself_at_one_is_dropped() -> None:
    payload = b'{"amount":1.0,"base":"EUR","date":"2024-01-15","rates":{"EUR":1,"USD":1.089}}'

    assert [str(quote.pair) for quote in parse_v1(payload, today=TODAY)] == ["EUR/USD"]


@pytest.mark.parametrize(
    ("payload", "reason", "location"),
    [
        (b"[]", "not a JSON object with 'base' and 'rates'", "answer.json"),
        (b'{"base":"EUR","date":"2024-01-15"}', "no 'rates' object", "answer.json"),
        (b'{"base":"EURO","date":"2024-01-15","rates":{}}', "base 'EURO' is not a known", None),
        (b'{"base":"EUR","date":"15.01.2024","rates":{}}', "'15.01.2024' is not a date", None),
        (b'{"base":"EUR","date":20240115,"rates":{}}', "the date Decimal('20240115') is not", None),
        (
            b'{"base":"EUR","date":"2024-01-15","rates":{"USD":"1.089"}}',
            "rate '1.089' is not a number",
            "answer.json 2024-01-15 USD",
        ),
        (
            b'{"base":"EUR","date":"2024-01-15","rates":{"USD":-1.089}}',
            "rate -1.089 is not a positive number",
            "answer.json 2024-01-15 USD",
        ),
        (
            b'{"base":"EUR","date":"2024-01-15","rates":{"USD":0}}',
            "rate 0 is not a positive number",
            None,
        ),
        (
            b'{"base":"EUR","date":"2024-01-15","rates":{"XYZ":1.5}}',
            "unknown currency code 'XYZ'",
            "answer.json 2024-01-15 XYZ",
        ),
        (
            b'{"base":"EUR","date":"2024-01-15","rates":{"USD":1.089,"USD":1.09}}',
            "key 'USD' appears twice in one object",
            "answer.json",
        ),
        (
            b'{"base":"EUR","date":"2024-01-15","rates":{"EUR":1.2}}',
            "EUR quoted against itself at 1.2",
            None,
        ),
        (b'{"base":"EUR","date":"2026-12-15","rates":{"USD":1.1}}', "is in the future", None),
        (b'{"amount":0,"base":"EUR","date":"2024-01-15","rates":{}}', "amount 0 is not a", None),
        (b'{"base":"EUR","rates":{"USD":1.089}}', "'USD' is not a date", None),
        (b'{"base":"EUR","rates":{"2024-01-15":[1.089]}}', "not an object", None),
        (b'{"base":"EUR","date":"2024-01-15","rates":{"USD":NaN}}', "not a positive number", None),
    ],
)
def test_v1_malformed_payloads_are_refused(
    payload: bytes, reason: str, location: str | None
) -> None:
    error = refusal(parse_v1, payload)

    assert error.source == "frankfurter"
    assert reason in error.reason
    if location is not None:
        assert error.location == location


@pytest.mark.parametrize(
    "payload", [V1_DAY[:-5], b"", V1_DAY.decode().encode("utf-16")[:-1], b"\x80abc"]
)
def test_truncated_or_undecodable_json_is_refused(payload: bytes) -> None:
    error = refusal(parse_v1, payload)

    assert error.location == "answer.json"
    assert "not valid JSON" in error.reason


def test_an_html_page_served_as_data_is_refused() -> None:
    page = b"<!DOCTYPE html><html><body>Rate limited</body></html>"

    for parse in (parse_v1, parse_v2):
        assert "HTML page" in refusal(parse, page).reason


# v2


@pytest.mark.parametrize(
    ("window", "query"),
    [
        (FetchWindow(), ""),
        (FetchWindow(since=date(2024, 1, 15), until=date(2024, 1, 15)), "?date=2024-01-15"),
        (
            FetchWindow(since=date(2024, 1, 1), until=date(2024, 1, 31)),
            "?from=2024-01-01&to=2024-01-31",
        ),
        (FetchWindow(since=date(2024, 1, 1)), "?from=2024-01-01"),
    ],
)
def test_v2_asks_rates_for_the_window(window: FetchWindow, query: str) -> None:
    assert FrankfurterV2Source().url(window) == f"{V2}/rates{query}"


def test_v2_sends_base_quotes_and_providers() -> None:
    source = FrankfurterV2Source().configure(base="USD", quotes="EUR,GBP", providers="ECB, nbp.b")

    assert source.url(FetchWindow(since=date(2024, 1, 15), until=date(2024, 1, 15))) == (
        f"{V2}/rates?date=2024-01-15&base=USD&quotes=EUR,GBP&providers=ecb,nbp.b"
    )
    assert source.currencies == ("EUR", "GBP")


def test_v2_refuses_a_provider_key_that_is_not_one() -> None:
    with pytest.raises(SourceError, match="'ecb&x=1' is not a provider key"):
        FrankfurterV2Source().configure(providers="ecb&x=1")


def test_v2_rows_become_quotes_labelled_by_their_day_in_utc() -> None:
    asked: list[str] = []

    quotes = list(FrankfurterV2Source().fetch(FetchWindow(), serving(V2_ROWS, asked)))

    assert asked == [f"{V2}/rates"]
    assert rendered(quotes) == [
        ("EUR/USD", "1.089", "2024-01-15T00:00:00+00:00"),
        ("EUR/PLN", "4.3705", "2024-01-15T00:00:00+00:00"),
    ]
    assert {(quote.kind, quote.source) for quote in quotes} == {(QuoteKind.MID, "frankfurter-v2")}


def test_v2_extra_keys_are_ignored_and_the_window_applies() -> None:
    payload = (
        b'[{"date":"2024-01-15","base":"USD","quote":"JPY","rate":147.12,"providers":["ecb"]},'
        b'{"date":"2024-01-16","base":"USD","quote":"JPY","rate":147.31,"providers":["ecb"]}]'
    )

    quotes = parse_v2(payload, window=FetchWindow(since=date(2024, 1, 16)), today=TODAY)

    assert [(str(q.pair), q.rate, q.observed_at) for q in quotes] == [
        ("USD/JPY", Decimal("147.31"), datetime(2024, 1, 16, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ({"rows": []}, "not a JSON list of rates"),
        (["x"], "a row is not an object"),
        ([{"date": "2024-01-15", "base": "EUR", "quote": "USD"}], "a row without rate"),
        ([{"base": "EUR", "rate": 1.1}], "a row without date, quote"),
        ([{"date": "2024-01-15", "base": "EUR", "quote": "XYZ", "rate": 1}], "unknown currency"),
        ([{"date": "2024-01-15", "base": 1, "quote": "USD", "rate": 1}], "unknown currency"),
        ([{"date": "2024-01-15", "base": "EUR", "quote": "USD", "rate": "1.1"}], "not a number"),
        ([{"date": "2024-01-15", "base": "EUR", "quote": "USD", "rate": -1}], "not a positive"),
        ([{"date": "2024-01-15", "base": "EUR", "quote": "EUR", "rate": 2}], "against itself"),
        ([{"date": "2026-12-31", "base": "EUR", "quote": "USD", "rate": 1}], "in the future"),
        ([{"date": "yesterday", "base": "EUR", "quote": "USD", "rate": 1}], "is not a date"),
        (
            [{"date": "2024-01-15", "base": "EUR", "quote": "USD", "rate": 1.089}] * 2,
            "EUR/USD on 2024-01-15 appears twice",
        ),
    ],
)
def test_v2_malformed_rows_are_refused(rows: object, reason: str) -> None:
    error = refusal(parse_v2, json.dumps(rows).encode())

    assert error.source == "frankfurter-v2"
    assert reason in error.reason
    assert error.location is not None and error.location.startswith("answer.json")


def test_v2_the_location_names_the_row_its_day_and_pair() -> None:
    payload = b'[{"date":"2024-01-15","base":"EUR","quote":"USD","rate":0}]'

    assert refusal(parse_v2, payload).location == "answer.json [0] 2024-01-15 EUR/USD"


def test_v2_a_float_is_never_involved() -> None:
    payload = b'[{"date":"2024-01-15","base":"EUR","quote":"USD","rate":1.0890000000000000000001}]'

    (quote,) = parse_v2(payload, today=TODAY)

    assert quote.rate == Decimal("1.0890000000000000000001")


# HTTP


@pytest.mark.parametrize("source", [FrankfurterSource(), FrankfurterV2Source()])
def test_a_404_is_a_source_error(source: FrankfurterSource | FrankfurterV2Source) -> None:
    with pytest.raises(SourceError) as caught:
        list(source.fetch(FetchWindow(), serving(b'{"message":"not found"}', status=404)))

    assert caught.value.source == source.name
    assert "HTTP 404" in caught.value.reason


@pytest.mark.parametrize("source", [FrankfurterSource(), FrankfurterV2Source()])
def test_server_errors_fail_after_the_configured_attempts(
    source: FrankfurterSource | FrankfurterV2Source,
) -> None:
    asked: list[str] = []
    configured = source.configure(max_attempts="2", backoff="0")

    with pytest.raises(SourceError, match="after 2 attempts: HTTP 503"):
        list(configured.fetch(FetchWindow(), serving(b"", asked, status=503)))
    assert len(asked) == 2


@pytest.mark.parametrize("source", [FrankfurterSource(), FrankfurterV2Source()])
def test_an_unchanged_answer_yields_nothing(
    source: FrankfurterSource | FrankfurterV2Source,
) -> None:
    assert list(source.fetch(FetchWindow(), serving(b"", status=304))) == []


# Anything else is a SourceError, never another exception


def check_outcome(parse: Callable[..., list[Quote]], payload: bytes, source: str) -> None:
    """Parsing either gives valid quotes or raises a `SourceError` of this source."""
    try:
        quotes = parse(payload, label="fuzzed", today=TODAY)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == source
        assert refused.reason
        assert refused.location and refused.location.startswith("fuzzed")
    for quote in quotes:
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
        st.integers(min_value=0, max_value=400),
        st.binary(min_size=1, max_size=6)
        | st.sampled_from([b"{", b"]", b'"', b",", b"0", b"1e9999", b"-", b"NaN", b"\xff", b"EUR"]),
    ),
    min_size=1,
    max_size=4,
)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(payload: bytes) -> None:
    check_outcome(parse_v1, payload, "frankfurter")
    check_outcome(parse_v2, payload, "frankfurter-v2")


@given(mutations, st.sampled_from([V1_DAY, V1_SERIES, V1_USD_BASE]))
def test_a_mutated_v1_answer_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]], payload: bytes
) -> None:
    check_outcome(parse_v1, mutate(payload, changes), "frankfurter")


@given(mutations)
def test_a_mutated_v2_answer_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(parse_v2, mutate(V2_ROWS, changes), "frankfurter-v2")


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.text(max_size=12) | st.integers() | st.floats(),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["amount", "base", "date", "rates", "quote", "rate", "USD", "2024-01-15"]
            ),
            children,
        )
    ),
    max_leaves=12,
)


@given(json_values)
def test_any_json_shape_parses_to_valid_quotes_or_a_source_error(value: object) -> None:
    payload = json.dumps(value).encode()

    check_outcome(parse_v1, payload, "frankfurter")
    check_outcome(parse_v2, payload, "frankfurter-v2")
