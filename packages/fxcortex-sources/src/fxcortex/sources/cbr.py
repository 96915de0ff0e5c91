"""Central Bank of Russia official exchange rates of the rouble (source ``cbr``).

Endpoints (no key):

- ``https://www.cbr.ru/scripts/XML_daily.asp`` — the rates in force now (the newest file), or
  ``…?date_req=DD/MM/YYYY`` — the rates in force on that day. Used for an open window (the latest
  rates) and for a window of one day.
- ``https://www.cbr.ru/scripts/XML_dynamic.asp?date_req1=DD/MM/YYYY&date_req2=DD/MM/YYYY
  &VAL_NM_RQ=<id>`` — one currency over a range, for every other window (backfills). The
  currency ids (``R01235`` is USD) come from the ``ID`` attributes of the newest daily file, which
  is fetched first; ``currencies=USD,EUR`` limits both the requests and the quotes.

Format: XML declared ``windows-1251`` (the HTTP ``charset`` says the same), decoded as the XML
declaration says (the HTTP charset only when there is no declaration). The daily file is
``<ValCurs Date="25.04.2026"><Valute ID="R01030"><CharCode>DZD</CharCode><Nominal>100</Nominal>
<Value>57,0006</Value><VunitRate>0,570006</VunitRate></Valute>…``; the dynamic file is
``<ValCurs ID="R01030" …><Record Date="03.03.2026" Id="R01030"><Nominal>100</Nominal>
<Value>59,2589</Value><VunitRate>0,592589</VunitRate></Record>…``. Numbers use a decimal comma;
``VunitRate`` may be in exponent form (``5,39256E-05`` for IRR).

Units and direction: ``Value`` is roubles per ``Nominal`` units of the currency, so the rate per
one unit is ``Value / Nominal`` (Decimal division): DZD "Nominal 100, Value 57,0006" is
``DZD/RUB`` 0.570006. Every quote is ``<code>/RUB`` of kind ``mid`` (an official rate, neither a
buying nor a selling one). ``VunitRate`` (the per-unit rate the CBR prints since 2022) is checked
against ``Value / Nominal`` when present: they must agree to within half a unit of ``Value``'s last
printed digit divided by ``Nominal``, else the file is refused; the quote keeps ``Value / Nominal``
so the digits published for ``Value`` survive. Before 1998-01-01 (the 1000:1 redenomination) the
rates are in old roubles and the quote currency is ``RUR``.

Time: the CBR sets rates on a business day and they take effect on the date the file carries
(``ValCurs Date`` / ``Record Date``), usually the next calendar day; Friday's rates carry
Saturday's date and stay in force until the next date. ``observed_at`` is the instant the rate
takes effect: 00:00 Moscow time (``Europe/Moscow``) on that date, in UTC — 21:00 UTC of the day
before (Moscow is UTC+3). That is the only instant the file itself fixes: the day the rate was set
is not in it. The window is applied to the effective date. Dates up to two days past today (UTC)
are accepted — a rate set today is dated tomorrow — anything later is refused.

Checks, each a `SourceError` naming the URL and the element (``Valute ID=…`` / ``Record
Date=…``): an HTML page or any DOCTYPE (no entity expansion is ever attempted), malformed XML, a
root that is not ``ValCurs``, a missing or malformed date, a missing ``CharCode``/``Nominal``/
``Value``, a code that is not a known currency or is the rouble, a nominal that is not a positive
whole number, a value that is not a positive number, ``VunitRate`` disagreeing with
``Value / Nominal``, a currency or id twice in a file, a record date twice, a record of another id
than asked for, a date in the future.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, DecimalException
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
from fxcortex.sources.http import HttpFetcher, HttpPayload, looks_like_html
from fxcortex.sources.options import HTTP_OPTIONS, http_options, reject_unknown, seconds

NAME = "cbr"
BASE_URL = "https://www.cbr.ru/scripts"
# The first day the daily file is served for (the CBR's archive starts on 1 July 1992).
FIRST_DAY = date(1992, 7, 1)
# The 1998 redenomination: 1000 old roubles (RUR) became 1 rouble (RUB).
REDENOMINATION = date(1998, 1, 1)
SCHEDULE = Schedule(
    cron="0 16 * * 1-5",
    timezone="Europe/Moscow",
    description=(
        "every Russian business day, set in the afternoon Moscow time; each rate takes effect on "
        "the date it carries, usually the next calendar day"
    ),
)
# The 54 currencies of the daily file (April 2026).
CURRENCIES = tuple(
    """
    AUD AZN DZD GBP AMD BHD BYN BOB BRL HUF VND HKD GEL DKK AED USD EUR EGP INR IDR IRR KZT CAD
    QAR KGS CNY CUP MDL MNT NGN NZD NOK OMR PLN SAR RON XDR SGD TJS THB BDT TRY TMT UZS UAH CZK
    SEK CHF ETB RSD ZAR KRW JPY MMK
    """.split()  # noqa: SIM905
)

_MOSCOW = ZoneInfo("Europe/Moscow")
# A rate set today is dated tomorrow (Moscow); one more day covers the time-zone edge.
_FUTURE_TOLERANCE = timedelta(days=2)
# Digits, an optional decimal comma part, an optional (small) exponent: "57,0006", "5,39256E-05".
_NUMBER = re.compile(r"([0-9]+)(?:,([0-9]+))?(?:[Ee]([-+]?[0-9]{1,3}))?")
_NOMINAL = re.compile(r"[1-9][0-9]{0,11}")
_DATE = re.compile(r"([0-9]{2})\.([0-9]{2})\.([0-9]{4})")
_OPTIONS = ("currencies", *HTTP_OPTIONS, "interval")


@attrs.frozen(kw_only=True)
class CbrSource:
    """Official rouble rates of the Central Bank of Russia (XXX/RUB, mid)."""

    base_url: str = BASE_URL
    codes: tuple[str, ...] = ()
    timeout: float = 30.0
    max_attempts: int = 5
    backoff: float = 0.5
    interval: float = 0.25
    name: str = NAME
    description: str = "Central Bank of Russia official rates (RUB quote, ~54 currencies, 1992–)"
    schedule: Schedule = SCHEDULE
    currencies: tuple[str, ...] = CURRENCIES
    history_since: date | None = FIRST_DAY
    observation_interval: timedelta = timedelta(days=1)

    def configure(self, **options: str) -> Self:
        """A copy with options set.

        ``currencies`` (comma-separated codes, e.g. ``USD,EUR``; empty for all), ``timeout``
        (seconds), ``max_attempts`` (HTTP attempts, at least 1), ``backoff`` (the first retry's
        ceiling in seconds), ``interval`` (the least time between two requests, in seconds: a
        backfill asks once per currency).
        """
        reject_unknown(self.name, options, _OPTIONS)
        changes: dict[str, object] = {}
        if "currencies" in options:
            codes = _codes(options["currencies"], self.name)
            changes["codes"] = codes
            changes["currencies"] = codes or CURRENCIES
        changes.update(http_options(self.name, options))
        if "interval" in options:
            changes["interval"] = seconds(self.name, "interval", options["interval"], zero=True)
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def daily_url(self, day: date | None = None) -> str:
        """The daily file in force on ``day`` (the newest one when None)."""
        url = f"{self.base_url.rstrip('/')}/XML_daily.asp"
        return url if day is None else f"{url}?date_req={_ddmmyyyy(day)}"

    def dynamic_url(self, valute_id: str, since: date, until: date) -> str:
        """One currency's rates from ``since`` to ``until``, both inclusive."""
        return (
            f"{self.base_url.rstrip('/')}/XML_dynamic.asp?date_req1={_ddmmyyyy(since)}"
            f"&date_req2={_ddmmyyyy(until)}&VAL_NM_RQ={valute_id}"
        )

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """The rates in force inside ``window``, all parsed before the first is yielded.

        An open window reads the newest daily file, a one-day window the daily file of that day,
        any other window one dynamic file per currency. An unchanged file (HTTP 304) adds nothing.
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
            if window.since is None and window.until is None:
                quotes += self._daily(fetcher, None, window)
            elif window.since is not None and window.since == window.until:
                quotes += self._daily(fetcher, window.since, window)
            else:
                quotes += self._backfill(fetcher, window)
        return iter(quotes)

    def _daily(self, fetcher: HttpFetcher, day: date | None, window: FetchWindow) -> list[Quote]:
        url = self.daily_url(day)
        answer = fetcher.get(url)
        if answer is None:
            return []
        quotes = parse_daily(
            answer.content, label=url, encoding=_charset(answer), window=window, source=self.name
        )
        if self.codes:
            quotes = [quote for quote in quotes if quote.pair.base.code in self.codes]
        return quotes

    def _backfill(self, fetcher: HttpFetcher, window: FetchWindow) -> list[Quote]:
        since = max(window.since or FIRST_DAY, FIRST_DAY)
        # A rate set today is already published with tomorrow's date.
        until = window.until or datetime.now(_MOSCOW).date() + timedelta(days=1)
        if since > until:
            return []
        url = self.daily_url()
        # Not conditional: the list of ids is needed even when the rates did not change.
        answer = fetcher.get(url, conditional=False)
        assert answer is not None  # only a conditional GET can answer "not modified"
        listed = listed_currencies(
            answer.content, label=url, encoding=_charset(answer), source=self.name
        )
        wanted = self.codes or tuple(listed.values())
        ids = {code: valute_id for valute_id, code in listed.items()}
        missing = [code for code in wanted if code not in ids]
        if missing:
            raise SourceError(
                self.name,
                f"the daily file lists no {', '.join(missing)}: no id to ask the dynamic file for",
                location=url,
            )
        quotes: list[Quote] = []
        for code in wanted:
            dynamic = self.dynamic_url(ids[code], since, until)
            answer = fetcher.get(dynamic)
            if answer is not None:
                quotes += parse_dynamic(
                    answer.content,
                    code=code,
                    valute_id=ids[code],
                    label=dynamic,
                    encoding=_charset(answer),
                    window=window,
                    source=self.name,
                )
        return quotes


def parse_daily(
    payload: bytes,
    *,
    label: str = "payload",
    encoding: str | None = None,
    window: FetchWindow | None = None,
    source: str = NAME,
    today: date | None = None,
) -> list[Quote]:
    """The quotes of an ``XML_daily.asp`` file in force inside ``window``, or a `SourceError`."""
    window = window or FetchWindow()
    day, entries = _daily_entries(payload, label, encoding, source, today)
    if not window.contains(day):
        return []
    observed_at = effective_time(day)
    pairs = {code: Pair.of(code, _rouble(day)) for _, code, _ in entries}
    return [
        Quote(
            pair=pairs[code], rate=rate, observed_at=observed_at, source=source, kind=QuoteKind.MID
        )
        for _, code, rate in entries
    ]


def listed_currencies(
    payload: bytes,
    *,
    label: str = "payload",
    encoding: str | None = None,
    source: str = NAME,
    today: date | None = None,
) -> dict[str, str]:
    """The currency ids of a daily file and their codes (``{"R01235": "USD", …}``).

    The whole file is checked as `parse_daily` checks it.
    """
    _, entries = _daily_entries(payload, label, encoding, source, today)
    return {valute_id: code for valute_id, code, _ in entries}


def _daily_entries(
    payload: bytes, label: str, encoding: str | None, source: str, today: date | None
) -> tuple[date, list[tuple[str, str, Decimal]]]:
    """The date of a daily file and its (id, code, rate per unit) entries, in file order."""
    root = _root(payload, label, encoding, source)
    day = _date(root.get("Date"), f"{label} ValCurs", source, today)
    entries: list[tuple[str, str, Decimal]] = []
    codes: set[str] = set()
    ids: set[str] = set()
    for valute in root:
        valute_id = valute.get("ID") or ""
        where = f"{label} Valute ID={valute_id}"
        if valute.tag != "Valute":
            raise SourceError(source, f"unexpected element <{valute.tag}>", location=where)
        if not valute_id:
            raise SourceError(source, "a Valute without an ID", location=where)
        if valute_id in ids:
            raise SourceError(source, f"id {valute_id} appears twice", location=where)
        ids.add(valute_id)
        code = _code(valute.findtext("CharCode"), where, source)
        where = f"{where} CharCode={code}"
        if code in codes:
            raise SourceError(source, f"{code} appears twice", location=where)
        codes.add(code)
        entries.append((valute_id, code, _rate(valute, where, source)))
    return day, entries


def parse_dynamic(
    payload: bytes,
    *,
    code: str,
    valute_id: str,
    label: str = "payload",
    encoding: str | None = None,
    window: FetchWindow | None = None,
    source: str = NAME,
    today: date | None = None,
) -> list[Quote]:
    """The quotes of an ``XML_dynamic.asp`` file of currency ``code`` (id ``valute_id``)."""
    window = window or FetchWindow()
    root = _root(payload, label, encoding, source)
    if root.get("ID") not in (None, valute_id):
        raise SourceError(
            source,
            f"the file is of id {root.get('ID')}, {valute_id} ({code}) was asked for",
            location=f"{label} ValCurs",
        )
    quotes: list[Quote] = []
    days: set[date] = set()
    for record in root:
        where = f"{label} Record Date={record.get('Date')}"
        if record.tag != "Record":
            raise SourceError(source, f"unexpected element <{record.tag}>", location=where)
        if record.get("Id") != valute_id:
            raise SourceError(
                source,
                f"a record of id {record.get('Id')} in the file of {valute_id} ({code})",
                location=where,
            )
        day = _date(record.get("Date"), where, source, today)
        if day in days:
            raise SourceError(source, f"{day} appears twice", location=where)
        days.add(day)
        rate = _rate(record, where, source)
        if window.contains(day):
            quotes.append(
                Quote(
                    pair=Pair.of(code, _rouble(day)),
                    rate=rate,
                    observed_at=effective_time(day),
                    source=source,
                    kind=QuoteKind.MID,
                )
            )
    return quotes


def effective_time(day: date) -> datetime:
    """00:00 Moscow time on ``day``, in UTC: when the rates dated ``day`` take effect."""
    return datetime.combine(day, time(0, 0), tzinfo=_MOSCOW).astimezone(UTC)


def _rouble(day: date) -> str:
    return "RUB" if day >= REDENOMINATION else "RUR"


def _charset(answer: HttpPayload) -> str | None:
    for parameter in answer.headers.get("content-type", "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _root(payload: bytes, label: str, encoding: str | None, source: str) -> ElementTree.Element:
    if looks_like_html(payload):
        raise SourceError(
            source, "an HTML page where XML was expected (an error page?)", location=label
        )
    if b"<!DOCTYPE" in payload or b"<!ENTITY" in payload:
        # The CBR never sends one; refusing it means no entity is ever expanded.
        raise SourceError(source, "a DOCTYPE or entity declaration in the XML", location=label)
    document: bytes | str = payload
    if not payload.lstrip().startswith(b"<?xml") and encoding:
        # No XML declaration: the HTTP charset says how to decode.
        try:
            document = payload.decode(encoding)
        except (LookupError, UnicodeDecodeError) as error:
            raise SourceError(source, f"not {encoding} text ({error})", location=label) from error
    try:
        root = ElementTree.fromstring(document)
    except (ElementTree.ParseError, ValueError, LookupError, TypeError) as error:
        # ValueError/LookupError: a declared encoding Python cannot or will not decode.
        raise SourceError(source, f"malformed XML ({error})", location=label) from error
    if root.tag != "ValCurs":
        raise SourceError(
            source, f"the root is <{root.tag}>, not <ValCurs>: not a CBR rate file", location=label
        )
    return root


def _date(text: str | None, where: str, source: str, today: date | None) -> date:
    match = _DATE.fullmatch(text or "")
    if match is None:
        raise SourceError(source, f"date {text!r} is not DD.MM.YYYY", location=where)
    day_text, month, year = match.groups()
    try:
        day = date(int(year), int(month), int(day_text))
    except ValueError:
        raise SourceError(source, f"date {text!r} is not a day", location=where) from None
    latest_allowed = (today or datetime.now(UTC).date()) + _FUTURE_TOLERANCE
    if day > latest_allowed:
        raise SourceError(source, f"{day} is in the future", location=where)
    return day


def _code(text: str | None, where: str, source: str) -> str:
    code = (text or "").strip()
    if code not in KNOWN_CODES:
        raise SourceError(source, f"unknown currency code {code!r}", location=where)
    if code in ("RUB", "RUR"):
        raise SourceError(source, f"{code} quoted in roubles", location=where)
    return code


def _rate(element: ElementTree.Element, where: str, source: str) -> Decimal:
    nominal_text = (element.findtext("Nominal") or "").strip()
    if _NOMINAL.fullmatch(nominal_text) is None:
        raise SourceError(
            source, f"Nominal {nominal_text!r} is not a positive whole number", location=where
        )
    nominal = Decimal(nominal_text)
    value_text = element.findtext("Value")
    value = _number(value_text, "Value", where, source)
    try:
        rate = value / nominal
    except DecimalException:
        raise SourceError(
            source, f"Value {value_text!r} / Nominal {nominal_text} is out of range", location=where
        ) from None
    if not rate.is_finite() or rate <= 0:
        raise SourceError(
            source,
            f"Value {value_text!r} / Nominal {nominal_text} is not a positive number",
            location=where,
        )
    unit_text = element.findtext("VunitRate")
    if unit_text is not None and unit_text.strip():
        unit_rate = _number(unit_text, "VunitRate", where, source)
        # Value is printed to a fixed number of places: VunitRate may differ from
        # Value / Nominal by the rounding of Value's last digit, no more.
        last_place = value.as_tuple().exponent
        assert isinstance(last_place, int)  # a finite number
        tolerance = Decimal(5).scaleb(last_place - 1) / nominal
        try:
            disagree = abs(unit_rate - rate) > tolerance
        except DecimalException:
            disagree = True
        if disagree:
            raise SourceError(
                source,
                f"VunitRate {unit_text.strip()} disagrees with Value {value_text} / Nominal "
                f"{nominal_text} = {rate}",
                location=where,
            )
    return rate


def _number(text: str | None, field: str, where: str, source: str) -> Decimal:
    stripped = (text or "").strip()
    match = _NUMBER.fullmatch(stripped)
    if match is None:
        raise SourceError(source, f"{field} {text!r} is not a number", location=where)
    whole, fraction, exponent = match.groups()
    # Built as text so every printed digit is kept (no rounding to the context's precision).
    point = f".{fraction}" if fraction else ""
    value = Decimal(f"{whole}{point}E{exponent or '0'}")
    if value <= 0:
        raise SourceError(source, f"{field} {text!r} is not a positive number", location=where)
    return value


def _ddmmyyyy(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def _codes(text: str, source: str) -> tuple[str, ...]:
    codes = tuple(dict.fromkeys(part.strip().upper() for part in text.split(",") if part.strip()))
    for code in codes:
        if code not in KNOWN_CODES or code in ("RUB", "RUR"):
            raise SourceError(source, f"currencies: {code!r} is not a currency the CBR quotes")
    return codes


@hookimpl
def fxcortex_register_sources(register: Callable[[CbrSource], None]) -> None:
    """Register the Central Bank of Russia source (every currency it quotes)."""
    register(CbrSource())
