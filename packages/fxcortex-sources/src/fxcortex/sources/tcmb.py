"""Central Bank of the Republic of Türkiye indicative exchange rates (source ``tcmb``).

Endpoints (no key):

- ``https://www.tcmb.gov.tr/kurlar/today.xml`` — the newest bulletin, for an open window;
- ``https://www.tcmb.gov.tr/kurlar/YYYYMM/DDMMYYYY.xml`` — the bulletin of one day
  (``kurlar/202603/16032026.xml``), once per day of any other window (an open end is today in
  Istanbul; an open start with an end reads the newest bulletin only). A day without a bulletin (a
  weekend, a holiday) answers HTTP 404: that day adds nothing. The archive is read from
  1996-05-02 (the first bulletin, as public tools describe it; not checked here).

Format: XML (declared UTF-8)::

    <Tarih_Date Tarih="26.09.2026" Date="09/26/2026" Bulten_No="2026/184">
     <Currency CrossOrder="0" Kod="USD" CurrencyCode="USD"><Unit>1</Unit>…
      <ForexBuying>41.3617</ForexBuying><ForexSelling>41.4362</ForexSelling>
      <BanknoteBuying>41.3327</BanknoteBuying><BanknoteSelling>41.4984</BanknoteSelling>…
     <Currency CrossOrder="1" Kod="JPY" CurrencyCode="JPY"><Unit>100</Unit>…

Units and direction: ``ForexBuying``/``ForexSelling`` are lira per ``Unit`` units of the currency,
so the rate per one unit is ``value / Unit`` (Decimal division): JPY "Unit 100, ForexBuying
27.6450" is ``JPY/TRY`` 0.276450. Every quote is ``<code>/TRY``; before 2005-01-01 (one new lira
for a million old ones) the bulletins are in old lira, ``TRL`` — as TCMB's own statistics say of
their rates before the conversion (unverified for the XML archive itself).

Kinds: ``ForexBuying`` is kind ``buy``, ``ForexSelling`` kind ``sell``: two quotes per currency and
bulletin. They are not ``bid``/``ask``: those are a market's best orders at an instant, while these
are the rates the central bank itself announces it buys and sells foreign exchange at (indicative,
for the next business day) — a dealer's buying and selling rates, which is what ``buy``/``sell``
mean here. The banknote (cash) rates are another instrument and are not read. A currency with an
empty ``ForexBuying`` or ``ForexSelling`` (the SDR row has been published without one) gives only
the other kind.

Time: the bulletin is announced at 15:30 Istanbul time on its date (``Tarih``); ``observed_at`` is
that instant in UTC (Türkiye is UTC+3 all year since 2016; zoneinfo knows the older offsets).

Checks, each a `SourceError` naming the URL and the element (``Currency Kod=…``): an HTML page or
any DOCTYPE (no entity expansion is ever attempted), malformed XML, a root that is not
``Tarih_Date``, a missing or malformed ``Tarih``, a ``Date`` that disagrees with it, an archive
bulletin dated another day than its URL, a date more than one day ahead of today, a code that is
not a known currency or is the lira, ``Kod`` and ``CurrencyCode`` disagreeing, a currency twice, a
``Unit`` that is not a positive whole number, a rate that is not a positive number, a buying rate
above the selling rate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Self
from xml.etree import ElementTree
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
from fxcortex.sources.options import HTTP_OPTIONS, http_options, reject_unknown, seconds

NAME = "tcmb"
BASE_URL = "https://www.tcmb.gov.tr/kurlar"
FIRST_DAY = date(1996, 5, 2)
# 1 January 2005: one new lira (TRY) for 1,000,000 old lira (TRL).
REDENOMINATION = date(2005, 1, 1)
SCHEDULE = Schedule(
    cron="30 15 * * 1-5",
    timezone="Europe/Istanbul",
    description="every Turkish business day, announced at about 15:30 Istanbul time",
)

_ISTANBUL = ZoneInfo("Europe/Istanbul")
_ANNOUNCED = time(15, 30)
_KINDS = (("ForexBuying", QuoteKind.BUY), ("ForexSelling", QuoteKind.SELL))
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_UNIT = re.compile(r"[1-9][0-9]{0,11}")
_TARIH = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})")
_DATE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_FUTURE_TOLERANCE = timedelta(days=1)
_OPTIONS = (*HTTP_OPTIONS, "interval")


@attrs.frozen(kw_only=True)
class TcmbSource:
    """TCMB's indicative buying and selling rates of the lira (XXX/TRY, buy and sell)."""

    base_url: str = BASE_URL
    timeout: float = 30.0
    max_attempts: int = 5
    backoff: float = 0.5
    interval: float = 0.25
    name: str = NAME
    description: str = "TCMB indicative forex buying/selling rates (TRY quote, ~20 currencies)"
    schedule: Schedule = SCHEDULE
    # About 20 currencies; the list has changed over the years, so it is not pinned here.
    currencies: tuple[str, ...] = ()
    history_since: date | None = FIRST_DAY
    observation_interval: timedelta = timedelta(days=1)

    def configure(self, **options: str) -> Self:
        """A copy with options set.

        ``timeout`` (seconds), ``max_attempts`` (HTTP attempts, at least 1), ``backoff`` (the
        first retry's ceiling in seconds), ``interval`` (the least time between two requests, in
        seconds: a backfill asks once per day).
        """
        reject_unknown(self.name, options, _OPTIONS)
        changes: dict[str, object] = {}
        changes.update(http_options(self.name, options))
        if "interval" in options:
            changes["interval"] = seconds(self.name, "interval", options["interval"], zero=True)
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def today_url(self) -> str:
        """The newest bulletin."""
        return f"{self.base_url.rstrip('/')}/today.xml"

    def archive_url(self, day: date) -> str:
        """The bulletin of ``day`` (``YYYYMM/DDMMYYYY.xml``)."""
        return (
            f"{self.base_url.rstrip('/')}/{day.year:04d}{day.month:02d}/"
            f"{day.day:02d}{day.month:02d}{day.year:04d}.xml"
        )

    def days(self, window: FetchWindow, today: date | None = None) -> list[date]:
        """The days whose bulletins a window with a start asks for, up to today in Istanbul."""
        assert window.since is not None
        today = today or datetime.now(_ISTANBUL).date()
        day = max(window.since, FIRST_DAY)
        last = min(window.until or today, today)
        days = []
        while day <= last:
            days.append(day)
            day += timedelta(days=1)
        return days

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """The bulletins inside ``window``, all parsed before the first quote is yielded.

        A day without a bulletin (HTTP 404) or an unchanged one (HTTP 304) adds nothing.
        """
        quotes: list[Quote] = []
        with HttpFetcher.for_source(
            self.name,
            context,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff,
            min_interval=self.interval,
        ) as fetcher:
            if window.since is None:
                url = self.today_url()
                answer = fetcher.get(url)
                if answer is not None:
                    quotes += parse(answer.content, label=url, window=window, source=self.name)
            else:
                for day in self.days(window):
                    url = self.archive_url(day)
                    answer = fetcher.get(url, accept=(404,))
                    if answer is None or answer.status == 404:
                        continue  # unchanged, or no bulletin that day
                    quotes += parse(
                        answer.content, label=url, window=window, source=self.name, day=day
                    )
        return iter(quotes)


