"""Binance spot top of the book over WebSocket (source ``binance-ws``, extra ``binance-ws``).

Stream: ``wss://data-stream.binance.vision/ws/<symbol>@bookTicker`` for one symbol (market data
only; ``base_url=wss://stream.binance.com:9443`` uses the main host), or the combined stream
``/stream?streams=eurusdt@bookTicker/usdttry@bookTicker`` for several, which wraps each message
as ``{"stream": "eurusdt@bookTicker", "data": {…}}``.

Each message ``{"u":400900217,"s":"EURUSDT","b":"1.08310000","B":"31.21","a":"1.08320000",
"A":"40.66"}`` is one change of the best bid or ask, and carries **no timestamp**: it is stamped
with the moment it was received (UTC). ``b`` becomes a ``bid`` quote and ``a`` an ``ask`` quote of
the pair `fxcortex.sources.binance.split_symbol` gives (EURUSDT → EUR/USDT, the price of one base
unit in quote units); a side at price 0 has no orders and is left out. Two messages of the same
symbol received within the same microsecond would share a natural key, so a later one is stamped
one microsecond after the earlier.

A fetch connects, reads until ``max_messages`` messages (default 100) or ``duration`` seconds
(default 10) have passed, whichever comes first, closes, and only then yields its quotes, so it
always ends and a malformed message stores nothing. It reads only the present: a window that does
not contain today (UTC) yields nothing without connecting. Connection failures, a refused handshake
(HTTP 451 for a restricted country, 418 for a banned IP) and an early close are `SourceError`\\ s.

The client is the ``websockets`` package (its synchronous client), installed by
``pip install 'fxcortex-sources[binance-ws]'``; without it a fetch raises `MissingExtraError`
naming that command.
"""

from __future__ import annotations

import importlib
import json
import time as clock
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, Self
from urllib.parse import quote as url_quote

import attrs

from fxcortex.core import (
    FetchContext,
    FetchWindow,
    Pair,
    Quote,
    QuoteKind,
    Schedule,
    SourceError,
    hookimpl,
)
from fxcortex.core.extras import Extra
from fxcortex.sources.binance import DEFAULT_SYMBOLS, HISTORY_SINCE, split_symbol, symbol_pairs

NAME = "binance-ws"
DEFAULT_BASE_URL = "wss://data-stream.binance.vision"
EXTRA = Extra(distribution="fxcortex-sources", name="binance-ws", modules=("websockets",))
OPTIONS = ("symbols", "base_url", "max_messages", "duration", "open_timeout")
SCHEDULE = Schedule(
    cron="* * * * *", timezone="UTC", description="continuous trading, streamed as it changes"
)
_MICROSECOND = timedelta(microseconds=1)


