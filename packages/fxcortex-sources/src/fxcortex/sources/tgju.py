"""The Iranian rial on the Tehran free market, from tgju.org (sources ``tgju``, ``tgju-history``).

This is the open-market rate dealers trade at, **not** the Central Bank of Iran's official rate, and
it comes from a site with no published API or terms: the endpoints and shapes below are what
public scrapers use, unverified by TGJU. Two sources share this module:

``tgju`` — the live board, ``https://call{1..5}.tgju.org/ajax.json``. The five mirrors are tried in
a rotated order starting at a random one, falling back to the next on an HTTP failure or an HTML
page (a block or challenge page); all failing is one `SourceError` naming each. Requests send a
browser User-Agent and ``Referer: https://www.tgju.org/``, as the site's own pages do. The answer
is ``{"current": {"price_dollar_rl": {"p": "1,064,500", "h": …, "l": …, "ts": "2026-10-03
15:04:00", …}, "price_eur": {…}, "geram18": {…}, …}}``:

- ``p`` is the last price, a string with thousands commas, in **rial** per unit of the item;
  Persian (۰-۹) and Arabic-Indic (٠-٩) digits and the Arabic separators ``٬`` ``٫`` are read too.
  It becomes a quote of kind ``mid``: the board shows one price per item, neither a bid nor an
  ask, and the trade-weighted last price is what ``mid`` means in FX-Cortex for such boards.
- ``ts`` is the item's last update in Tehran time (Asia/Tehran, UTC+3:30 since Iran dropped
  daylight saving in 2022; earlier dates get +4:30 in summer from the tz database). It is the
  quote's ``observed_at``, converted to UTC; an item without one is an error.

``tgju-history`` — one day per row from ``https://api.tgju.org/v1/market/indicator/
summary-table-data/<item>?lang=fa&order_dir=desc&start=<offset>&length=<page_size>&from=&to=
&convert_to_ad=1`` (mirror ``api.accessban.com``, tried the same way). The answer is DataTables
JSON, ``{"recordsTotal": …, "data": [[open, low, high, close, change, change %, "2025/07/31",
"1404/05/09"], …]}``, newest first. The column order is the one public scrapers read and is
unverified: **cell 3 is the close** and **cell 6 the Gregorian date** (``convert_to_ad=1``; cell 7
is the Solar Hijri date, and a cell 6 with a year before 1900 is refused as not converted). Cells
may hold HTML tags, which are stripped. The close is a ``mid`` quote observed at the last second
of that day in Tehran (23:59:59 Asia/Tehran). Pages are read newest first until one reaches back
past the window's ``since``; without ``since`` only the first page (the latest ``page_size`` days)
is read, so a plain fetch stays one request per item.

Items (option ``items``, a comma list; default all of these) and the currency each quotes. The
keys are TGJU's own (``price_<iso code>``, the dollar's ``price_dollar_rl``); a 2020 board dump
kept by a public TGJU widget checks each unit against the dollar, e.g. ``price_jpy`` 264,560
against ``price_dollar_rl`` 274,020 only makes sense per **100 yen** (USD/JPY 103.6), and every
other key per one unit. Gold, coins, oil, indices and crypto (``geram18``, ``sekee``, ``ons``…)
are not currencies and are skipped deliberately, as is any key not in this table.

Units: every quote is ``<code>/IRR``, rial per one unit of the currency, ``p / units``. The
toman, which Iranians quote in everyday use, is 10 rial (``toman = rial / 10``) and is not an ISO
4217 currency: it is never stored. ``unit=rial`` is accepted; ``unit=toman`` is refused, so no
option can make the store hold toman figures under the IRR code — divide by 10 when displaying.

Window: an observation belongs to its Tehran calendar day.

Needs nothing beyond httpx: no extra (nor does the ``bonbast`` source, the other rial market).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

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
from fxcortex.sources.http import HttpFetcher, HttpPayload, looks_like_html

NAME = "tgju"
HISTORY_NAME = "tgju-history"
BOARD_HOSTS = tuple(f"call{number}.tgju.org" for number in range(1, 6))
HISTORY_HOSTS = ("api.tgju.org", "api.accessban.com")
BOARD_PATH = "/ajax.json"
HISTORY_PATH = "/v1/market/indicator/summary-table-data/{item}"
HISTORY_SINCE = date(2011, 11, 27)
DEFAULT_PAGE_SIZE = 30
MAX_PAGES = 1000
TEHRAN = ZoneInfo("Asia/Tehran")
DAY_CLOSE = time(23, 59, 59)
BROWSER_HEADERS: Mapping[str, str] = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36"
    ),
    "Referer": "https://www.tgju.org/",
    "Accept": "application/json, text/javascript, */*; q=0.01",
}

# TGJU item key → (ISO code, units the price is for). See the module docstring for the check.
ITEMS: Mapping[str, tuple[str, int]] = {
    "price_dollar_rl": ("USD", 1),
    "price_eur": ("EUR", 1),
    "price_gbp": ("GBP", 1),
    "price_aed": ("AED", 1),
    "price_try": ("TRY", 1),
    "price_cny": ("CNY", 1),
    "price_jpy": ("JPY", 100),
    "price_chf": ("CHF", 1),
    "price_cad": ("CAD", 1),
    "price_aud": ("AUD", 1),
    "price_sek": ("SEK", 1),
    "price_nok": ("NOK", 1),
    "price_dkk": ("DKK", 1),
    "price_rub": ("RUB", 1),
    "price_inr": ("INR", 1),
    "price_iqd": ("IQD", 1),
    "price_kwd": ("KWD", 1),
    "price_sar": ("SAR", 1),
    "price_qar": ("QAR", 1),
    "price_omr": ("OMR", 1),
    "price_bhd": ("BHD", 1),
    "price_afn": ("AFN", 1),
    "price_azn": ("AZN", 1),
    "price_amd": ("AMD", 1),
    "price_gel": ("GEL", 1),
    "price_hkd": ("HKD", 1),
    "price_sgd": ("SGD", 1),
    "price_myr": ("MYR", 1),
    "price_thb": ("THB", 1),
}
DEFAULT_HISTORY_ITEMS = ("price_dollar_rl", "price_eur")
OPTIONS = ("items", "hosts", "unit", "page_size", "timeout", "max_attempts", "min_interval")

BOARD_SCHEDULE = Schedule(
    cron="*/5 * * * *",
    timezone="Asia/Tehran",
    description="updated through the Tehran trading day, Saturday to Thursday",
)
HISTORY_SCHEDULE = Schedule(
    cron="30 23 * * *",
    timezone="Asia/Tehran",
    description="one row per day, complete after the Tehran market's close",
)

_PLAIN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "0123456789" * 2)
_DIGITS = str.maketrans(
    "۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩٫",
    "01234567890123456789.",
    "٬,\u200c\u200e\u200f ",  # thousands separators, zero-width and direction marks, spaces
)
_TAG = re.compile(r"<[^>]*>")
_FUTURE_TOLERANCE = timedelta(days=1)
# A price beyond 10**±20 rial is garbage (and 1e999999 would overflow the division by units).
_PLAUSIBLE_DIGITS = 20


def normalise_digits(text: str) -> str:
    """``text`` with Persian and Arabic-Indic digits as ASCII, separators and tags removed."""
    return _TAG.sub("", text).translate(_DIGITS).strip()


def _amount(value: object, where: str, source: str) -> Decimal | None:
    """A price cell: None when blank or zero (no price), else a positive Decimal."""
    if isinstance(value, bool) or value is None:
        raise SourceError(source, f"expected a price, got {value!r}", location=where)
    if isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = normalise_digits(value)
    else:
        raise SourceError(source, f"expected a price, got {type(value).__name__}", location=where)
    if text in ("", "-"):
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise SourceError(source, f"price {value!r} is not a number", location=where) from None
    if not amount.is_finite() or amount < 0:
        raise SourceError(source, f"price {value!r} is not a positive number", location=where)
    if amount and not -_PLAUSIBLE_DIGITS <= amount.adjusted() <= _PLAUSIBLE_DIGITS:
        raise SourceError(source, f"price {value!r} is not a plausible price", location=where)
    return amount or None


def _json(payload: bytes, label: str, source: str) -> Any:
    if looks_like_html(payload):
        raise SourceError(
            source, "expected JSON, got an HTML page (a block or error page?)", location=label
        )
    try:
        # Numbers as Decimal: a float would already have lost digits.
        return json.loads(payload, parse_float=Decimal)
    except (ValueError, RecursionError) as error:
        what = "an empty body" if not payload.strip() else f"malformed JSON ({error})"
        raise SourceError(source, f"expected JSON, got {what}", location=label) from error


def parse_board(
    payload: bytes,
    *,
    items: Sequence[str] = tuple(ITEMS),
    label: str = "ajax.json",
    source: str = NAME,
    now: datetime | None = None,
) -> list[Quote]:
    """The ``<code>/IRR`` mid quotes of the board's ``items`` (those present and priced)."""
    latest = (now or datetime.now(UTC)) + _FUTURE_TOLERANCE
    unknown = [item for item in items if item not in ITEMS]
    if unknown:
        raise SourceError(source, f"items {unknown} are not currency items", location=label)
    document = _json(payload, label, source)
    current = document.get("current") if isinstance(document, dict) else None
    if not isinstance(current, dict):
        raise SourceError(
            source, "no 'current' object: not the TGJU board (ajax.json)", location=label
        )
    quotes: list[Quote] = []
    found = 0
    for item in items:
        code, units = ITEMS[item]
        entry = current.get(item)
        if entry is None:
            continue
        found += 1
        where = f"{label} current.{item}"
        if not isinstance(entry, dict):
            raise SourceError(
                source, f"expected an object, got {type(entry).__name__}", location=where
            )
        if "p" not in entry:
            raise SourceError(source, "the item has no price (p)", location=where)
        amount = _amount(entry["p"], f"{where}.p", source)
        if amount is None:
            continue
        observed_at = _tehran_time(entry.get("ts"), f"{where}.ts", source)
        if observed_at > latest:
            raise SourceError(
                source, f"{observed_at.isoformat()} is in the future", location=f"{where}.ts"
            )
        quotes.append(
            Quote(
                pair=Pair.of(code, "IRR"),
                rate=amount / units,
                observed_at=observed_at,
                source=source,
                kind=QuoteKind.MID,
            )
        )
    if not found:
        raise SourceError(
            source, f"none of the items {list(items)} is on the board", location=label
        )
    return quotes


