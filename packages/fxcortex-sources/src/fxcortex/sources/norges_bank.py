"""Norges Bank daily exchange rates of the krone from its SDMX API (source ``norges-bank``).

Endpoint (no key): ``https://data.norges-bank.no/api/data/EXR/B..NOK.SP`` with
``format=csvdata``, ``startPeriod`` (the window's first day, else 1999-01-04) and ``endPeriod``
(the window's last day; left out for an open window). The key reads: business-daily (``B``), every
base currency (empty), against the krone (``NOK``), spot (``SP``).

Format: CSV with a header line, one observation per row::

    FREQ,BASE_CUR,QUOTE_CUR,TENOR,DECIMALS,CALCULATED,UNIT_MULT,COLLECTION,TIME_PERIOD,OBS_VALUE
    B,USD,NOK,SP,4,false,0,C,2026-03-16,9.7134
    B,DKK,NOK,SP,2,false,2,C,2026-03-16,149.21

Columns are found by name, in any order. ``BASE_CUR``, ``QUOTE_CUR`` (must be ``NOK``),
``UNIT_MULT``, ``TIME_PERIOD`` and ``OBS_VALUE`` are required; ``FREQ`` (``B``) and ``TENOR``
(``SP``) are checked when present, so a URL that asked for another series fails instead of storing
it under the wrong meaning. Other columns are ignored.

Units and direction: ``OBS_VALUE`` is kroner per 10^``UNIT_MULT`` units of ``BASE_CUR``
(Norges Bank quotes DKK, JPY, SEK … per 100), so the rate per one unit is
``OBS_VALUE / 10^UNIT_MULT``: "DKK, UNIT_MULT 2, 149.21" is ``DKK/NOK`` 1.4921. Every quote is
``<BASE_CUR>/NOK`` of kind ``mid`` (Norges Bank's rates are "middle rates, the mid-point between
buying and selling rates in the interbank market"). The division shifts the decimal point only, so
every published digit is kept.

Series that are not currencies are dropped on purpose: ``I44`` (the import-weighted krone index)
and ``TWI`` (the trade-weighted krone index) are indices, not prices of a currency. ``XDR`` (the
IMF's special drawing right) is an ISO 4217 code and is kept. Any other code that is not a known
currency is an error, not a silent drop.

Time: Norges Bank records its rates close to the ECB's 14:15 concertation and publishes them at
about 16:00 Oslo time. ``observed_at`` is 14:15 Oslo time (CET or CEST as the day falls) on
``TIME_PERIOD``, in UTC — the same instant as the ECB's fix of that day.

Checks, each a `SourceError` naming the URL, the line and the column: an HTML page served with
status 200, text that is not UTF-8, malformed CSV, a missing required column or a column twice, a
row with more or fewer cells than the header, a series of another frequency, quote currency or
tenor, an unknown code, ``NOK`` against itself, a ``UNIT_MULT`` that is not a whole number from 0
to 18, a value that is not a positive number, a currency twice on one day, a day more than one day
ahead of today. An empty ``OBS_VALUE`` or ``NaN`` is a day without a rate and is skipped.
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
from fxcortex.core.currencies import KNOWN_CODES
from fxcortex.sources.http import HttpFetcher, looks_like_html
from fxcortex.sources.options import HTTP_OPTIONS, http_options, reject_unknown

NAME = "norges-bank"
BASE_URL = "https://data.norges-bank.no/api"
FIRST_DAY = date(1999, 1, 4)
SCHEDULE = Schedule(
    cron="0 16 * * 1-5",
    timezone="Europe/Oslo",
    description="every Norwegian business day, published at about 16:00 Oslo time",
)
# The 36 currencies of B..NOK.SP (March 2026), the two indices I44 and TWI left out.
CURRENCIES = tuple(
    """
    AUD BDT BRL BYN CAD CHF CNY CZK DKK EUR GBP HKD HUF IDR ILS INR ISK JPY KRW MMK MXN MYR NZD
    PHP PKR PLN RON SEK SGD THB TRY TWD USD VND XDR ZAR
    """.split()  # noqa: SIM905
)
INDICES = {
    "I44": "the import-weighted krone exchange rate index",
    "TWI": "the trade-weighted krone exchange rate index",
}
"""Series of B..NOK.SP that are indices, not currencies: dropped on purpose."""

_OSLO = ZoneInfo("Europe/Oslo")
_RECORDED = time(14, 15)
_MISSING = frozenset({"", "NaN"})
_REQUIRED = ("BASE_CUR", "QUOTE_CUR", "UNIT_MULT", "TIME_PERIOD", "OBS_VALUE")
# Dimensions of the key we ask for: when a column is present it must hold this value.
_EXPECTED = {"FREQ": "B", "QUOTE_CUR": "NOK", "TENOR": "SP"}
_NUMBER = re.compile(r"(-?[0-9]+)(?:\.([0-9]+))?(?:[eE]([-+]?[0-9]{1,3}))?")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UNIT_MULT = re.compile(r"[0-9]{1,2}")
_FUTURE_TOLERANCE = timedelta(days=1)
_OPTIONS = HTTP_OPTIONS


@attrs.frozen(kw_only=True)
class NorgesBankSource:
    """Norges Bank's daily middle rates of about 36 currencies against the krone (XXX/NOK)."""

    base_url: str = BASE_URL
    timeout: float = 60.0
    max_attempts: int = 5
    backoff: float = 0.5
    name: str = NAME
    description: str = "Norges Bank daily exchange rates (NOK quote, ~36 currencies, 1999–)"
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
        since = max(window.since or FIRST_DAY, FIRST_DAY)
        query = f"format=csvdata&startPeriod={since.isoformat()}"
        if window.until is not None:
            query += f"&endPeriod={window.until.isoformat()}"
        return f"{self.base_url.rstrip('/')}/data/EXR/B..NOK.SP?{query}"

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Ask the API for ``window``; every quote is parsed before the first is yielded.

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
    """The quotes of a ``B..NOK.SP`` ``csvdata`` payload inside ``window``, or a `SourceError`."""
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
    first = next(rows, None)
    header = [cell.strip() for cell in first[1]] if first else []
    columns = _columns(header, label, source)
    quotes: list[Quote] = []
    seen: set[tuple[str, date]] = set()
    pairs: dict[str, Pair] = {}
    for line, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue
        where = f"{label} line {line}"
        if len(cells) != len(header):
            raise SourceError(
                source, f"{len(cells)} cells for {len(header)} columns (truncated?)", location=where
            )
        values = {name: cells[index].strip() for name, index in columns.items()}
        for name, expected in _EXPECTED.items():
            if name in values and values[name] != expected:
                raise SourceError(
                    source,
                    f"{name} is {values[name]!r}, expected {expected!r}: "
                    "not a daily krone spot rate",
                    location=f"{where} column {name}",
                )
        code = values["BASE_CUR"]
        if code in INDICES:
            continue  # an index, not a currency: see INDICES
        if code not in KNOWN_CODES:
            raise SourceError(
                source, f"unknown currency code {code!r}", location=f"{where} column BASE_CUR"
            )
        if code == "NOK":
            raise SourceError(
                source, "NOK quoted against itself", location=f"{where} column BASE_CUR"
            )
        day = _day(values["TIME_PERIOD"], f"{where} column TIME_PERIOD", source)
        if (code, day) in seen:
            raise SourceError(source, f"{code} on {day} appears twice", location=where)
        seen.add((code, day))
        if day > latest_allowed:
            raise SourceError(
                source, f"{day} is in the future", location=f"{where} column TIME_PERIOD"
            )
        if values["OBS_VALUE"] in _MISSING:
            continue
        rate = _rate(values["OBS_VALUE"], values["UNIT_MULT"], where, source)
        if not window.contains(day):
            continue
        pair = pairs.get(code) or pairs.setdefault(code, Pair.of(code, "NOK"))
        quotes.append(
            Quote(
                pair=pair,
                rate=rate,
                observed_at=recording_time(day),
                source=source,
                kind=QuoteKind.MID,
            )
        )
    return quotes


