"""The Binance WebSocket source: the bookTicker message parser, and a bounded read of the stream.

No network: messages have the documented bookTicker shape (SOURCES.md) and the connection is a
stand-in answering ``recv`` from a list, so these tests run without the ``websockets`` extra.
"""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchWindow, MissingExtraError, Pair, Quote, QuoteKind, SourceError
from fxcortex.sources.binance_ws import (
    BinanceWebSocketSource,
    Connection,
    fxcortex_register_sources,
    parse_message,
    stream_url,
)

RECEIVED = datetime(2026, 3, 10, 12, 0, 30, 250000, tzinfo=UTC)
# The bookTicker example of the Binance documentation (SOURCES.md), verbatim
DOCUMENTED = b'{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}'  # noqa: E501
EURUSDT = '{"u":7001,"s":"EURUSDT","b":"1.08310000","B":"5120.4","a":"1.08320000","A":"8731.1"}'
USDTTRY = '{"u":9002,"s":"USDTTRY","b":"36.51000000","B":"90412.0","a":"36.52000000","A":"1204.5"}'


def combined(message: str, stream: str) -> str:
    return f'{{"stream":"{stream}","data":{message}}}'


# The parser


def test_the_documented_message_gives_a_bid_and_an_ask_stamped_when_received() -> None:
    quotes = parse_message(DOCUMENTED, received_at=RECEIVED)

    pair = Pair.of("BNB", "USDT")
    assert quotes == [
        Quote(
            pair=pair,
            rate=Decimal("25.3519"),
            observed_at=RECEIVED,
            source="binance-ws",
            kind=QuoteKind.BID,
        ),
        Quote(
            pair=pair,
            rate=Decimal("25.3652"),
            observed_at=RECEIVED,
            source="binance-ws",
            kind=QuoteKind.ASK,
        ),
    ]


def test_a_combined_stream_envelope_is_unwrapped() -> None:
    quotes = parse_message(combined(USDTTRY, "usdttry@bookTicker"), received_at=RECEIVED)

    assert [(str(q.pair), q.kind.value, q.rate) for q in quotes] == [
        ("USDT/TRY", "bid", Decimal("36.51")),
        ("USDT/TRY", "ask", Decimal("36.52")),
    ]


