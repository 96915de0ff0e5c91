"""The Iranian rial on the Tehran free market, as bonbast.com shows it (source ``bonbast``).

An unofficial open-market rate (not the Central Bank of Iran's) from a site without a published
API; the flow is the one of the MIT-licensed ``bonbast`` client (2.0.1):

1. ``GET https://bonbast.com/`` and take the token from the page's script with the regular
   expression ``param\\s*[:=]\\s*["']([^"']+)["']``.
2. ``POST https://bonbast.com/json`` with the form ``param=<token>``, the headers
   ``X-Requested-With: XMLHttpRequest``, ``Origin``/``Referer`` bonbast.com, the cookies
   ``cookieconsent_status=true; st_bb=0`` and a mobile Chrome User-Agent (sent on both requests).
3. The reply is one flat JSON object. One holding a ``reset`` key means the token expired: the
   token is fetched again and the POST retried, once; a second ``reset`` is a `SourceError`.

Keys read: ``<code>1`` is the dealers' **sell** price and ``<code>2`` their **buy** price of one
currency (``usd1``, ``usd2``, ``eur1`` …, 28 currencies); every key of three letters and a 1 or 2
is taken as such, and a code FX-Cortex does not know there is an error. Coins (``emami1``,
``emami12``, ``azadi1``, ``azadi1g``, ``azadi1_2``, ``azadi1_4``), gold (``mithqal``, ``gol18``)
and the USD-priced ``ounce`` and ``bitcoin`` are not currencies and are skipped deliberately.
(Early versions of the client named ``1``/``2`` buy/sell the other way round; the site's table
lists Sell first, and ``1`` is the higher price, what a dealer sells at.)

Units: prices are in **toman** (10 rial): the stored rate is ``toman * 10 / units`` rial per one
unit of the currency, where ``units`` is 10 for ``jpy`` and ``amd`` (quoted per 10) and 100 for
``iqd`` (per 100), else 1. Every quote is ``<code>/IRR`` of kind ``sell`` or ``buy``; toman, not
an ISO 4217 currency, is never stored. A price of 0, blank or ``-`` means "no price" and is left
out. Persian digits and thousands commas are read.

Time: the reply's ``last_modified``, read in Tehran time (Asia/Tehran) in any of the layouts
``2026-10-03 15:04[:00]``, ``2026/10/03 15:04[:00]``, ``October 3, 2026 15:04`` (optionally with
`` - `` before the time) or ISO 8601 with an offset, converted to UTC, is every quote's
``observed_at``; when it is missing or in none of those layouts, the moment the reply was
received (UTC) is used instead. A ``last_modified`` more than a day ahead is an error. An
observation belongs to its Tehran calendar day for the window.

Needs nothing beyond httpx: no extra.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Self
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
from fxcortex.core.currencies import KNOWN_CODES
from fxcortex.sources.http import HttpFetcher, looks_like_html

NAME = "bonbast"
HOME_URL = "https://bonbast.com/"
JSON_URL = "https://bonbast.com/json"
TOKEN = re.compile(r"param\s*[:=]\s*[\"']([^\"']+)[\"']")
CURRENCY_KEY = re.compile(r"^([a-z]{3})([12])$")
KINDS = {"1": QuoteKind.SELL, "2": QuoteKind.BUY}
UNITS: Mapping[str, int] = {"JPY": 10, "AMD": 10, "IQD": 100}
TOMAN = Decimal(10)  # rial per toman
TEHRAN = ZoneInfo("Asia/Tehran")
CURRENCIES = tuple(
    """
    AED AFN AMD AUD AZN BHD CAD CHF CNY DKK EUR GBP HKD INR IQD IRR JPY KWD MYR NOK OMR QAR RUB
    SAR SEK SGD THB TRY USD
    """.split()  # noqa: SIM905
)
MOBILE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
HEADERS: Mapping[str, str] = {
    "User-Agent": MOBILE_USER_AGENT,
    "Cookie": "cookieconsent_status=true; st_bb=0",
    "Accept-Language": "en-US,en;q=0.9,fa;q=0.8",
}
POST_HEADERS: Mapping[str, str] = {
    "X-Requested-With": "XMLHttpRequest",
    "Origin": "https://bonbast.com",
    "Referer": "https://bonbast.com/",
    "Accept": "application/json, text/javascript, */*; q=0.01",
}
OPTIONS = ("timeout", "max_attempts")
SCHEDULE = Schedule(
    cron="*/10 * * * *",
    timezone="Asia/Tehran",
    description="updated through the Tehran trading day, Saturday to Thursday",
)
LAST_MODIFIED_LAYOUTS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%B %d, %Y %H:%M",
    "%B %d, %Y - %H:%M",
    "%B %d, %Y %H:%M:%S",
    "%B %d, %Y - %H:%M:%S",
)
_PLAIN_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "0123456789" * 2)
_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "0123456789" * 2, ",٬ ")
_FUTURE_TOLERANCE = timedelta(days=1)
# A price beyond 10**±20 toman is garbage (and 1e999999 would overflow the conversion to rial).
_PLAUSIBLE_DIGITS = 20


def extract_token(page: bytes, *, label: str = HOME_URL, source: str = NAME) -> str:
    """The token in the home page's script, or a `SourceError` when the page has none."""
    match = TOKEN.search(page.decode("utf-8", errors="replace"))
    if match is None:
        what = "an HTML page" if looks_like_html(page) else "the answer"
        raise SourceError(
            source,
            f"no token (param: '…') in {what}: the site changed, or served a block page",
            location=label,
        )
    return match.group(1)