def parse(
    payload: bytes,
    *,
    label: str = "payload",
    window: FetchWindow | None = None,
    source: str = NAME,
    day: date | None = None,
    today: date | None = None,
) -> list[Quote]:
    """The quotes of a TCMB bulletin inside ``window``, or a `SourceError`.

    ``day``: the day an archive URL asked for; the bulletin must carry that date.
    """
    window = window or FetchWindow()
    latest_allowed = (today or datetime.now(UTC).date()) + _FUTURE_TOLERANCE
    root = _root(payload, label, source)
    where = f"{label} Tarih_Date"
    bulletin = _bulletin_date(root, where, source)
    if day is not None and bulletin != day:
        raise SourceError(source, f"the bulletin of {bulletin} at the URL of {day}", location=where)
    if bulletin > latest_allowed:
        raise SourceError(source, f"{bulletin} is in the future", location=where)
    observed_at = announcement_time(bulletin)
    lira = "TRY" if bulletin >= REDENOMINATION else "TRL"
    quotes: list[Quote] = []
    codes: set[str] = set()
    for currency in root:
        code = _code(currency, label, source)
        where = f"{label} Currency Kod={code}"
        if code in codes:
            raise SourceError(source, f"{code} appears twice", location=where)
        codes.add(code)
        unit_text = (currency.findtext("Unit") or "").strip()
        if _UNIT.fullmatch(unit_text) is None:
            raise SourceError(
                source, f"Unit {unit_text!r} is not a positive whole number", location=where
            )
        unit = Decimal(unit_text)
        rates: dict[QuoteKind, Decimal] = {}
        for field, kind in _KINDS:
            text = (currency.findtext(field) or "").strip()
            if text:
                rates[kind] = _rate(text, field, where, source) / unit
        buy, sell = rates.get(QuoteKind.BUY), rates.get(QuoteKind.SELL)
        if buy is not None and sell is not None and buy > sell:
            raise SourceError(
                source, f"buying rate {buy} is above selling rate {sell}", location=where
            )
        pair = Pair.of(code, lira)
        quotes += (
            Quote(pair=pair, rate=rate, observed_at=observed_at, source=source, kind=kind)
            for kind, rate in rates.items()
        )
    return quotes if window.contains(bulletin) else []


