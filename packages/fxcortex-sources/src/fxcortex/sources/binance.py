"""Binance spot market data over public REST: the top of the book now, one-minute closes back.

Endpoints (no key; the default host ``https://data-api.binance.vision`` serves market data only,
``base_url=https://api.binance.com`` uses the main API host instead):

- ``GET /api/v3/ticker/bookTicker?symbol=EURUSDT`` (or ``symbols=["EURUSDT","USDTTRY"]`` for
  several, one request) answers ``{"symbol":"EURUSDT","bidPrice":"1.08310000","bidQty":…,
  "askPrice":"1.08320000","askQty":…}`` (a list of those for several). It carries no timestamp, so
  each quote is stamped with the moment the answer was received (UTC). ``bidPrice`` becomes a
  ``bid`` quote, ``askPrice`` an ``ask``; a side with price 0 has no orders and is left out.
- ``GET /api/v3/klines?symbol=EURUSDT&interval=1m&startTime=…&endTime=…&limit=1000`` answers
  ``[[open time, open, high, low, close, volume, close time, …], …]`` with times in milliseconds
  since the epoch (UTC). Each kline's close becomes a ``mid`` quote observed at its close time
  (``…:59.999``), the last price of that minute: a traded price, not a bid/ask midpoint, but the
  one rate that stands for the minute. A kline whose close time is still ahead (the minute in
  progress) is left out. Pages of 1,000 are walked by moving ``startTime`` past the last close.

Which one runs: a window with neither ``since`` nor ``until`` takes the book-ticker snapshot; a
window with either backfills klines from ``since`` 00:00 UTC (or the first day Binance traded) to
the end of ``until`` (or now). Quotes are filtered to the window by their UTC date.

Symbols. ``symbols`` (default ``EURUSDT,USDTTRY,USDTBRL``) are split into base and quote by the
longest known code at the end whose remainder is also a known code (``EURUSDT`` → EUR/USDT,
``USDTTRY`` → USDT/TRY), so the rate is always the price of one base unit in quote units, as
Binance quotes it. USDT, USDC and the like are crypto codes FX-Cortex accepts beside ISO 4217; a
symbol whose legs are not both known is refused when configured.

Limits. Request weight is 2 per call (4 for several book tickers), 6,000 per minute per IP; a
minimum of ``min_interval`` seconds (0.1) between calls keeps a backfill far below that. HTTP 429 is
retried by the shared fetcher, honouring ``Retry-After``; HTTP 418 means Binance has banned the IP
for ignoring 429s and is reported as such, never retried; HTTP 451 means the caller's location is
restricted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Self

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
from fxcortex.core.currencies import KNOWN_CODES
from fxcortex.sources.http import HttpFetcher, HttpStatusError

NAME = "binance"
DEFAULT_BASE_URL = "https://data-api.binance.vision"
MAIN_BASE_URL = "https://api.binance.com"
BOOK_TICKER_PATH = "/api/v3/ticker/bookTicker"
KLINES_PATH = "/api/v3/klines"
DEFAULT_SYMBOLS = ("EURUSDT", "USDTTRY", "USDTBRL")
KLINE_LIMIT = 1000
HISTORY_SINCE = date(2017, 7, 14)  # Binance opened for trading
INTERVALS: Mapping[str, timedelta] = {
    "1s": timedelta(seconds=1),
    "1m": timedelta(minutes=1),
    "3m": timedelta(minutes=3),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "6h": timedelta(hours=6),
    "8h": timedelta(hours=8),
    "12h": timedelta(hours=12),
    "1d": timedelta(days=1),
}
OPTIONS = ("symbols", "base_url", "interval", "timeout", "max_attempts", "min_interval")
SCHEDULE = Schedule(
    cron="* * * * *", timezone="UTC", description="continuous trading, around the clock"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FUTURE_TOLERANCE = timedelta(days=1)
# Milliseconds since 1970 pass 10**14 only in the year 5138: larger values are microseconds.
_LARGEST_MILLISECONDS = 10**14
# Codes tried as the quote leg, longest first, so EURUSDT is EUR/USDT rather than EURU/SDT.
_CODES_BY_LENGTH = sorted(KNOWN_CODES, key=lambda code: (-len(code), code))


def split_symbol(symbol: str, *, source: str = NAME, location: str | None = None) -> Pair:
    """The pair of a Binance symbol: the longest known code at the end, the rest as base."""
    text = symbol.strip().upper()
    for quote in _CODES_BY_LENGTH:
        if text.endswith(quote) and text[: -len(quote)] in KNOWN_CODES:
            return Pair.of(text[: -len(quote)], quote)
    raise SourceError(
        source,
        f"symbol {symbol!r} is not two known currency or asset codes (e.g. EURUSDT)",
        location=location,
    )


def symbol_pairs(text: str | Sequence[str], *, source: str = NAME) -> dict[str, Pair]:
    """``EURUSDT,USDTTRY`` as an ordered map from symbol to pair; duplicates are refused."""
    items = text.split(",") if isinstance(text, str) else list(text)
    pairs: dict[str, Pair] = {}
    for item in items:
        symbol = item.strip().upper()
        if not symbol:
            continue
        if symbol in pairs:
            raise SourceError(source, f"symbol {symbol} is listed twice")
        pairs[symbol] = split_symbol(symbol, source=source)
    if not pairs:
        raise SourceError(source, "no symbols: give symbols=EURUSDT,…")
    return pairs


def ban_aware(error: SourceError) -> SourceError:
    """Binance's own meaning of a failed request's status, where it has one."""
    if not isinstance(error, HttpStatusError):
        return error
    meaning = {
        418: "Binance has banned this IP for sending requests after HTTP 429 (a ban lasts from "
        "2 minutes up to 3 days and grows when repeated); wait before fetching again",
        451: "Binance refuses requests from this location (restricted country)",
        400: "Binance refused the request as malformed (an unknown or delisted symbol?)",
        403: "Binance's firewall refused the request",
    }.get(error.status)
    if meaning is None:
        return error
    return SourceError(error.source, f"{error.reason}: {meaning}", location=error.location)


@attrs.frozen(kw_only=True)
class BinanceSource:
    """Binance book tickers (live) and kline closes (backfill) over public REST."""

    symbols: Mapping[str, Pair] = attrs.field(factory=lambda: symbol_pairs(DEFAULT_SYMBOLS))
    base_url: str = DEFAULT_BASE_URL
    interval: str = "1m"
    timeout: float = 30.0
    max_attempts: int = 5
    min_interval: float = 0.1
    name: str = NAME
    description: str = "Binance spot market: book tickers live, kline closes for backfills"
    schedule: Schedule = SCHEDULE
    history_since: date | None = HISTORY_SINCE
    now: Callable[[], datetime] = attrs.field(default=lambda: datetime.now(UTC), repr=False)
    sleep: Callable[[float], None] | None = attrs.field(default=None, repr=False)

    @property
    def currencies(self) -> tuple[str, ...]:
        """The codes of the configured symbols, sorted."""
        codes = {pair.base.code for pair in self.symbols.values()}
        codes |= {pair.quote.code for pair in self.symbols.values()}
        return tuple(sorted(codes))

    @property
    def observation_interval(self) -> timedelta:
        """The kline interval (one minute by default)."""
        return INTERVALS[self.interval]

    def configure(self, **options: str) -> Self:
        """A copy with ``symbols base_url interval timeout max_attempts min_interval`` set."""
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
            if not base_url.startswith(("https://", "http://")):
                raise SourceError(self.name, f"base_url {base_url!r} is not an http(s) URL")
            changes["base_url"] = base_url
        if "interval" in options:
            if options["interval"] not in INTERVALS:
                raise SourceError(
                    self.name,
                    f"interval {options['interval']!r} is not one of {', '.join(INTERVALS)}",
                )
            changes["interval"] = options["interval"]
        for option, convert in (("timeout", float), ("min_interval", float), ("max_attempts", int)):
            if option in options:
                try:
                    value = convert(options[option])
                except ValueError:
                    raise SourceError(
                        self.name, f"{option} {options[option]!r} is not a number"
                    ) from None
                if value < (1 if option == "max_attempts" else 0):
                    raise SourceError(self.name, f"{option} {options[option]!r} is too small")
                changes[option] = value
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """The book tickers now (open window) or the kline closes of ``window``.

        Every page is parsed before the first quote is yielded.
        """
        options: dict[str, Any] = {
            "timeout": self.timeout,
            "max_attempts": self.max_attempts,
            "min_interval": self.min_interval,
        }
        if self.sleep is not None:
            options["sleep"] = self.sleep
        with HttpFetcher.for_source(self.name, context, **options) as fetcher:
            try:
                if window.since is None and window.until is None:
                    quotes = self._book_tickers(fetcher)
                else:
                    quotes = self._klines(fetcher, window)
            except SourceError as error:
                raise ban_aware(error) from error
        return iter([quote for quote in quotes if window.contains(quote.observed_at.date())])

    def _book_tickers(self, fetcher: HttpFetcher) -> list[Quote]:
        symbols = list(self.symbols)
        if len(symbols) == 1:
            params = {"symbol": symbols[0]}
        else:
            params = {"symbols": json.dumps(symbols, separators=(",", ":"))}
        answer = fetcher.get(self.base_url + BOOK_TICKER_PATH, params=params, conditional=False)
        received_at = self.now()
        assert answer is not None  # only a conditional GET can answer "not modified"
        return parse_book_ticker(
            answer.content,
            received_at=received_at,
            symbols=self.symbols,
            label=answer.url,
            source=self.name,
        )

    def _klines(self, fetcher: HttpFetcher, window: FetchWindow) -> list[Quote]:
        now = self.now()
        first_day = window.since or self.history_since or HISTORY_SINCE
        start_ms = _milliseconds(datetime.combine(first_day, time(), tzinfo=UTC))
        end_ms = _milliseconds(now)
        if window.until is not None:
            end_of_until = datetime.combine(window.until + timedelta(days=1), time(), tzinfo=UTC)
            end_ms = min(end_ms, _milliseconds(end_of_until) - 1)
        quotes: list[Quote] = []
        for symbol, pair in self.symbols.items():
            quotes += self._symbol_klines(fetcher, symbol, pair, start_ms, end_ms, now)
        return quotes

    def _symbol_klines(
        self,
        fetcher: HttpFetcher,
        symbol: str,
        pair: Pair,
        start_ms: int,
        end_ms: int,
        now: datetime,
    ) -> list[Quote]:
        quotes: list[Quote] = []
        seen: set[datetime] = set()
        while start_ms <= end_ms:
            params = {
                "symbol": symbol,
                "interval": self.interval,
                "startTime": str(start_ms),
                "endTime": str(end_ms),
                "limit": str(KLINE_LIMIT),
            }
            answer = fetcher.get(self.base_url + KLINES_PATH, params=params, conditional=False)
            assert answer is not None  # only a conditional GET can answer "not modified"
            page = read_klines(
                answer.content, pair=pair, label=answer.url, source=self.name, now=now
            )
            for quote in page.quotes:
                if quote.observed_at not in seen:
                    seen.add(quote.observed_at)
                    quotes.append(quote)
            if page.rows < KLINE_LIMIT or page.last_close_ms is None:
                break
            if page.last_close_ms < start_ms:
                raise SourceError(
                    self.name,
                    f"the page starting at {start_ms} ends before it (close {page.last_close_ms})",
                    location=answer.url,
                )
            start_ms = page.last_close_ms + 1
        return quotes


def parse_book_ticker(
    payload: bytes,
    *,
    received_at: datetime,
    symbols: Mapping[str, Pair] | None = None,
    label: str = "bookTicker",
    source: str = NAME,
) -> list[Quote]:
    """Bid and ask quotes from a bookTicker answer (one object or a list), stamped ``received_at``.

    ``symbols`` maps the symbols asked for to their pairs; an answer for another symbol is an
    error. Without it, every symbol is split by `split_symbol`.
    """
    document = _json(payload, label, source)
    entries = document if isinstance(document, list) else [document]
    if not entries:
        raise SourceError(source, "the answer holds no book tickers", location=label)
    quotes: list[Quote] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"{label} [{index}]" if isinstance(document, list) else label
        if not isinstance(entry, dict):
            raise SourceError(
                source, f"expected a book ticker object, got {_shape(entry)}", location=where
            )
        if "code" in entry and "msg" in entry:
            raise SourceError(
                source, f"Binance error {entry['code']}: {entry['msg']}", location=where
            )
        symbol = entry.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise SourceError(source, "book ticker without a symbol", location=where)
        where = f"{label} symbol {symbol}"
        if symbol in seen:
            raise SourceError(source, f"symbol {symbol} appears twice", location=where)
        seen.add(symbol)
        if symbols is not None:
            if symbol not in symbols:
                raise SourceError(
                    source, f"answer for {symbol}, which was not asked for", location=where
                )
            pair = symbols[symbol]
        else:
            pair = split_symbol(symbol, source=source, location=where)
        bid = _price(entry.get("bidPrice"), f"{where} bidPrice", source, zero_allowed=True)
        ask = _price(entry.get("askPrice"), f"{where} askPrice", source, zero_allowed=True)
        if bid and ask and bid > ask:
            raise SourceError(source, f"crossed book: bid {bid} above ask {ask}", location=where)
        for kind, price in ((QuoteKind.BID, bid), (QuoteKind.ASK, ask)):
            if price:
                quotes.append(
                    Quote(pair=pair, rate=price, observed_at=received_at, source=source, kind=kind)
                )
    return quotes


@attrs.frozen(kw_only=True)
class KlinePage:
    """One klines answer: its closed klines as quotes, how many rows it had, the last close time."""

    quotes: list[Quote]
    rows: int
    last_close_ms: int | None


def parse_klines(
    payload: bytes,
    *,
    pair: Pair,
    label: str = "klines",
    source: str = NAME,
    now: datetime | None = None,
) -> list[Quote]:
    """The closes of a klines answer as ``mid`` quotes at each kline's close time."""
    return read_klines(payload, pair=pair, label=label, source=source, now=now).quotes