def _tehran_time(value: object, where: str, source: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise SourceError(source, f"expected a Tehran time, got {value!r}", location=where)
    text = _TAG.sub("", value).translate(_PLAIN_DIGITS)
    try:
        local = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise SourceError(
            source, f"time {value!r} is not YYYY-MM-DD HH:MM:SS", location=where
        ) from None
    return local.replace(tzinfo=TEHRAN).astimezone(UTC)


@attrs.frozen(kw_only=True)
class HistoryPage:
    """One page of the history table: its quotes, how many rows it had, its oldest day."""

    quotes: list[Quote]
    rows: int
    oldest: date | None
    total: int | None


def parse_history(
    payload: bytes,
    *,
    item: str = "price_dollar_rl",
    label: str = "summary-table-data",
    source: str = HISTORY_NAME,
    now: datetime | None = None,
) -> list[Quote]:
    """The daily closes of one history page as ``<code>/IRR`` mid quotes."""
    return read_history(payload, item=item, label=label, source=source, now=now).quotes


def read_history(
    payload: bytes,
    *,
    item: str = "price_dollar_rl",
    label: str = "summary-table-data",
    source: str = HISTORY_NAME,
    now: datetime | None = None,
) -> HistoryPage:
    """`parse_history` with what paging needs: the row count, oldest day and ``recordsTotal``."""
    if item not in ITEMS:
        raise SourceError(source, f"item {item!r} is not a currency item", location=label)
    code, units = ITEMS[item]
    pair = Pair.of(code, "IRR")
    latest = ((now or datetime.now(UTC)) + _FUTURE_TOLERANCE).astimezone(TEHRAN).date()
    document = _json(payload, label, source)
    rows = document.get("data") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise SourceError(
            source, "no 'data' list: not a DataTables answer of the history API", location=label
        )
    total = document.get("recordsTotal")
    quotes: list[Quote] = []
    seen: set[date] = set()
    oldest: date | None = None
    for index, row in enumerate(rows):
        where = f"{label} data[{index}]"
        if not isinstance(row, list) or len(row) < 7:
            raise SourceError(
                source, "expected a row of at least 7 cells (open … close … date)", location=where
            )
        day = _gregorian(row[6], f"{where}[6]", source)
        if day in seen:
            raise SourceError(source, f"{day} appears twice", location=where)
        seen.add(day)
        if day > latest:
            raise SourceError(source, f"{day} is in the future", location=f"{where}[6]")
        oldest = day if oldest is None else min(oldest, day)
        close = _amount(row[3], f"{where}[3]", source)
        if close is None:
            continue
        observed_at = datetime.combine(day, DAY_CLOSE, tzinfo=TEHRAN).astimezone(UTC)
        quotes.append(Quote(pair=pair, rate=close / units, observed_at=observed_at, source=source))
    return HistoryPage(
        quotes=quotes,
        rows=len(rows),
        oldest=oldest,
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def _gregorian(value: object, where: str, source: str) -> date:
    if not isinstance(value, str):
        raise SourceError(source, f"expected a date, got {value!r}", location=where)
    text = normalise_digits(value)
    try:
        day = datetime.strptime(text, "%Y/%m/%d").date()
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise SourceError(
                source, f"{value!r} is not a date (YYYY/MM/DD)", location=where
            ) from None
    if day.year < 1900:
        raise SourceError(
            source,
            f"{value!r} looks like a Solar Hijri date, not a Gregorian one (convert_to_ad=1 "
            "not honoured?)",
            location=where,
        )
    return day


@attrs.frozen(kw_only=True)
class TgjuSource:
    """TGJU's live board (``mode='board'``) or daily history API (``mode='history'``)."""

    mode: Literal["board", "history"] = "board"
    items: tuple[str, ...] = tuple(ITEMS)
    hosts: tuple[str, ...] = BOARD_HOSTS
    page_size: int = DEFAULT_PAGE_SIZE
    timeout: float = 30.0
    max_attempts: int = 3
    min_interval: float = 0.5
    name: str = NAME
    description: str = (
        "Iranian rial on the Tehran free market (unofficial): TGJU's live board, rial per unit"
    )
    schedule: Schedule = BOARD_SCHEDULE
    history_since: date | None = None
    observation_interval: timedelta = timedelta(minutes=1)
    now: Callable[[], datetime] = attrs.field(default=lambda: datetime.now(UTC), repr=False)
    sleep: Callable[[float], None] | None = attrs.field(default=None, repr=False)
    pick: Callable[[int], int] = attrs.field(default=random.randrange, repr=False)

    @classmethod
    def history(cls) -> TgjuSource:
        """The ``tgju-history`` source: daily closes from the history API."""
        return cls(
            mode="history",
            items=DEFAULT_HISTORY_ITEMS,
            hosts=HISTORY_HOSTS,
            name=HISTORY_NAME,
            description=(
                "Iranian rial on the Tehran free market (unofficial): TGJU's daily closes, rial "
                "per unit"
            ),
            schedule=HISTORY_SCHEDULE,
            history_since=HISTORY_SINCE,
            observation_interval=timedelta(days=1),
        )

    @property
    def currencies(self) -> tuple[str, ...]:
        """IRR and the codes of the configured items."""
        return tuple(sorted({"IRR", *(ITEMS[item][0] for item in self.items)}))

    def configure(self, **options: str) -> Self:
        """A copy with ``items hosts unit page_size timeout max_attempts min_interval`` set."""
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise SourceError(
                self.name, f"unknown options {sorted(unknown)}; known: {', '.join(OPTIONS)}"
            )
        changes: dict[str, object] = {}
        if "unit" in options and options["unit"].strip().lower() != "rial":
            raise SourceError(
                self.name,
                f"unit {options['unit']!r}: quotes are always stored in IRR (rial), the ISO 4217 "
                "currency; the toman (rial / 10) is a display convention, not a currency, so "
                "divide by 10 when showing toman",
            )
        if "items" in options:
            items = tuple(item.strip() for item in options["items"].split(",") if item.strip())
            unknown_items = [item for item in items if item not in ITEMS]
            if unknown_items or not items:
                raise SourceError(
                    self.name,
                    f"items {unknown_items or options['items']!r} are not currency items; "
                    f"known: {', '.join(ITEMS)}",
                )
            changes["items"] = tuple(dict.fromkeys(items))
        if "hosts" in options:
            hosts = tuple(host.strip() for host in options["hosts"].split(",") if host.strip())
            if not hosts or any("/" in host for host in hosts):
                raise SourceError(
                    self.name, f"hosts {options['hosts']!r} must be host names, comma-separated"
                )
            changes["hosts"] = hosts
        for option, convert, least in (
            ("page_size", int, 1),
            ("max_attempts", int, 1),
            ("timeout", float, 0),
            ("min_interval", float, 0),
        ):
            if option in options:
                try:
                    value = convert(options[option])
                except ValueError:
                    raise SourceError(
                        self.name, f"{option} {options[option]!r} is not a number"
                    ) from None
                if value < least:
                    raise SourceError(self.name, f"{option} {options[option]!r} is too small")
                changes[option] = value
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """The board's current prices, or the history pages the window needs, parsed in full."""
        options: dict[str, Any] = {
            "timeout": self.timeout,
            "max_attempts": self.max_attempts,
            "min_interval": self.min_interval,
            "headers": BROWSER_HEADERS,
        }
        if self.sleep is not None:
            options["sleep"] = self.sleep
        with HttpFetcher.for_source(self.name, context, **options) as fetcher:
            if self.mode == "board":
                answer = self._get(fetcher, BOARD_PATH, None)
                quotes = parse_board(
                    answer.content,
                    items=self.items,
                    label=answer.url,
                    source=self.name,
                    now=self.now(),
                )
            else:
                quotes = []
                for item in self.items:
                    quotes += self._history(fetcher, item, window)
        return iter([q for q in quotes if window.contains(q.observed_at.astimezone(TEHRAN).date())])

    def _history(self, fetcher: HttpFetcher, item: str, window: FetchWindow) -> list[Quote]:
        path = HISTORY_PATH.format(item=item)
        quotes: dict[datetime, Quote] = {}
        start = 0
        for _ in range(MAX_PAGES):
            params = {
                "lang": "fa",
                "order_dir": "desc",
                "start": str(start),
                "length": str(self.page_size),
                "from": "",
                "to": "",
                "convert_to_ad": "1",
            }
            answer = self._get(fetcher, path, params)
            page = read_history(
                answer.content, item=item, label=answer.url, source=self.name, now=self.now()
            )
            for quote in page.quotes:
                earlier = quotes.setdefault(quote.observed_at, quote)
                if earlier.rate != quote.rate:  # the table shifted between pages and changed
                    raise SourceError(
                        self.name,
                        f"{item} on {quote.observed_at.astimezone(TEHRAN).date()} reads "
                        f"{earlier.rate} on one page and {quote.rate} on another",
                        location=answer.url,
                    )
            start += page.rows
            if (
                window.since is None
                or page.rows < self.page_size
                or page.oldest is None
                or page.oldest <= window.since
                or (page.total is not None and start >= page.total)
            ):
                return list(quotes.values())
        raise SourceError(
            self.name, f"{item}: more than {MAX_PAGES} pages; narrow the window or raise page_size"
        )

    def _get(
        self, fetcher: HttpFetcher, path: str, params: Mapping[str, str] | None
    ) -> HttpPayload:
        first = self.pick(len(self.hosts))
        order = self.hosts[first:] + self.hosts[:first]
        failures: list[str] = []
        for host in order:
            url = f"https://{host}{path}"
            try:
                answer = fetcher.get(url, params=params, conditional=False)
            except SourceError as error:
                failures.append(f"{host}: {error.reason}")
                continue
            assert answer is not None  # only a conditional GET can answer "not modified"
            if looks_like_html(answer.content):
                failures.append(f"{host}: an HTML page in place of JSON (blocked?)")
                continue
            return answer
        mirrors = f" and {len(order) - 1} mirrors" if len(order) > 1 else ""
        raise SourceError(
            self.name,
            "every host failed: " + "; ".join(failures),
            location=f"https://{order[0]}{path}{mirrors}",
        )


@hookimpl
def fxcortex_register_sources(register: Callable[[TgjuSource], None]) -> None:
    """Register the TGJU live board (``tgju``) and its daily history (``tgju-history``)."""
    register(TgjuSource())
    register(TgjuSource.history())