def recording_time(day: date) -> datetime:
    """14:15 Oslo time on ``day``, in UTC: when Norges Bank's rates of that day are recorded."""
    return datetime.combine(day, _RECORDED, tzinfo=_OSLO).astimezone(UTC)


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


def _columns(header: list[str], label: str, source: str) -> dict[str, int]:
    where = f"{label} line 1"
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise SourceError(
            source,
            f"the header lacks {', '.join(missing)}: not a Norges Bank EXR csvdata payload",
            location=where,
        )
    wanted = (*_REQUIRED, *_EXPECTED)
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in wanted:
            if name in columns:
                raise SourceError(source, f"column {name} appears twice", location=where)
            columns[name] = index
    return columns


def _day(text: str, where: str, source: str) -> date:
    try:
        # fromisoformat alone also takes "20260316" and week dates: only YYYY-MM-DD is a day here
        if _DAY.fullmatch(text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise SourceError(source, f"{text!r} is not a day (YYYY-MM-DD)", location=where) from None


def _rate(text: str, unit_mult: str, where: str, source: str) -> Decimal:
    if _UNIT_MULT.fullmatch(unit_mult) is None or int(unit_mult) > 18:
        raise SourceError(
            source,
            f"UNIT_MULT {unit_mult!r} is not a whole number from 0 to 18",
            location=f"{where} column UNIT_MULT",
        )
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise SourceError(
            source, f"rate {text!r} is not a number", location=f"{where} column OBS_VALUE"
        )
    whole, fraction, exponent = match.groups()
    point = f".{fraction}" if fraction else ""
    # Per one unit: the decimal point moves UNIT_MULT places, built as text so no digit is lost.
    rate = Decimal(f"{whole}{point}E{int(exponent or 0) - int(unit_mult)}")
    if rate <= 0:
        raise SourceError(
            source, f"rate {text!r} is not a positive number", location=f"{where} column OBS_VALUE"
        )
    return rate


@hookimpl
def fxcortex_register_sources(register: Callable[[NorgesBankSource], None]) -> None:
    """Register the Norges Bank source (every currency of B..NOK.SP)."""
    register(NorgesBankSource())
