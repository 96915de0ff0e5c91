"""Bank of Canada daily exchange rates from the Valet API (source ``boc``).

Endpoint (no key): ``https://www.bankofcanada.ca/valet/observations/group/FX_RATES_DAILY/json``
with ``start_date`` (the window's first day, else 2017-01-03, the first day of the current series)
and ``end_date`` (the window's last day; left out for an open window).

Format: JSON with top-level ``terms``, ``groupDetail``, ``seriesDetail`` and ``observations``;
each observation is ``{"d": "2026-03-12", "FXUSDCAD": {"v": "1.3617"}, …}``. Values are strings
(a JSON number is accepted too; numbers are read as `Decimal`, never as float).

Units and direction: series ``FX{XXX}{YYY}`` is the price of one unit of XXX in YYY; in this group
YYY is always CAD. ``FXUSDCAD`` = 1.3617 is CAD 1.3617 per USD 1, so the quote is ``USD/CAD``
1.3617 of kind ``mid`` (the Bank publishes a daily average, "indicative rates only"), rate = the
value as written.

Quirks: a series missing from a day's observation, or an empty value, is a day without a rate and
is skipped (the group lists 26 series but a day carries about 23). A key that is not ``d`` and not
shaped ``FX`` + two codes is not a currency series (the Bank mixes in others in other groups) and is
ignored; a series shaped like one with an unknown code is an error. The same day twice, a key
twice in one JSON object (the same series twice on a day), a day more
than one day ahead of today, a value that is not a positive number, a missing ``observations`` list
or ``d`` date, an HTML page served with status 200: each is a `SourceError` naming the URL and the
observation (by its index and date) and the series.

Time: the rates are published "once each business day by 16:30 ET"; ``observed_at`` is 16:30
Toronto time (EST or EDT as the day falls) on the observation's date, in UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
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
from fxcortex.sources.options import HTTP_OPTIONS, http_options, reject_unknown

NAME = "boc"
BASE_URL = "https://www.bankofcanada.ca/valet"
GROUP = "FX_RATES_DAILY"
FIRST_DAY = date(2017, 1, 3)
SCHEDULE = Schedule(
    cron="30 16 * * 1-5",
    timezone="America/Toronto",
    description="every Canadian business day, published by 16:30 Eastern time",
)
# The 26 series of FX_RATES_DAILY, each quoted in Canadian dollars.
CURRENCIES = tuple(
    """
    AUD BRL CNY EUR HKD INR IDR JPY MYR MXN NZD NOK PEN RUB SAR SGD ZAR KRW SEK CHF TWD THB TRY
    GBP USD VND
    """.split()  # noqa: SIM905
)

_TORONTO = ZoneInfo("America/Toronto")
_PUBLISHED = time(16, 30)
_SERIES = re.compile(r"FX([A-Z]{3})([A-Z]{3})")
_FUTURE_TOLERANCE = timedelta(days=1)
_OPTIONS = HTTP_OPTIONS


@attrs.frozen(kw_only=True)
class BocSource:
    """Bank of Canada daily average exchange rates (about 26 currencies against CAD, 2017–)."""

    base_url: str = BASE_URL
    timeout: float = 30.0
    max_attempts: int = 5
    backoff: float = 0.5
    name: str = NAME
    description: str = "Bank of Canada daily average exchange rates (CAD quote, 2017–)"
    schedule: Schedule = SCHEDULE
    currencies: tuple[str, ...] = CURRENCIES
    history_since: date | None = FIRST_DAY
    observation_interval: timedelta = timedelta(days=1)

    def configure(self, **options: str) -> Self:
        """A copy with ``timeout`` (seconds), ``max_attempts`` (at least 1) or ``backoff`` set."""
        reject_unknown(self.name, options, _OPTIONS)
        changes: dict[str, object] = {}
        changes.update(http_options(self.name, options))
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def url(self, window: FetchWindow) -> str:
        """The request URL for ``window`` (query included)."""
        query = f"start_date={(window.since or FIRST_DAY).isoformat()}"
        if window.until is not None:
            query += f"&end_date={window.until.isoformat()}"
        return f"{self.base_url.rstrip('/')}/observations/group/{GROUP}/json?{query}"

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Ask Valet for ``window``; every quote is parsed before the first is yielded.

        An unchanged answer (HTTP 304) yields nothing.
        """
        url = self.url(window)
        with HttpFetcher.for_source(
            self.name,
            context,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff,
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
    """The quotes of a Valet ``observations`` JSON payload inside ``window``, or a `SourceError`."""
    window = window or FetchWindow()
    latest_allowed = (today or datetime.now(UTC).date()) + _FUTURE_TOLERANCE
    document = _json(payload, label, source)
    observations = document.get("observations") if isinstance(document, dict) else None
    if not isinstance(observations, list):
        raise SourceError(
            source, "no 'observations' list: not a Valet observations document", location=label
        )
    quotes: list[Quote] = []
    days: set[date] = set()
    for index, observation in enumerate(observations):
        where = f"{label} observations[{index}]"
        if not isinstance(observation, dict):
            raise SourceError(source, "an observation is not an object", location=where)
        day = _day(observation.get("d"), where, source)
        where = f"{where} d={day}"
        if day in days:
            raise SourceError(source, f"{day} appears twice", location=where)
        days.add(day)
        if day > latest_allowed:
            raise SourceError(source, f"{day} is in the future", location=where)
        rates = _rates(observation, where, source)
        if not window.contains(day):
            continue
        observed_at = publication_time(day)
        for pair, rate in rates:
            quotes.append(
                Quote(
                    pair=pair, rate=rate, observed_at=observed_at, source=source, kind=QuoteKind.MID
                )
            )
    return quotes


def publication_time(day: date) -> datetime:
    """16:30 Toronto time on ``day``, in UTC: when the Bank's rates for that day are out."""
    return datetime.combine(day, _PUBLISHED, tzinfo=_TORONTO).astimezone(UTC)


class _DuplicateKeyError(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that refuses a key twice (json keeps the last one silently)."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def _json(payload: bytes, label: str, source: str) -> Any:
    if looks_like_html(payload):
        raise SourceError(
            source, "an HTML page where JSON was expected (an error page?)", location=label
        )
    try:
        # Decimal for every number, so a rate never passes through a float.
        return json.loads(
            payload,
            parse_float=Decimal,
            parse_int=Decimal,
            parse_constant=Decimal,
            object_pairs_hook=_unique_keys,
        )
    except _DuplicateKeyError as error:
        raise SourceError(source, str(error), location=label) from error
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise SourceError(source, f"not valid JSON ({error})", location=label) from error


def _day(value: object, where: str, source: str) -> date:
    if not isinstance(value, str):
        raise SourceError(
            source, f"the date 'd' is missing or not text ({value!r})", location=where
        )
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SourceError(source, f"{value!r} is not a date", location=where) from None


def _rates(observation: dict[str, Any], where: str, source: str) -> list[tuple[Pair, Decimal]]:
    rates: list[tuple[Pair, Decimal]] = []
    for key, cell in observation.items():
        match = _SERIES.fullmatch(key)
        if key == "d" or match is None:
            continue  # not a currency series
        cell_where = f"{where} {key}"
        base, quote = match.groups()
        for code in (base, quote):
            if code not in KNOWN_CODES:
                raise SourceError(source, f"unknown currency code {code!r}", location=cell_where)
        if base == quote:
            raise SourceError(source, f"{key} quotes {base} against itself", location=cell_where)
        if not isinstance(cell, dict):
            raise SourceError(source, "the value is not an object {'v': …}", location=cell_where)
        value = cell.get("v")
        if value is None or value == "":
            continue  # no rate that day
        rates.append((Pair.of(base, quote), _rate(value, cell_where, source)))
    return rates


def _rate(value: object, where: str, source: str) -> Decimal:
    if isinstance(value, Decimal):
        rate = value
    elif isinstance(value, str):
        try:
            rate = Decimal(value)
        except InvalidOperation:
            raise SourceError(source, f"rate {value!r} is not a number", location=where) from None
    else:
        raise SourceError(source, f"rate {value!r} is not a number", location=where)
    if not rate.is_finite() or rate <= 0:
        raise SourceError(source, f"rate {value!r} is not a positive number", location=where)
    return rate


@hookimpl
def fxcortex_register_sources(register: Callable[[BocSource], None]) -> None:
    """Register the Bank of Canada source."""
    register(BocSource())
