"""The Binance REST source: book tickers now, kline closes for backfills, rate-limit statuses.

Payloads follow the shapes in SOURCES.md (bookTicker and klines as Binance documents them), with
realistic EURUSDT / USDTTRY prices; HTTP is served by an httpx.MockTransport.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, QuoteKind, SourceError
from fxcortex.sources.binance import (
    BinanceSource,
    fxcortex_register_sources,
    parse_book_ticker,
    parse_klines,
    read_klines,
    split_symbol,
)

NOW = datetime(2026, 3, 10, 12, 0, 30, 123456, tzinfo=UTC)
EUR_USDT = Pair.of("EUR", "USDT")
EURUSDT_TICKER = (
    b'{"symbol":"EURUSDT","bidPrice":"1.08310000","bidQty":"5120.40000000",'
    b'"askPrice":"1.08320000","askQty":"8731.10000000"}'
)
TWO_TICKERS = (
    b'[{"symbol":"EURUSDT","bidPrice":"1.08310000","bidQty":"5120.4","askPrice":"1.08320000",'
    b'"askQty":"8731.1"},{"symbol":"USDTTRY","bidPrice":"36.51000000","bidQty":"90412.0",'
    b'"askPrice":"36.52000000","askQty":"1204.5"}]'
)
# Two one-minute EURUSDT klines of 2026-03-02, 00:00 and 00:01 UTC
KLINES = (
    b'[[1772409600000,"1.08120000","1.08150000","1.08110000","1.08140000","10234.5",'
    b'1772409659999,"11067.2",41,"5120.0","5536.1","0"],'
    b'[1772409660000,"1.08140000","1.08160000","1.08130000","1.08130000","8123.0",'
    b'1772409719999,"8784.1",33,"4061.2","4391.8","0"]]'
)
MAR_2_0000 = datetime(2026, 3, 2, tzinfo=UTC)


def source(**options: str) -> BinanceSource:
    return attrs.evolve(BinanceSource().configure(**options), now=lambda: NOW, sleep=lambda _: None)


def serve(handler: Callable[[httpx.Request], httpx.Response]) -> FetchContext:
    return FetchContext(http_transport=httpx.MockTransport(handler))


def kline_row(open_ms: int, close: str, *, minutes: int = 1) -> list[Any]:
    close_ms = open_ms + minutes * 60_000 - 1
    return [
        open_ms,
        "1.0812",
        "1.0816",
        "1.0811",
        close,
        "100.0",
        close_ms,
        "108.1",
        3,
        "1",
        "1",
        "0",
    ]


# Symbols


@pytest.mark.parametrize(
    ("symbol", "pair"),
    [
        ("EURUSDT", "EUR/USDT"),
        ("USDTTRY", "USDT/TRY"),
        ("usdtbrl", "USDT/BRL"),
        ("BTCUSDC", "BTC/USDC"),
        ("ETHBTC", "ETH/BTC"),
        ("EURIUSDT", "EURI/USDT"),
        ("FDUSDUSDT", "FDUSD/USDT"),
    ],
)
def test_a_symbol_splits_into_two_known_codes_by_the_longest_quote(symbol: str, pair: str) -> None:
    assert str(split_symbol(symbol)) == pair


@pytest.mark.parametrize("symbol", ["XYZABC", "EUR", "EURUSDTX", "", "PEPEUSDT"])
def test_a_symbol_that_is_not_two_known_codes_is_refused(symbol: str) -> None:
    with pytest.raises(SourceError, match="not two known currency or asset codes"):
        split_symbol(symbol)


def test_the_currencies_are_the_legs_of_the_symbols() -> None:
    assert BinanceSource().currencies == ("BRL", "EUR", "TRY", "USDT")
    assert BinanceSource().configure(symbols="ETHBTC").currencies == ("BTC", "ETH")


# Book tickers


def test_a_book_ticker_gives_a_bid_and_an_ask_stamped_when_received() -> None:
    quotes = parse_book_ticker(EURUSDT_TICKER, received_at=NOW)

    assert quotes == [
        Quote(
            pair=EUR_USDT,
            rate=Decimal("1.0831"),
            observed_at=NOW,
            source="binance",
            kind=QuoteKind.BID,
        ),
        Quote(
            pair=EUR_USDT,
            rate=Decimal("1.0832"),
            observed_at=NOW,
            source="binance",
            kind=QuoteKind.ASK,
        ),
    ]


def test_a_list_of_book_tickers_reads_every_symbol_in_its_direction() -> None:
    quotes = parse_book_ticker(TWO_TICKERS, received_at=NOW)

    assert [(str(q.pair), q.kind.value, q.rate) for q in quotes] == [
        ("EUR/USDT", "bid", Decimal("1.0831")),
        ("EUR/USDT", "ask", Decimal("1.0832")),
        ("USDT/TRY", "bid", Decimal("36.51")),
        ("USDT/TRY", "ask", Decimal("36.52")),
    ]


def test_an_empty_side_of_the_book_is_left_out() -> None:
    payload = EURUSDT_TICKER.replace(b'"bidPrice":"1.08310000"', b'"bidPrice":"0.00000000"')

    assert [q.kind for q in parse_book_ticker(payload, received_at=NOW)] == [QuoteKind.ASK]


BOOK_REFUSALS = [
    (b"", "expected JSON, got an empty body"),
    (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "an HTML page"),
    (EURUSDT_TICKER[:50], "malformed JSON"),
    (b'{"code":-1121,"msg":"Invalid symbol."}', "Binance error -1121: Invalid symbol."),
    (b"[]", "holds no book tickers"),
    (b"[1]", "expected a book ticker object"),
    (b'{"bidPrice":"1","askPrice":"1"}', "without a symbol"),
    (EURUSDT_TICKER.replace(b"EURUSDT", b"SHIBDOGE"), "not two known"),
    (EURUSDT_TICKER.replace(b'"1.08310000"', b"1.0831"), "expected the price as a string"),
    (EURUSDT_TICKER.replace(b'"1.08310000"', b'"1,0831"'), "'1,0831' is not a number"),
    (EURUSDT_TICKER.replace(b'"1.08310000"', b'"-1.0831"'), "not a positive number"),
    (EURUSDT_TICKER.replace(b'"1.08310000"', b'"Infinity"'), "not a positive number"),
    (EURUSDT_TICKER.replace(b'"1.08310000"', b'"1.09"'), "crossed book: bid 1.09 above ask"),
    (b"[" + EURUSDT_TICKER + b"," + EURUSDT_TICKER + b"]", "EURUSDT appears twice"),
    (b'{"symbol":"EUR\xffUSDT"}', "malformed JSON"),
]


@pytest.mark.parametrize(("payload", "reason"), BOOK_REFUSALS)
def test_a_broken_book_ticker_is_a_source_error(payload: bytes, reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_book_ticker(payload, received_at=NOW, label="bookTicker")

    assert caught.value.source == "binance"
    assert caught.value.location and caught.value.location.startswith("bookTicker")
    assert reason in caught.value.reason


def test_a_ticker_for_a_symbol_not_asked_for_is_refused() -> None:
    with pytest.raises(SourceError, match="USDTTRY, which was not asked for"):
        parse_book_ticker(TWO_TICKERS, received_at=NOW, symbols={"EURUSDT": EUR_USDT})


# Klines


def test_kline_closes_are_mid_quotes_at_each_close_time() -> None:
    quotes = parse_klines(KLINES, pair=EUR_USDT, now=NOW)

    assert quotes == [
        Quote(
            pair=EUR_USDT,
            rate=Decimal("1.0814"),
            observed_at=MAR_2_0000 + timedelta(seconds=59, milliseconds=999),
            source="binance",
        ),
        Quote(
            pair=EUR_USDT,
            rate=Decimal("1.0813"),
            observed_at=MAR_2_0000 + timedelta(minutes=1, seconds=59, milliseconds=999),
            source="binance",
        ),
    ]


def test_the_example_kline_of_the_binance_documentation_reads() -> None:
    payload = (
        b'[[1499040000000,"0.01634790","0.80000000","0.01575800","0.01577100",'
        b'"148976.11427815",1499644799999,"2434.19055334",308,"1756.87402397",'
        b'"28.46694368","0"]]'
    )

    (quote,) = parse_klines(payload, pair=Pair.of("LTC", "BTC"), now=NOW)

    assert quote.rate == Decimal("0.01577100")
    assert quote.observed_at == datetime(2017, 7, 9, 23, 59, 59, 999000, tzinfo=UTC)


def test_the_kline_in_progress_is_left_out_but_counted_for_paging() -> None:
    open_ms = int(datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp() * 1000)
    payload = json.dumps([kline_row(open_ms - 60_000, "1.09"), kline_row(open_ms, "1.0901")])

    page = read_klines(payload.encode(), pair=EUR_USDT, now=NOW)

    assert [q.rate for q in page.quotes] == [Decimal("1.09")]
    assert page.rows == 2
    assert page.last_close_ms == open_ms + 59_999


KLINE_REFUSALS = [
    (b"{}", "expected a list of klines"),
    (b'{"code":-1100,"msg":"Illegal characters found in parameter \'symbol\'."}', "-1100"),
    (b"[[1772409600000]]", "at least 7 fields"),
    (KLINES.replace(b"1772409600000", b'"1772409600000"'), "expected milliseconds"),
    (KLINES.replace(b"1772409600000", b"1772409600000000"), "microseconds?"),
    (KLINES.replace(b"1772409659999", b"1772409500000"), "is not after open time"),
    (KLINES.replace(b"1772409660000", b"1772409600000"), "repeats or goes back"),
    (KLINES.replace(b'"1.08130000","8123.0"', b'"0","8123.0"'), "is zero"),
    (KLINES.replace(b'"1.08140000","10234.5"', b'"abc","10234.5"'), "'abc' is not a number"),
    (
        KLINES.replace(b"1772409600000", b"3000000000000")
        .replace(b"1772409659999", b"3000000059999")
        .replace(b"1772409660000", b"3000000060000")
        .replace(b"1772409719999", b"3000000119999"),
        "is in the future",
    ),
    (b"<html><body>Forbidden</body></html>", "an HTML page"),
]


@pytest.mark.parametrize(("payload", "reason"), KLINE_REFUSALS)
def test_broken_klines_are_a_source_error_naming_the_kline(payload: bytes, reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_klines(payload, pair=EUR_USDT, now=NOW, label="klines")

    assert caught.value.source == "binance"
    assert caught.value.location and caught.value.location.startswith("klines")
    assert reason in caught.value.reason


# Fetching


def test_an_open_window_fetches_every_book_ticker_in_one_request() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, content=TWO_TICKERS)

    quotes = list(
        source().configure(symbols="EURUSDT,USDTTRY").fetch(FetchWindow(), serve(handler))
    )

    assert len(quotes) == 4
    assert {q.observed_at for q in quotes} == {NOW}
    (request,) = requests
    assert request.url.host == "data-api.binance.vision"
    assert request.url.path == "/api/v3/ticker/bookTicker"
    assert request.url.params["symbols"] == '["EURUSDT","USDTTRY"]'


def test_one_symbol_is_asked_for_with_symbol_and_the_main_host_can_be_chosen() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, content=EURUSDT_TICKER)

    chosen = source(symbols="EURUSDT", base_url="https://api.binance.com/")
    quotes = list(chosen.fetch(FetchWindow(), serve(handler)))

    assert [str(url) for url in seen] == [
        "https://api.binance.com/api/v3/ticker/bookTicker?symbol=EURUSDT"
    ]
    assert [q.kind for q in quotes] == [QuoteKind.BID, QuoteKind.ASK]


def test_a_window_backfills_klines_from_midnight_to_the_end_of_until() -> None:
    asked: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(dict(request.url.params))
        return httpx.Response(200, content=KLINES)

    window = FetchWindow(since=date(2026, 3, 2), until=date(2026, 3, 2))
    quotes = list(source(symbols="EURUSDT").fetch(window, serve(handler)))

    assert asked == [
        {
            "symbol": "EURUSDT",
            "interval": "1m",
            "startTime": "1772409600000",
            "endTime": "1772495999999",
            "limit": "1000",
        }
    ]
    assert [q.rate for q in quotes] == [Decimal("1.0814"), Decimal("1.0813")]
    assert {q.kind for q in quotes} == {QuoteKind.MID}


def test_a_backfill_pages_by_start_time_until_a_short_page() -> None:
    start_ms = 1772409600000
    pages = {
        start_ms: [kline_row(start_ms + i * 60_000, f"1.08{i % 100:02d}") for i in range(1000)],
        start_ms + 1000 * 60_000: [
            kline_row(start_ms + (1000 + i) * 60_000, "1.0900") for i in range(440)
        ],
    }
    asked: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["startTime"])
        asked.append(start)
        return httpx.Response(200, json=pages[start])

    window = FetchWindow(since=date(2026, 3, 2), until=date(2026, 3, 2))
    quotes = list(source(symbols="EURUSDT").fetch(window, serve(handler)))

    assert asked == [start_ms, start_ms + 1000 * 60_000]
    assert len(quotes) == 1440
    assert quotes[-1].observed_at == datetime(2026, 3, 2, 23, 59, 59, 999000, tzinfo=UTC)
    assert len({q.observed_at for q in quotes}) == 1440


def test_a_backfill_is_parsed_whole_before_anything_is_yielded() -> None:
    start_ms = 1772409600000
    good = [kline_row(start_ms + i * 60_000, "1.08") for i in range(1000)]
    bad = [kline_row(start_ms + 1000 * 60_000, "-1")]

    def handler(request: httpx.Request) -> httpx.Response:
        page = good if request.url.params["startTime"] == str(start_ms) else bad
        return httpx.Response(200, json=page)

    window = FetchWindow(since=date(2026, 3, 2), until=date(2026, 3, 2))
    with pytest.raises(SourceError, match="not a positive number"):
        source(symbols="EURUSDT").fetch(window, serve(handler))


def test_a_longer_interval_is_asked_for_and_sets_the_observation_interval() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["interval"] == "1h"
        return httpx.Response(200, content=b"[]")

    hourly = source(symbols="EURUSDT", interval="1h")

    assert list(hourly.fetch(FetchWindow(since=date(2026, 3, 2)), serve(handler))) == []
    assert hourly.observation_interval == timedelta(hours=1)


def test_http_418_is_reported_as_a_ban_without_retrying() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(418, headers={"Retry-After": "120"})

    with pytest.raises(SourceError) as caught:
        source().fetch(FetchWindow(), serve(handler))

    assert len(calls) == 1
    assert caught.value.reason.startswith("HTTP 418")
    assert "banned this IP" in caught.value.reason
    assert caught.value.location and "bookTicker" in caught.value.location


def test_http_429_is_retried_after_the_wait_binance_asks_for() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(200, content=EURUSDT_TICKER),
        ]
    )
    waits: list[float] = []
    patient = attrs.evolve(source(symbols="EURUSDT"), sleep=waits.append)

    quotes = list(patient.fetch(FetchWindow(), serve(lambda request: next(answers))))

    assert len(quotes) == 2
    assert 3.0 in waits


def test_http_429_that_persists_fails_after_max_attempts() -> None:
    with pytest.raises(SourceError, match="failed after 2 attempts: HTTP 429"):
        source(max_attempts="2").fetch(FetchWindow(), serve(lambda request: httpx.Response(429)))


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (451, "restricted country"),
        (400, "unknown or delisted symbol"),
        (404, "HTTP 404"),
        (503, "failed after 3 attempts: HTTP 503"),
    ],
)
def test_http_errors_are_source_errors_with_their_meaning(status: int, reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        source(max_attempts="3").fetch(FetchWindow(), serve(lambda request: httpx.Response(status)))

    assert caught.value.source == "binance"
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"symbols": "EURUSDT,XYZQQQ"}, "'XYZQQQ' is not two known"),
        ({"symbols": "EURUSDT,eurusdt"}, "listed twice"),
        ({"symbols": ","}, "no symbols"),
        ({"interval": "2m"}, "is not one of 1s, 1m"),
        ({"base_url": "data-api.binance.vision"}, "not an http(s) URL"),
        ({"max_attempts": "0"}, "too small"),
        ({"timeout": "soon"}, "not a number"),
        ({"key": "secret"}, "unknown options ['key']"),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        BinanceSource().configure(**options)

    assert reason in caught.value.reason


def test_the_plugin_registers_the_binance_source() -> None:
    registered: list[BinanceSource] = []
    fxcortex_register_sources(registered.append)

    assert [s.name for s in registered] == ["binance"]
    assert registered[0].history_since == date(2017, 7, 14)


# Fuzzing: anything either parses to valid quotes or is a SourceError


def check(parse: Callable[[bytes], list[Quote]], payload: bytes) -> None:
    try:
        quotes = parse(payload)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "binance"
    assert all(q.rate > 0 and q.observed_at.tzinfo is UTC for q in quotes)


def book(payload: bytes) -> list[Quote]:
    return parse_book_ticker(payload, received_at=NOW)


def klines(payload: bytes) -> list[Quote]:
    return parse_klines(payload, pair=EUR_USDT, now=NOW)


@st.composite
def mutated(draw: st.DrawFn, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data) - 1)) if data else 0
        token = draw(st.sampled_from([b"", b"0", b"-", b'"', b",", b"[", b"}", b"9e999", b"\xff"]))
        data[at : at + draw(st.integers(0, 3))] = token
    return bytes(data)


@given(st.one_of(st.binary(max_size=200), mutated(EURUSDT_TICKER), mutated(TWO_TICKERS)))
def test_any_book_ticker_bytes_parse_or_raise_a_source_error(payload: bytes) -> None:
    check(book, payload)


@given(st.one_of(st.binary(max_size=200), mutated(KLINES)))
def test_any_klines_bytes_parse_or_raise_a_source_error(payload: bytes) -> None:
    check(klines, payload)