def read_klines(
    payload: bytes,
    *,
    pair: Pair,
    label: str = "klines",
    source: str = NAME,
    now: datetime | None = None,
) -> KlinePage:
    """`parse_klines` with what pagination needs: the row count and the last close time."""
    now = now or datetime.now(UTC)
    now_ms = _milliseconds(now)
    latest_ms = _milliseconds(now + _FUTURE_TOLERANCE)
    document = _json(payload, label, source)
    if isinstance(document, dict) and "code" in document and "msg" in document:
        raise SourceError(
            source, f"Binance error {document['code']}: {document['msg']}", location=label
        )
    if not isinstance(document, list):
        raise SourceError(
            source, f"expected a list of klines, got {_shape(document)}", location=label
        )
    quotes: list[Quote] = []
    previous_open: int | None = None
    last_close: int | None = None
    for index, row in enumerate(document):
        where = f"{label} kline {index}"
        if not isinstance(row, list) or len(row) < 7:
            raise SourceError(
                source, f"expected a kline of at least 7 fields, got {_shape(row)}", location=where
            )
        open_ms = _milliseconds_field(row[0], f"{where} open time", source)
        close_ms = _milliseconds_field(row[6], f"{where} close time", source)
        if close_ms <= open_ms:
            raise SourceError(
                source, f"close time {close_ms} is not after open time {open_ms}", location=where
            )
        if previous_open is not None and open_ms <= previous_open:
            raise SourceError(
                source,
                f"open time {open_ms} repeats or goes back (previous {previous_open})",
                location=where,
            )
        if open_ms > latest_ms:
            raise SourceError(
                source,
                f"open time {_instant(open_ms).isoformat()} is in the future",
                location=where,
            )
        previous_open = open_ms
        last_close = close_ms
        close = _price(row[4], f"{where} close", source, zero_allowed=False)
        assert close is not None
        if close_ms > now_ms:
            continue  # the kline in progress: its close is not final yet
        quotes.append(Quote(pair=pair, rate=close, observed_at=_instant(close_ms), source=source))
    return KlinePage(quotes=quotes, rows=len(document), last_close_ms=last_close)