def decode_reply(payload: bytes, *, label: str = JSON_URL, source: str = NAME) -> dict[str, Any]:
    """The reply as a flat JSON object (numbers as Decimal), or a `SourceError`."""
    if looks_like_html(payload):
        raise SourceError(
            source, "expected JSON, got an HTML page (a block or error page?)", location=label
        )
    try:
        document = json.loads(payload, parse_float=Decimal)
    except (ValueError, RecursionError) as error:
        what = "an empty body" if not payload.strip() else f"malformed JSON ({error})"
        raise SourceError(source, f"expected JSON, got {what}", location=label) from error
    if not isinstance(document, dict):
        raise SourceError(
            source, f"expected a JSON object, got {type(document).__name__}", location=label
        )
    return document


def parse(
    payload: bytes,
    *,
    received_at: datetime,
    label: str = JSON_URL,
    source: str = NAME,
) -> list[Quote]:
    """The ``<code>/IRR`` sell and buy quotes of a reply, in rial per one unit."""
    document = decode_reply(payload, label=label, source=source)
    if "reset" in document:
        raise SourceError(source, "the token expired (the reply says reset)", location=label)
    observed_at = _observed_at(document.get("last_modified"), received_at, label, source)
    quotes: list[Quote] = []
    for key in sorted(document):
        match = CURRENCY_KEY.match(key)
        if match is None:
            continue  # coins, gold, ounce, bitcoin, last_modified
        code = match.group(1).upper()
        where = f"{label} key {key}"
        if code not in KNOWN_CODES:
            raise SourceError(source, f"unknown currency code {code!r}", location=where)
        if code == "IRR":
            raise SourceError(source, "a rial price of the rial itself", location=where)
        toman = _toman(document[key], where, source)
        if toman is None:
            continue
        quotes.append(
            Quote(
                pair=Pair.of(code, "IRR"),
                rate=toman * TOMAN / UNITS.get(code, 1),
                observed_at=observed_at,
                source=source,
                kind=KINDS[match.group(2)],
            )
        )
    if not quotes:
        raise SourceError(source, "the reply holds no currency prices", location=label)
    return quotes


