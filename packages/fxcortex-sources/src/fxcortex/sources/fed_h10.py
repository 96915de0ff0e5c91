"""Federal Reserve H.10 exchange rates from the Data Download Program (source ``fed-h10``).

Endpoint (no key): ``https://www.federalreserve.gov/datadownload/Output.aspx`` with ``rel=H10``,
``series=60f32914ab61dfab590e0e470153e3ae`` (the all-currency package many public scripts use),
``filetype=csv``, ``label=include``, ``layout=seriescolumn``, ``type=package``, ``lastobs=``
(empty) and ``from``/``to`` as ``MM/DD/YYYY``: the window's first day (else 01/04/1971, where the
majors start) and last day (left empty for an open end, which means "to the newest").

Format: CSV, one column per series, with six header rows before the data::

    "Series Description","Australian Dollar","Euro-Area Euro","Japanese Yen"
    "Unit:","Currency","Currency","Currency"
    "Multiplier:","1","1","1"
    "Currency:","AUD","EUR","JPY"
    "Unique Identifier:","H10/H10/RXI$US_N.B.AL","H10/H10/RXI$US_N.B.EU","H10/H10/RXI_N.B.JA"
    "Time Period","RXI$US_N.B.AL","RXI$US_N.B.EU","RXI_N.B.JA"
    2026-09-30,0.6952,1.1345,157.2500
    2026-10-02,ND,ND,ND

The rows are recognised by their labels, which must come in this order. ``ND`` ("no data": a
holiday) and an empty cell are a day without a rate and are skipped.

Units and direction, from the series identifier (the ``Time Period`` row):

- ``RXI$US_…`` (AUD, EUR, GBP, NZD): US dollars per one unit of the foreign currency, so the quote
  is ``<code>/USD``: ``RXI$US_N.B.EU`` 1.1345 is ``EUR/USD`` 1.1345;
- ``RXI_…`` (every other currency): foreign currency per one US dollar, so the quote is
  ``USD/<code>``: ``RXI_N.B.JA`` 157.25 is ``USD/JPY`` 157.25.

No rate is inverted: each quote keeps the direction the Board publishes, so no digit is invented.
``<code>`` is the ``Currency:`` row of the column; the ``Multiplier:`` row scales the value (the
Data Download Program's meaning: the figure is in units of ``Multiplier``; rate = value ×
multiplier, a positive whole number, 1 for every exchange-rate series seen). Every quote is of kind
``mid`` (the noon buying rates are a single certified rate, neither a bid nor an ask).

Series that are not exchange rates are dropped on purpose: every column whose identifier does not
start with ``RXI`` (the nominal and real trade-weighted dollar indices ``JRXWTF…`` in the
package) is an index, whatever its ``Currency:`` row says. An ``RXI`` column whose ``Currency:`` is
not a known currency code (or is USD) is an error.

Time: the rates are the noon buying rates in New York certified for customs purposes, so
``observed_at`` is 12:00 New York time (EST or EDT as the day falls) on the row's date, in UTC.
The release comes out weekly, on Mondays (in the afternoon, New York time), covering the week
before; the schedule says so.

Checks, each a `SourceError` naming the URL, the line and the series: an HTML page served with
status 200, text that is not UTF-8, malformed CSV, a header row missing or out of order, header
rows of different lengths, an identifier that does not end in its column's series, a series twice,
two series giving the same pair, a bad multiplier, a data row with more or fewer cells than the
header, a date that is not ``YYYY-MM-DD``, the same date twice, a date more than one day ahead of
today, a value that is not a positive number.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext
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

NAME = "fed-h10"
BASE_URL = "https://www.federalreserve.gov/datadownload/Output.aspx"
PACKAGE = "60f32914ab61dfab590e0e470153e3ae"
FIRST_DAY = date(1971, 1, 4)
SCHEDULE = Schedule(
    cron="15 16 * * 1",
    timezone="America/New_York",
    description="weekly on Mondays, in the afternoon New York time, with the week's daily rates",
)
# The currencies of the H.10 release (Venezuela's bolivar is in it too, under a code the
# package's Currency: row decides).
CURRENCIES = tuple(
    """
    AUD BRL CAD CNY DKK EUR HKD INR JPY KRW MYR MXN NZD NOK SGD ZAR LKR SEK CHF TWD THB GBP VES
    """.split()  # noqa: SIM905
)

_NEW_YORK = ZoneInfo("America/New_York")
_NOON = time(12, 0)
_LABELS = (
    "Series Description",
    "Unit:",
    "Multiplier:",
    "Currency:",
    "Unique Identifier:",
    "Time Period",
)
_USD_PER_UNIT = "RXI$US_"
_UNITS_PER_USD = "RXI_"
_MISSING = frozenset({"ND", ""})
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_MULTIPLIER = re.compile(r"[1-9][0-9]{0,17}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FUTURE_TOLERANCE = timedelta(days=1)
_OPTIONS = HTTP_OPTIONS


@attrs.frozen(kw_only=True)
class FedH10Source:
    """The Federal Reserve's H.10 noon buying rates in New York (USD against ~23 currencies)."""

    base_url: str = BASE_URL
    package: str = PACKAGE
    timeout: float = 60.0
    max_attempts: int = 5
    backoff: float = 0.5
    name: str = NAME
    description: str = "Federal Reserve H.10 noon buying rates in New York (USD, ~23 currencies)"
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
        until = _mmddyyyy(window.until) if window.until is not None else ""
        return (
            f"{self.base_url}?rel=H10&series={self.package}&lastobs=&from={_mmddyyyy(since)}"
            f"&to={until}&filetype=csv&label=include&layout=seriescolumn&type=package"
        )

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Ask for ``window``; every quote is parsed before the first is yielded.

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