def _json(payload: bytes, label: str, source: str) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as error:
        head = payload[:200].lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            what = "an HTML page (an error page served in place of data?)"
        elif not head:
            what = "an empty body"
        else:
            what = f"malformed JSON ({error})"
        raise SourceError(source, f"expected JSON, got {what}", location=label) from error


def _shape(value: object) -> str:
    text = json.dumps(value)[:60] if value is not None else "null"
    return f"{type(value).__name__} {text}"


def _price(value: object, where: str, source: str, *, zero_allowed: bool) -> Decimal | None:
    """A price from its JSON string; None for an allowed zero (an empty side of the book)."""
    if not isinstance(value, str):
        raise SourceError(
            source, f"expected the price as a string, got {_shape(value)}", location=where
        )
    try:
        price = Decimal(value)
    except InvalidOperation:
        raise SourceError(source, f"price {value!r} is not a number", location=where) from None
    if not price.is_finite() or price < 0:
        raise SourceError(source, f"price {value!r} is not a positive number", location=where)
    if price == 0:
        if zero_allowed:
            return None
        raise SourceError(source, f"price {value!r} is zero", location=where)
    return price


def _milliseconds_field(value: object, where: str, source: str) -> int:
    if type(value) is not int or value < 0:
        raise SourceError(
            source, f"expected milliseconds since 1970, got {_shape(value)}", location=where
        )
    if value >= _LARGEST_MILLISECONDS:
        raise SourceError(
            source,
            f"time {value} is too large for milliseconds (microseconds? the X-MBX-TIME-UNIT "
            "header must not be set)",
            location=where,
        )
    return value


def _milliseconds(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _instant(milliseconds: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=milliseconds)


@hookimpl
def fxcortex_register_sources(register: Callable[[BinanceSource], None]) -> None:
    """Register the Binance REST source."""
    register(BinanceSource())