def announcement_time(day: date) -> datetime:
    """15:30 Istanbul time on ``day``, in UTC: when TCMB announces that day's bulletin."""
    return datetime.combine(day, _ANNOUNCED, tzinfo=_ISTANBUL).astimezone(UTC)


def _root(payload: bytes, label: str, source: str) -> ElementTree.Element:
    if looks_like_html(payload):
        raise SourceError(
            source, "an HTML page where XML was expected (an error page?)", location=label
        )
    if b"<!DOCTYPE" in payload or b"<!ENTITY" in payload:
        # TCMB never sends one; refusing it means no entity is ever expanded.
        raise SourceError(source, "a DOCTYPE or entity declaration in the XML", location=label)
    try:
        root = ElementTree.fromstring(payload)
    except (ElementTree.ParseError, ValueError, LookupError, TypeError) as error:
        # ValueError/LookupError: a declared encoding Python cannot or will not decode.
        raise SourceError(source, f"malformed XML ({error})", location=label) from error
    if root.tag != "Tarih_Date":
        raise SourceError(
            source,
            f"the root is <{root.tag}>, not <Tarih_Date>: not a TCMB bulletin",
            location=label,
        )
    return root


def _bulletin_date(root: ElementTree.Element, where: str, source: str) -> date:
    tarih = root.get("Tarih")
    match = _TARIH.fullmatch(tarih or "")
    if match is None:
        raise SourceError(source, f"Tarih {tarih!r} is not DD.MM.YYYY", location=where)
    day_text, month, year = match.groups()
    try:
        day = date(int(year), int(month), int(day_text))
    except ValueError:
        raise SourceError(source, f"Tarih {tarih!r} is not a day", location=where) from None
    english = root.get("Date")
    if english is not None:
        english_match = _DATE.fullmatch(english)
        if english_match is None or english_match.groups() != (month, day_text, year):
            raise SourceError(
                source, f"Date {english!r} disagrees with Tarih {tarih!r}", location=where
            )
    return day


def _code(currency: ElementTree.Element, label: str, source: str) -> str:
    kod = currency.get("Kod")
    code = currency.get("CurrencyCode", kod)
    where = f"{label} Currency Kod={kod}"
    if currency.tag != "Currency":
        raise SourceError(source, f"unexpected element <{currency.tag}>", location=where)
    if kod is not None and code != kod:
        raise SourceError(
            source, f"CurrencyCode {code!r} disagrees with Kod {kod!r}", location=where
        )
    if code not in KNOWN_CODES:
        raise SourceError(source, f"unknown currency code {code!r}", location=where)
    if code in ("TRY", "TRL"):
        raise SourceError(source, f"{code} quoted in lira", location=where)
    return code


def _rate(text: str, field: str, where: str, source: str) -> Decimal:
    if _NUMBER.fullmatch(text) is None:
        raise SourceError(source, f"{field} {text!r} is not a number", location=where)
    rate = Decimal(text)
    if rate <= 0:
        raise SourceError(source, f"{field} {text!r} is not a positive number", location=where)
    return rate


@hookimpl
def fxcortex_register_sources(register: Callable[[TcmbSource], None]) -> None:
    """Register the TCMB source."""
    register(TcmbSource())