def _toman(value: object, where: str, source: str) -> Decimal | None:
    if value is None or isinstance(value, bool):
        raise SourceError(source, f"expected a price, got {value!r}", location=where)
    if isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = value.translate(_DIGITS).strip()
    else:
        raise SourceError(source, f"expected a price, got {type(value).__name__}", location=where)
    if text in ("", "-"):
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise SourceError(source, f"price {value!r} is not a number", location=where) from None
    if not price.is_finite() or price < 0:
        raise SourceError(source, f"price {value!r} is not a positive number", location=where)
    if price and not -_PLAUSIBLE_DIGITS <= price.adjusted() <= _PLAUSIBLE_DIGITS:
        raise SourceError(source, f"price {value!r} is not a plausible price", location=where)
    return price or None


def _observed_at(value: object, received_at: datetime, label: str, source: str) -> datetime:
    moment = read_last_modified(value)
    if moment is None:
        return received_at
    if moment > received_at + _FUTURE_TOLERANCE:
        raise SourceError(
            source,
            f"last_modified {value!r} is in the future",
            location=f"{label} key last_modified",
        )
    return moment


def read_last_modified(value: object) -> datetime | None:
    """``last_modified`` in UTC, read as Tehran time unless it has an offset; None if unreadable."""
    if not isinstance(value, str):
        return None
    text = " ".join(value.translate(_PLAIN_DIGITS).split())
    if not text:
        return None
    moment: datetime | None = None
    for layout in LAST_MODIFIED_LAYOUTS:
        try:
            moment = datetime.strptime(text, layout)
            break
        except ValueError:
            continue
    if moment is None:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=TEHRAN)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return None


@attrs.frozen(kw_only=True)
class BonbastSource:
    """bonbast.com's current sell and buy rates of 28 currencies against the rial."""

    timeout: float = 30.0
    max_attempts: int = 3
    name: str = NAME
    description: str = (
        "Iranian rial on the Tehran free market (unofficial): bonbast.com sell/buy, rial per unit"
    )
    schedule: Schedule = SCHEDULE
    currencies: tuple[str, ...] = CURRENCIES
    history_since: date | None = None
    observation_interval: timedelta = timedelta(minutes=5)
    now: Callable[[], datetime] = attrs.field(default=lambda: datetime.now(UTC), repr=False)
    sleep: Callable[[float], None] | None = attrs.field(default=None, repr=False)

    def configure(self, **options: str) -> Self:
        """A copy with ``timeout`` (seconds) and/or ``max_attempts`` set."""
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise SourceError(
                self.name, f"unknown options {sorted(unknown)}; known: {', '.join(OPTIONS)}"
            )
        changes: dict[str, object] = {}
        for option, convert, least in (("timeout", float, 0), ("max_attempts", int, 1)):
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
        """Take a token, post for the prices (once more on ``reset``), parse the whole reply."""
        options: dict[str, Any] = {
            "timeout": self.timeout,
            "max_attempts": self.max_attempts,
            "headers": HEADERS,
        }
        if self.sleep is not None:
            options["sleep"] = self.sleep
        with HttpFetcher.for_source(self.name, context, **options) as fetcher:
            for attempt in (1, 2):
                page = fetcher.get(HOME_URL, conditional=False)
                assert page is not None  # only a conditional GET can answer "not modified"
                token = extract_token(page.content, label=HOME_URL, source=self.name)
                reply = fetcher.post(JSON_URL, data={"param": token}, headers=POST_HEADERS)
                received_at = self.now()
                if "reset" not in decode_reply(reply.content, source=self.name):
                    break
                if attempt == 2:
                    raise SourceError(
                        self.name,
                        "the token was refused twice (reset): the site changed its flow?",
                        location=JSON_URL,
                    )
        quotes = parse(reply.content, received_at=received_at, source=self.name)
        return iter([q for q in quotes if window.contains(q.observed_at.astimezone(TEHRAN).date())])


@hookimpl
def fxcortex_register_sources(register: Callable[[BonbastSource], None]) -> None:
    """Register the bonbast.com source."""
    register(BonbastSource())
