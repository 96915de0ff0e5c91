"""Bank of England daily spot exchange rates against sterling, from the IADB (source ``boe``).

Endpoint (no key): ``https://www.bankofengland.co.uk/boeapps/database/_iadb-fromshowcolumns.asp``
with ``csv.x=yes``, ``Datefrom`` and ``Dateto`` as ``DD/Mon/YYYY`` (``17/Mar/2026``: the window's
first day, else 04/Jan/2000; its last day, else today in London), ``SeriesCodes`` (the series of
`SERIES`, comma-separated), ``CSVF=TN`` (a table without titles) and ``UsingCodes=Y`` (series codes
as column names). The Bank is said to want a browser-like User-Agent (unverified); the
``user_agent`` option sends one.

Format: CSV, ``DATE`` then one column per series, one row per day, days written ``17 Mar 2026``
(English month abbreviations, read without the locale)::

    DATE,XUDLUSS,XUDLERS,XUDLJYS
    17 Mar 2026,1.3343,1.1577,212.1937

Units and direction: each value is units of the foreign currency per one pound, so every quote is
``GBP/<code>``, rate = the value as written: ``XUDLUSS`` 1.3343 is ``GBP/USD`` 1.3343. Kind ``mid``:
the Bank describes them as "indicative middle market … rates as observed by the Bank's Foreign
Exchange Desk in the London interbank market around 4pm … They are not 'official' rates".

Series codes: the Bank names series, not currencies, so `SERIES` maps each code to its currency.
How well each mapping is established:

- seen in a recorded IADB response (SOURCES.md): ``XUDLUSS`` USD, ``XUDLERS`` EUR, ``XUDLJYS`` JPY;
- named in SOURCES.md from the Frankfurter service's list: ``XUDLBK89`` CNY, ``XUDLBK95`` TRY;
- from the Frankfurter service's Bank of England adapter (26 series it fetches daily in one
  request), not checked against a Bank response here: ``XUDLCDS`` CAD, ``XUDLSFS`` CHF,
  ``XUDLADS`` AUD, ``XUDLNDS`` NZD, ``XUDLNKS`` NOK, ``XUDLSKS`` SEK, ``XUDLDKS`` DKK, ``XUDLHDS``
  HKD, ``XUDLSGS`` SGD, ``XUDLSRS`` SAR, ``XUDLZRS`` ZAR, ``XUDLTWS`` TWD, ``XUDLBK25`` CZK,
  ``XUDLBK33`` HUF, ``XUDLBK47`` PLN, ``XUDLBK78`` ILS, ``XUDLBK83`` MYR, ``XUDLBK87`` THB,
  ``XUDLBK93`` KRW, ``XUDLBK97`` INR, ``XUDLZOS4`` RON.

``currencies=USD,EUR`` asks for those currencies' series only. A column whose code is not in
`SERIES` is an error: its currency cannot be known.

Time: ``observed_at`` is 16:00 London time (GMT or BST as the day falls) on the row's date, in
UTC — the Bank's "around 4pm" observation.

Checks, each a `SourceError` naming the URL, the line and the series: an HTML page served with
status 200 (the IADB's error pages), text that is not UTF-8, malformed CSV, a first column that is
not ``DATE``, a series not in `SERIES` or twice, a row with more or fewer cells than the header, a
date that is not ``DD Mon YYYY``, the same date twice, a date more than one day ahead of today, a
value that is not a positive number. An empty cell is a day without a rate for that series.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Self
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
from fxcortex.sources.http import HttpFetcher, looks_like_html
from fxcortex.sources.options import HTTP_OPTIONS, http_options, reject_unknown

NAME = "boe"
BASE_URL = "https://www.bankofengland.co.uk/boeapps/database/_iadb-fromshowcolumns.asp"
FIRST_DAY = date(2000, 1, 4)
SCHEDULE = Schedule(
    cron="0 17 * * 1-5",
    timezone="Europe/London",
    description="every London business day; the rates are observed around 16:00 London time",
)
SERIES: dict[str, str] = {
    "XUDLUSS": "USD",
    "XUDLERS": "EUR",
    "XUDLJYS": "JPY",
    "XUDLCDS": "CAD",
    "XUDLSFS": "CHF",
    "XUDLADS": "AUD",
    "XUDLNDS": "NZD",
    "XUDLNKS": "NOK",
    "XUDLSKS": "SEK",
    "XUDLDKS": "DKK",
    "XUDLHDS": "HKD",
    "XUDLSGS": "SGD",
    "XUDLSRS": "SAR",
    "XUDLZRS": "ZAR",
    "XUDLTWS": "TWD",
    "XUDLBK25": "CZK",
    "XUDLBK33": "HUF",
    "XUDLBK47": "PLN",
    "XUDLBK78": "ILS",
    "XUDLBK83": "MYR",
    "XUDLBK87": "THB",
    "XUDLBK89": "CNY",
    "XUDLBK93": "KRW",
    "XUDLBK95": "TRY",
    "XUDLBK97": "INR",
    "XUDLZOS4": "RON",
}
"""IADB series code → the currency it prices in units per one pound (see the module docs)."""
CURRENCIES = tuple(SERIES.values())

_LONDON = ZoneInfo("Europe/London")
_OBSERVED = time(16, 0)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAY = re.compile(r"([0-9]{1,2}) ([A-Z][a-z]{2}) ([0-9]{4})")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_FUTURE_TOLERANCE = timedelta(days=1)
_OPTIONS = ("currencies", "user_agent", *HTTP_OPTIONS)


@attrs.frozen(kw_only=True)
class BoeSource:
    """The Bank of England's daily spot rates of 26 currencies per pound (GBP/XXX, mid)."""

    base_url: str = BASE_URL
    series: tuple[str, ...] = tuple(SERIES)
    user_agent: str | None = None
    timeout: float = 60.0
    max_attempts: int = 5
    backoff: float = 0.5
    name: str = NAME
    description: str = "Bank of England daily spot rates (GBP base, 26 currencies, 2000–)"
    schedule: Schedule = SCHEDULE
    currencies: tuple[str, ...] = CURRENCIES
    history_since: date | None = FIRST_DAY
    observation_interval: timedelta = timedelta(days=1)

    def configure(self, **options: str) -> Self:
        """A copy with options set.

        ``currencies`` (comma-separated codes of `SERIES`, e.g. ``USD,EUR``; empty for all),
        ``user_agent`` (the User-Agent header to send), ``timeout`` (seconds), ``max_attempts``
        (HTTP attempts, at least 1), ``backoff`` (the first retry's ceiling in seconds).
        """
        reject_unknown(self.name, options, _OPTIONS)
        changes: dict[str, object] = {}
        if "currencies" in options:
            series = _series(options["currencies"], self.name)
            changes["series"] = series
            changes["currencies"] = tuple(SERIES[code] for code in series)
        if "user_agent" in options:
            changes["user_agent"] = options["user_agent"].strip() or None
        changes.update(http_options(self.name, options))
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def url(self, window: FetchWindow, today: date | None = None) -> str:
        """The request URL for ``window`` (query included); an open end is today in London."""
        since = max(window.since or FIRST_DAY, FIRST_DAY)
        until = window.until or today or datetime.now(_LONDON).date()
        return (
            f"{self.base_url}?csv.x=yes&Datefrom={_dd_mon_yyyy(since)}"
            f"&Dateto={_dd_mon_yyyy(until)}&SeriesCodes={','.join(self.series)}"
            "&CSVF=TN&UsingCodes=Y"
        )

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Ask the IADB for ``window``; every quote is parsed before the first is yielded.

        An unchanged answer (HTTP 304) yields nothing.
        """
        url = self.url(window)
        with HttpFetcher.for_source(
            self.name,
            context,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff,
            headers={"User-Agent": self.user_agent} if self.user_agent else {},
        ) as fetcher:
            answer = fetcher.get(url)
        if answer is None:
            return iter(())
        return iter(parse(answer.content, label=url, window=window, source=self.name))


def parse(
    payload: bytes,
    *,
    label: str = "payload",
    window: FetchWindow | None = None,
    source: str = NAME,
    today: date | None = None,
) -> list[Quote]:
    """The quotes of an IADB CSV (``CSVF=TN``, ``UsingCodes=Y``) inside ``window``."""
    window = window or FetchWindow()
    latest_allowed = (today or datetime.now(UTC).date()) + _FUTURE_TOLERANCE
    if looks_like_html(payload):
        raise SourceError(
            source, "an HTML page where CSV was expected (an error page?)", location=label
        )
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SourceError(source, f"not UTF-8 text ({error.reason})", location=label) from error
    rows = _rows(text, label, source)
    _, header = next(rows, (1, []))
    pairs = _pairs(header, label, source)
    quotes: list[Quote] = []
    days: set[date] = set()
    for line, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue
        where = f"{label} line {line}"
        if len(cells) != len(header):
            raise SourceError(
                source,
                f"{len(cells)} cells for {len(header)} columns (truncated?)",
                location=where,
            )
        day = _day(cells[0].strip(), where, source)
        where = f"{where} {cells[0].strip()}"
        if day in days:
            raise SourceError(source, f"{day} appears twice", location=where)
        days.add(day)
        if day > latest_allowed:
            raise SourceError(source, f"{day} is in the future", location=where)
        observed_at = london_afternoon(day)
        for (series, pair), cell in zip(pairs, cells[1:], strict=True):
            value = cell.strip()
            if not value:
                continue  # no rate of this series that day
            rate = _rate(value, f"{where} {series}", source)
            if window.contains(day):
                quotes.append(
                    Quote(
                        pair=pair,
                        rate=rate,
                        observed_at=observed_at,
                        source=source,
                        kind=QuoteKind.MID,
                    )
                )
    return quotes


def london_afternoon(day: date) -> datetime:
    """16:00 London time on ``day``, in UTC: when the Bank observes its daily spot rates."""
    return datetime.combine(day, _OBSERVED, tzinfo=_LONDON).astimezone(UTC)


def _rows(text: str, label: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """The CSV rows, each with the line it starts on; a malformed line is a `SourceError`."""
    # newline="" lets the csv module, not the text layer, decide what ends a line.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise SourceError(
                source, f"malformed CSV ({error})", location=f"{label} line {line}"
            ) from error
        yield line, cells


def _pairs(header: list[str], label: str, source: str) -> list[tuple[str, Pair]]:
    """The (series, GBP/<code>) of each column after ``DATE``."""
    where = f"{label} line 1"
    if not header or header[0].strip() != "DATE":
        raise SourceError(
            source, "the first column is not DATE: not an IADB CSV of codes", location=where
        )
    pairs: list[tuple[str, Pair]] = []
    for cell in header[1:]:
        series = cell.strip()
        if series not in SERIES:
            raise SourceError(
                source, f"series {series!r} has no known currency", location=f"{where} {series}"
            )
        if any(series == seen for seen, _ in pairs):
            raise SourceError(
                source, f"series {series} appears twice", location=f"{where} {series}"
            )
        pairs.append((series, Pair.of("GBP", SERIES[series])))
    return pairs


def _day(text: str, where: str, source: str) -> date:
    match = _DAY.fullmatch(text)
    if match is None or match.group(2) not in _MONTHS:
        raise SourceError(source, f"{text!r} is not a day (DD Mon YYYY)", location=where)
    day, month, year = match.groups()
    try:
        return date(int(year), _MONTHS.index(month) + 1, int(day))
    except ValueError:
        raise SourceError(source, f"{text!r} is not a day", location=where) from None


def _rate(text: str, where: str, source: str) -> Decimal:
    if _NUMBER.fullmatch(text) is None:
        raise SourceError(source, f"rate {text!r} is not a number", location=where)
    rate = Decimal(text)
    if rate <= 0:
        raise SourceError(source, f"rate {text!r} is not a positive number", location=where)
    return rate


def _dd_mon_yyyy(day: date) -> str:
    return f"{day.day:02d}/{_MONTHS[day.month - 1]}/{day.year:04d}"


def _series(text: str, source: str) -> tuple[str, ...]:
    by_currency = {code: series for series, code in SERIES.items()}
    codes = tuple(dict.fromkeys(part.strip().upper() for part in text.split(",") if part.strip()))
    for code in codes:
        if code not in by_currency:
            known = ", ".join(sorted(by_currency))
            raise SourceError(
                source, f"currencies: no Bank of England series for {code!r} (known: {known})"
            )
    return tuple(by_currency[code] for code in codes) or tuple(SERIES)


@hookimpl
def fxcortex_register_sources(register: Callable[[BoeSource], None]) -> None:
    """Register the Bank of England source (every series of `SERIES`)."""
    register(BoeSource())