@attrs.frozen
class _Column:
    """One exchange-rate column: where it is, what pair it quotes, its multiplier."""

    index: int
    series: str
    pair: Pair
    multiplier: Decimal


def parse(
    payload: bytes,
    *,
    label: str = "payload",
    window: FetchWindow | None = None,
    source: str = NAME,
    today: date | None = None,
) -> list[Quote]:
    """The quotes of an H.10 Data Download Program CSV inside ``window``, or a `SourceError`."""
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
    header: dict[str, list[str]] = {}
    for expected in _LABELS:
        line, cells = next(rows, (0, []))
        found = cells[0].strip() if cells else ""
        if found != expected:
            where = f"{label} line {line}" if line else label
            raise SourceError(
                source,
                f"header row {expected!r} expected, found {found!r}: not an H.10 download",
                location=where,
            )
        header[expected] = [cell.strip() for cell in cells]
    columns = _columns(header, label, source)
    width = len(header["Time Period"])
    quotes: list[Quote] = []
    days: set[date] = set()
    for line, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue
        where = f"{label} line {line}"
        if len(cells) != width:
            raise SourceError(
                source, f"{len(cells)} cells for {width} columns (truncated?)", location=where
            )
        day = _day(cells[0].strip(), where, source)
        where = f"{where} {day}"
        if day in days:
            raise SourceError(source, f"{day} appears twice", location=where)
        days.add(day)
        if day > latest_allowed:
            raise SourceError(source, f"{day} is in the future", location=where)
        observed_at = noon_in_new_york(day)
        for column in columns:
            text = cells[column.index].strip()
            if text in _MISSING:
                continue
            rate = _rate(text, column.multiplier, f"{where} {column.series}", source)
            if window.contains(day):
                quotes.append(
                    Quote(
                        pair=column.pair,
                        rate=rate,
                        observed_at=observed_at,
                        source=source,
                        kind=QuoteKind.MID,
                    )
                )
    return quotes


def noon_in_new_york(day: date) -> datetime:
    """12:00 New York time on ``day``, in UTC: when the noon buying rates are taken."""
    return datetime.combine(day, _NOON, tzinfo=_NEW_YORK).astimezone(UTC)


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


def _columns(header: dict[str, list[str]], label: str, source: str) -> list[_Column]:
    """The exchange-rate columns of the header rows (indices left out, see the module docs)."""
    width = len(header["Time Period"])
    for row_label, cells in header.items():
        if len(cells) != width:
            raise SourceError(
                source,
                f"the {row_label!r} row has {len(cells)} cells, the 'Time Period' row {width}",
                location=f"{label} line {_LABELS.index(row_label) + 1}",
            )
    columns: list[_Column] = []
    seen: set[str] = set()
    pairs: set[Pair] = set()
    for index in range(1, width):
        series = header["Time Period"][index]
        where = f"{label} column {series}"
        if not series or series in seen:
            raise SourceError(source, f"series {series!r} is empty or twice", location=where)
        seen.add(series)
        identifier = header["Unique Identifier:"][index]
        if identifier.rsplit("/", 1)[-1] != series:
            raise SourceError(
                source, f"identifier {identifier!r} is not that of {series}", location=where
            )
        if series.startswith(_USD_PER_UNIT):
            usd_per_unit = True
        elif series.startswith(_UNITS_PER_USD):
            usd_per_unit = False
        else:
            continue  # an index (JRXWTF…), not an exchange rate: dropped on purpose
        code = header["Currency:"][index]
        if code not in KNOWN_CODES or code == "USD":
            raise SourceError(
                source, f"Currency: {code!r} is not a known foreign currency", location=where
            )
        pair = Pair.of(code, "USD") if usd_per_unit else Pair.of("USD", code)
        if pair in pairs:
            raise SourceError(source, f"a second series quoting {pair}", location=where)
        pairs.add(pair)
        multiplier = header["Multiplier:"][index]
        if _MULTIPLIER.fullmatch(multiplier) is None:
            raise SourceError(
                source,
                f"Multiplier: {multiplier!r} is not a positive whole number",
                location=where,
            )
        columns.append(_Column(index, series, pair, Decimal(multiplier)))
    return columns


def _day(text: str, where: str, source: str) -> date:
    try:
        if _DAY.fullmatch(text) is None:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise SourceError(source, f"{text!r} is not a day (YYYY-MM-DD)", location=where) from None


def _rate(text: str, multiplier: Decimal, where: str, source: str) -> Decimal:
    if _NUMBER.fullmatch(text) is None:
        raise SourceError(source, f"rate {text!r} is not a number", location=where)
    with localcontext() as exact:
        # Enough digits for the whole product: no rounding to the default 28 digits.
        exact.prec = len(text) + len(str(multiplier)) + 2
        rate = Decimal(text) * multiplier
    if rate <= 0:
        raise SourceError(source, f"rate {text!r} is not a positive number", location=where)
    return rate


def _mmddyyyy(day: date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year:04d}"


@hookimpl
def fxcortex_register_sources(register: Callable[[FedH10Source], None]) -> None:
    """Register the Federal Reserve H.10 source (the all-currency package)."""
    register(FedH10Source())