class Connection(Protocol):
    """What a fetch needs of a WebSocket connection: receive one message within a timeout."""

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next message; raises `TimeoutError` when none came within ``timeout`` seconds."""
        ...


Connect = Callable[[str, float], AbstractContextManager[Connection]]
"""Opens a connection to a URL within a timeout in seconds (the websockets client by default)."""


def stream_url(base_url: str, symbols: list[str]) -> str:
    """The raw stream of one symbol, or the combined stream of several."""
    streams = [f"{symbol.lower()}@bookTicker" for symbol in symbols]
    if len(streams) == 1:
        return f"{base_url}/ws/{streams[0]}"
    return f"{base_url}/stream?streams={url_quote('/'.join(streams), safe='/@')}"


def parse_message(
    message: str | bytes,
    *,
    received_at: datetime,
    symbols: Mapping[str, Pair] | None = None,
    source: str = NAME,
    label: str = "message",
) -> list[Quote]:
    """The bid and ask quotes of one bookTicker message (raw or combined-stream envelope).

    ``symbols`` maps the symbols subscribed to their pairs; a message for another symbol is an
    error. Without it, every symbol is split by `split_symbol`.
    """
    try:
        document = json.loads(message)
    except (ValueError, RecursionError) as error:
        raise SourceError(
            source, f"message is not JSON: {str(message)[:60]!r}", location=label
        ) from error
    if isinstance(document, dict) and "stream" in document and "data" in document:
        label = f"{label} stream {document['stream']}"
        document = document["data"]
    if not isinstance(document, dict):
        raise SourceError(
            source, f"expected a bookTicker object, got {type(document).__name__}", location=label
        )
    if "code" in document and "msg" in document:
        raise SourceError(
            source, f"Binance error {document['code']}: {document['msg']}", location=label
        )
    symbol = document.get("s")
    if not isinstance(symbol, str) or not symbol:
        raise SourceError(source, "bookTicker message without a symbol (s)", location=label)
    where = f"{label} symbol {symbol}"
    if symbols is not None:
        if symbol not in symbols:
            raise SourceError(
                source, f"message for {symbol}, which was not subscribed", location=where
            )
        pair = symbols[symbol]
    else:
        pair = split_symbol(symbol, source=source, location=where)
    bid = _price(document.get("b"), f"{where} b", source)
    ask = _price(document.get("a"), f"{where} a", source)
    if bid and ask and bid > ask:
        raise SourceError(source, f"crossed book: bid {bid} above ask {ask}", location=where)
    quotes = []
    for kind, price in ((QuoteKind.BID, bid), (QuoteKind.ASK, ask)):
        if price:
            quotes.append(
                Quote(pair=pair, rate=price, observed_at=received_at, source=source, kind=kind)
            )
    return quotes


def _price(value: object, where: str, source: str) -> Decimal | None:
    if not isinstance(value, str):
        raise SourceError(
            source, f"expected the price as a string, got {value!r}"[:120], location=where
        )
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise SourceError(source, f"price {value!r} is not a number", location=where) from None
    if not price.is_finite() or price < 0:
        raise SourceError(source, f"price {value!r} is not a positive number", location=where)
    return price or None


def websockets_connect(url: str, open_timeout: float) -> AbstractContextManager[Connection]:
    """Open ``url`` with the ``websockets`` synchronous client (imported only now)."""
    client = importlib.import_module("websockets.sync.client")
    connection: AbstractContextManager[Connection] = client.connect(
        url, open_timeout=open_timeout, max_size=2**20
    )
    return connection


@attrs.frozen(kw_only=True)
class BinanceWebSocketSource:
    """Binance book-ticker stream, read for a bounded time (see the module docstring)."""

    symbols: Mapping[str, Pair] = attrs.field(factory=lambda: symbol_pairs(DEFAULT_SYMBOLS))
    base_url: str = DEFAULT_BASE_URL
    max_messages: int = 100
    duration: float = 10.0
    open_timeout: float = 10.0
    name: str = NAME
    description: str = "Binance spot best bid and ask, streamed over WebSocket for a bounded time"
    schedule: Schedule = SCHEDULE
    history_since: date | None = HISTORY_SINCE
    observation_interval: timedelta = timedelta(milliseconds=100)
    extra: Extra | None = EXTRA
    connect: Connect = attrs.field(default=websockets_connect, repr=False)
    now: Callable[[], datetime] = attrs.field(default=lambda: datetime.now(UTC), repr=False)
    monotonic: Callable[[], float] = attrs.field(default=clock.monotonic, repr=False)

    @property
    def currencies(self) -> tuple[str, ...]:
        """The codes of the configured symbols, sorted."""
        codes = {pair.base.code for pair in self.symbols.values()}
        codes |= {pair.quote.code for pair in self.symbols.values()}
        return tuple(sorted(codes))

    def configure(self, **options: str) -> Self:
        """A copy with ``symbols base_url max_messages duration open_timeout`` set."""
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise SourceError(
                self.name, f"unknown options {sorted(unknown)}; known: {', '.join(OPTIONS)}"
            )
        changes: dict[str, object] = {}
        if "symbols" in options:
            changes["symbols"] = symbol_pairs(options["symbols"], source=self.name)
        if "base_url" in options:
            base_url = options["base_url"].strip().rstrip("/")
            if not base_url.startswith(("wss://", "ws://")):
                raise SourceError(self.name, f"base_url {base_url!r} is not a ws(s) URL")
            changes["base_url"] = base_url
        if "max_messages" in options:
            try:
                max_messages = int(options["max_messages"])
            except ValueError:
                max_messages = 0
            if max_messages < 1:
                raise SourceError(
                    self.name,
                    f"max_messages {options['max_messages']!r} is not a positive whole number",
                )
            changes["max_messages"] = max_messages
        for option in ("duration", "open_timeout"):
            if option in options:
                try:
                    seconds = float(options[option])
                except ValueError:
                    seconds = -1.0
                if not 0 < seconds < 86_400:  # a connection lasts at most 24 hours
                    raise SourceError(
                        self.name,
                        f"{option} {options[option]!r} is not a number of seconds under a day",
                    )
                changes[option] = seconds
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Read the stream for at most ``duration`` seconds or ``max_messages`` messages."""
        if self.extra is not None:
            self.extra.require(self.name)
        if not window.contains(self.now().date()):
            return iter(())
        url = stream_url(self.base_url, list(self.symbols))
        return iter(self._read(url))

    def _read(self, url: str) -> list[Quote]:
        failures = self._failures()
        quotes: list[Quote] = []
        last_stamp: dict[str, datetime] = {}
        deadline = self.monotonic() + self.duration
        try:
            with self.connect(url, self.open_timeout) as connection:
                for number in range(1, self.max_messages + 1):
                    remaining = deadline - self.monotonic()
                    if remaining <= 0:
                        break
                    try:
                        message = connection.recv(timeout=remaining)
                    except TimeoutError:
                        break
                    received_at = self.now()
                    label = f"{url} message {number}"
                    parsed = parse_message(
                        message,
                        received_at=received_at,
                        symbols=self.symbols,
                        source=self.name,
                        label=label,
                    )
                    if parsed:
                        symbol = parsed[0].pair
                        previous = last_stamp.get(str(symbol))
                        if previous is not None and received_at <= previous:
                            received_at = previous + _MICROSECOND
                            parsed = [attrs.evolve(q, observed_at=received_at) for q in parsed]
                        last_stamp[str(symbol)] = received_at
                    quotes += parsed
        except SourceError:
            raise
        except failures as error:
            raise SourceError(self.name, _describe(error), location=url) from error
        return quotes

    def _failures(self) -> tuple[type[BaseException], ...]:
        failures: list[type[BaseException]] = [OSError, TimeoutError, EOFError]
        try:
            exceptions = importlib.import_module("websockets.exceptions")
        except ImportError:
            return tuple(failures)
        failures.append(exceptions.WebSocketException)
        return tuple(failures)


def _describe(error: BaseException) -> str:
    response: Any = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    if status == 451:
        return "HTTP 451: Binance refuses connections from this location (restricted country)"
    if status == 418:
        return "HTTP 418: Binance has banned this IP for exceeding its limits; wait before retrying"
    if status is not None:
        return f"the WebSocket handshake was refused with HTTP {status}"
    name = type(error).__name__
    if name.startswith("ConnectionClosed"):
        return f"the stream closed early ({error})"
    return f"cannot read the stream: {name}: {error}"


@hookimpl
def fxcortex_register_sources(register: Callable[[BinanceWebSocketSource], None]) -> None:
    """Register the Binance WebSocket source (needs the ``binance-ws`` extra to fetch)."""
    register(BinanceWebSocketSource())