def test_an_empty_side_is_left_out() -> None:
    message = EURUSDT.replace('"a":"1.08320000"', '"a":"0.00000000"')

    assert [q.kind for q in parse_message(message, received_at=RECEIVED)] == [QuoteKind.BID]


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("", "is not JSON"),
        ('{"s":"EURUSDT","b":"1.0831"', "is not JSON"),
        ("[1, 2]", "expected a bookTicker object, got list"),
        ('{"result":null,"id":1}', "without a symbol"),
        ('{"code":2,"msg":"Invalid request"}', "Binance error 2: Invalid request"),
        (EURUSDT.replace("EURUSDT", "SHIBPEPE"), "not two known"),
        (EURUSDT.replace('"1.08310000"', "1.0831"), "expected the price as a string"),
        (EURUSDT.replace('"a":"1.08320000",', ""), "expected the price as a string"),
        (EURUSDT.replace('"1.08310000"', '"n/a"'), "'n/a' is not a number"),
        (EURUSDT.replace('"1.08310000"', '"-1.0831"'), "not a positive number"),
        (EURUSDT.replace('"1.08310000"', '"1.1"'), "crossed book: bid 1.1 above ask 1.0832"),
    ],
)
def test_a_broken_message_is_a_source_error(message: str, reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse_message(message, received_at=RECEIVED, label="message 1")

    assert caught.value.source == "binance-ws"
    assert caught.value.location and caught.value.location.startswith("message 1")
    assert reason in caught.value.reason


def test_a_message_for_a_symbol_not_subscribed_is_refused() -> None:
    with pytest.raises(SourceError, match="USDTTRY, which was not subscribed"):
        parse_message(USDTTRY, received_at=RECEIVED, symbols={"EURUSDT": Pair.of("EUR", "USDT")})


@st.composite
def mutated(draw: st.DrawFn, message: str) -> str:
    text = list(message)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        token = draw(st.sampled_from(["", "0", "-", '"', ",", "{", "]", "1e999", "\x00", "ü"]))
        text[at : at + draw(st.integers(0, 3))] = list(token)
    return "".join(text)


@given(
    st.one_of(
        st.text(max_size=120),
        st.binary(max_size=120),
        mutated(EURUSDT),
        mutated(combined(USDTTRY, "usdttry@bookTicker")),
    )
)
def test_any_message_parses_or_raises_a_source_error(message: str | bytes) -> None:
    try:
        quotes = parse_message(message, received_at=RECEIVED)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "binance-ws"
    assert all(q.rate > 0 and q.observed_at == RECEIVED for q in quotes)


# The stream


def test_one_symbol_reads_its_raw_stream_and_several_the_combined_stream() -> None:
    base = "wss://data-stream.binance.vision"

    assert stream_url(base, ["EURUSDT"]) == f"{base}/ws/eurusdt@bookTicker"
    assert (
        stream_url(base, ["EURUSDT", "USDTTRY"])
        == f"{base}/stream?streams=eurusdt@bookTicker/usdttry@bookTicker"
    )


@attrs.define
class StandIn:
    """A connection answering from a list; then silence (a timeout) or a failure."""

    messages: list[str | bytes]
    after: BaseException | None = None
    timeouts: list[float | None] = attrs.Factory(list)

    def recv(self, timeout: float | None = None) -> str | bytes:
        self.timeouts.append(timeout)
        if self.messages:
            return self.messages.pop(0)
        raise self.after or TimeoutError()


@attrs.define
class Clock:
    """Fake time: ``now`` and ``monotonic`` advance by ``step`` each call of ``now``."""

    at: datetime = RECEIVED
    step: timedelta = timedelta(milliseconds=100)
    elapsed: float = 0.0

    def now(self) -> datetime:
        self.at += self.step
        self.elapsed += self.step.total_seconds()
        return self.at

    def monotonic(self) -> float:
        return self.elapsed


def streaming(
    connection: Connection, clock: Clock | None = None, **options: str
) -> tuple[BinanceWebSocketSource, list[str]]:
    urls: list[str] = []
    clock = clock or Clock()

    def connect(url: str, open_timeout: float) -> contextlib.AbstractContextManager[Connection]:
        urls.append(url)
        return contextlib.nullcontext(connection)

    source = attrs.evolve(
        BinanceWebSocketSource().configure(**options),
        extra=None,  # the stand-in replaces the websockets client
        connect=connect,
        now=clock.now,
        monotonic=clock.monotonic,
    )
    return source, urls


def test_a_fetch_reads_until_max_messages_and_stamps_each_when_received() -> None:
    connection = StandIn([EURUSDT, USDTTRY, EURUSDT, USDTTRY])
    source, urls = streaming(connection, symbols="EURUSDT,USDTTRY", max_messages="3")

    quotes = list(source.fetch(FetchWindow()))

    assert urls == [
        "wss://data-stream.binance.vision/stream?streams=eurusdt@bookTicker/usdttry@bookTicker"
    ]
    assert [(str(q.pair), q.kind.value) for q in quotes] == [
        ("EUR/USDT", "bid"),
        ("EUR/USDT", "ask"),
        ("USDT/TRY", "bid"),
        ("USDT/TRY", "ask"),
        ("EUR/USDT", "bid"),
        ("EUR/USDT", "ask"),
    ]
    # the fetch's own clock reads "now" once for the window, then once per message
    assert [q.observed_at for q in quotes[::2]] == [
        RECEIVED + timedelta(milliseconds=200 + 100 * i) for i in range(3)
    ]
    assert connection.messages == [USDTTRY]


def test_a_fetch_ends_when_the_duration_is_spent() -> None:
    connection = StandIn([EURUSDT] * 50)
    clock = Clock(step=timedelta(seconds=1))
    source, _ = streaming(connection, clock, symbols="EURUSDT", duration="5", max_messages="1000")

    quotes = list(source.fetch(FetchWindow()))

    # one message a second for five seconds, each recv told the time left
    assert len(quotes) == 2 * 5
    assert connection.timeouts == pytest.approx([5.0, 4.0, 3.0, 2.0, 1.0])


def test_a_fetch_ends_on_silence() -> None:
    source, _ = streaming(StandIn([EURUSDT]), symbols="EURUSDT")

    assert len(list(source.fetch(FetchWindow()))) == 2


def test_messages_received_in_the_same_microsecond_get_distinct_stamps() -> None:
    clock = Clock(step=timedelta(0))
    source, _ = streaming(StandIn([EURUSDT, EURUSDT, EURUSDT]), clock, symbols="EURUSDT")

    stamps = [q.observed_at for q in source.fetch(FetchWindow()) if q.kind is QuoteKind.BID]

    assert stamps == [
        RECEIVED,
        RECEIVED + timedelta(microseconds=1),
        RECEIVED + timedelta(microseconds=2),
    ]


def test_one_malformed_message_fails_the_whole_fetch() -> None:
    source, _ = streaming(StandIn([EURUSDT, '{"s":"EURUSDT","b":"x","a":"1"}']), symbols="EURUSDT")

    with pytest.raises(SourceError) as caught:
        source.fetch(FetchWindow())

    assert caught.value.location and caught.value.location.endswith("message 2 symbol EURUSDT b")
    assert "'x' is not a number" in caught.value.reason


class Refused(OSError):
    """What a refused handshake looks like: an error carrying the HTTP response."""

    def __init__(self, status: int) -> None:
        super().__init__(f"server rejected WebSocket connection: HTTP {status}")
        self.response = type("Response", (), {"status_code": status})()


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (Refused(451), "HTTP 451: Binance refuses connections from this location"),
        (Refused(418), "HTTP 418: Binance has banned this IP"),
        (Refused(503), "refused with HTTP 503"),
        (ConnectionResetError("reset by peer"), "ConnectionResetError: reset by peer"),
        (EOFError("stream ended"), "EOFError: stream ended"),
    ],
)
def test_connection_failures_are_source_errors_naming_the_stream(
    failure: BaseException, reason: str
) -> None:
    source, _ = streaming(StandIn([EURUSDT], after=failure), symbols="EURUSDT")

    with pytest.raises(SourceError) as caught:
        source.fetch(FetchWindow())

    assert caught.value.source == "binance-ws"
    assert caught.value.location == "wss://data-stream.binance.vision/ws/eurusdt@bookTicker"
    assert reason in caught.value.reason


def test_a_failure_to_connect_is_a_source_error() -> None:
    def connect(url: str, open_timeout: float) -> contextlib.AbstractContextManager[Connection]:
        raise TimeoutError("timed out during opening handshake")

    source = attrs.evolve(BinanceWebSocketSource(), extra=None, connect=connect)

    with pytest.raises(SourceError, match="timed out during opening handshake"):
        source.fetch(FetchWindow())


def test_a_window_without_today_yields_nothing_and_does_not_connect() -> None:
    source, urls = streaming(StandIn([EURUSDT]))

    assert list(source.fetch(FetchWindow(until=date(2026, 3, 9)))) == []
    assert urls == []


def test_without_websockets_a_fetch_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "websockets", None)

    with pytest.raises(MissingExtraError) as caught:
        BinanceWebSocketSource().fetch(FetchWindow())

    assert "pip install 'fxcortex-sources[binance-ws]'" in str(caught.value)
    assert caught.value.plugin == "binance-ws"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"max_messages": "0"}, "not a positive whole number"),
        ({"max_messages": "many"}, "not a positive whole number"),
        ({"duration": "0"}, "not a number of seconds under a day"),
        ({"duration": "90000"}, "not a number of seconds under a day"),
        ({"base_url": "https://data-stream.binance.vision"}, "not a ws(s) URL"),
        ({"symbols": "EURUSD1"}, "not two known"),
        ({"interval": "1m"}, "unknown options ['interval']"),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        BinanceWebSocketSource().configure(**options)

    assert reason in caught.value.reason


def test_the_plugin_registers_the_websocket_source_with_its_extra() -> None:
    registered: list[BinanceWebSocketSource] = []
    fxcortex_register_sources(registered.append)

    (source,) = registered
    assert source.name == "binance-ws"
    assert source.extra is not None and source.extra.modules == ("websockets",)
    assert source.currencies == ("BRL", "EUR", "TRY", "USDT")
