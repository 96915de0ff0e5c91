"""A user's own rates from a CSV or Parquet file (source ``file``).

``location`` is the path of the file. Its format is recognised from the bytes: a Parquet file
starts with ``PAR1`` (reading it needs the ``parquet`` extra, pyarrow); anything else is read as
UTF-8 CSV (a byte-order mark is allowed) with a header line, separated by commas (or by semicolons
or tabs when the header has no comma).

Columns, matched by name without regard to case or surrounding spaces, in any order; other columns
are ignored:

- ``observed_at``: ISO 8601. A time with a UTC offset (``2024-01-02T13:15:00+01:00``, ``…Z``) is
  read as written. A time without one (``2024-01-02 13:15``) is read in the ``timezone`` option (an
  IANA name such as ``Europe/Warsaw``). A date alone (``2024-01-02``) is that day at the ``time``
  option (``HH:MM``, default 00:00) in ``timezone``. Without ``timezone`` both are refused rather
  than guessed. In Parquet, a timestamp column with a timezone is exact, a naive one is read in
  ``timezone``, and a date column like a date above. Everything is stored in UTC.
- ``base`` and ``quote`` (ISO 4217 codes, or a crypto code FX-Cortex knows), or ``pair`` instead
  (``EUR/USD``, ``EURUSD`` or ``EUR-USD``). Codes are upper-cased.
- ``rate``: one unit of base in units of quote, a positive number. Text and Parquet decimal or
  integer columns are exact; a Parquet float column is read through its shortest decimal form (what
  ``repr`` prints), which gives back the digits that were written for rates of up to 15
  significant digits.
- ``kind`` (optional): ``mid``, ``bid``, ``ask``, ``buy`` or ``sell``; empty or absent means mid.

Checks, each a `SourceError` naming the file, the line (CSV, counting the header as line 1) or row
(Parquet, counting data rows from 1) and the column: unreadable bytes, a missing column, an unknown
currency code, a rate that is not a positive number, an unknown kind, a time more than a day in the
future, and the same (pair, kind, observed_at) twice. The whole file is parsed before the first
quote is yielded, so a bad line stores nothing. The window is applied to each observation's UTC
date.

The source declares no currencies and no history depth (``history_since`` None): both are
whatever the file holds. ``interval`` (``1d`` by default, or e.g. ``1h``, ``15m``, ``30s``)
declares how far apart the file's observations are, which analytics use to pick bar resolutions.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from fxcortex.core.extras import Extra
from fxcortex.sources.http import looks_like_html

NAME = "file"
OPTIONS = ("location", "timezone", "time", "interval")
PARQUET_MAGIC = b"PAR1"
EXTRA = Extra(distribution="fxcortex-sources", name="parquet", modules=("pyarrow",))
SCHEDULE = Schedule(
    cron="0 0 * * *", timezone="UTC", description="whenever the user updates the file"
)
_FUTURE_TOLERANCE = timedelta(days=1)
_INTERVAL = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}

# A row: where (for messages) and, per column name, the cell's place and value.
_Cell = tuple[str, object]
_Row = tuple[str, Mapping[str, _Cell]]


@attrs.frozen(kw_only=True)
class Reading:
    """How to read the times of a file: the zone of naive values and the time of bare dates."""

    timezone: ZoneInfo | None = None
    day_time: time = time(0, 0)


@attrs.frozen(kw_only=True)
class FileSource:
    """Rates from a local CSV or Parquet file (see the module docstring for the columns)."""

    location: str | None = None
    reading: Reading = Reading()
    name: str = NAME
    description: str = "A user's own rates from a CSV or Parquet file"
    schedule: Schedule = SCHEDULE
    currencies: tuple[str, ...] = ()
    history_since: date | None = None
    observation_interval: timedelta = timedelta(days=1)
    extra: Extra | None = EXTRA
    now: Callable[[], datetime] = attrs.field(default=lambda: datetime.now(UTC), repr=False)

    def configure(self, **options: str) -> Self:
        """A copy with ``location``, ``timezone``, ``time`` (HH:MM) and/or ``interval`` set."""
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise SourceError(
                self.name, f"unknown options {sorted(unknown)}; known: {', '.join(OPTIONS)}"
            )
        changes: dict[str, object] = {}
        if "location" in options:
            changes["location"] = options["location"]
        reading = self.reading
        if "timezone" in options:
            try:
                reading = attrs.evolve(reading, timezone=ZoneInfo(options["timezone"].strip()))
            except (ZoneInfoNotFoundError, ValueError):
                raise SourceError(
                    self.name, f"timezone {options['timezone']!r} is not an IANA timezone"
                ) from None
        if "time" in options:
            try:
                day_time = time.fromisoformat(options["time"].strip())
            except ValueError:
                raise SourceError(
                    self.name, f"time {options['time']!r} is not a time of day (HH:MM)"
                ) from None
            reading = attrs.evolve(reading, day_time=day_time.replace(tzinfo=None))
        changes["reading"] = reading
        if "interval" in options:
            changes["observation_interval"] = _interval(options["interval"], self.name)
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Read the whole file, check every row, then yield the quotes inside ``window``."""
        if self.location is None:
            raise SourceError(self.name, "no file given: set the location option to its path")
        path = Path(self.location).expanduser()
        try:
            payload = path.read_bytes()
        except OSError as error:
            raise SourceError(
                self.name, f"cannot read the file: {error.strerror or error}", location=str(path)
            ) from error
        if payload.startswith(PARQUET_MAGIC) and self.extra is not None:
            self.extra.require(self.name)
        quotes = parse(
            payload,
            label=path.name,
            reading=self.reading,
            source=self.name,
            now=self.now(),
        )
        return iter([quote for quote in quotes if window.contains(quote.observed_at.date())])


def parse(
    payload: bytes,
    *,
    label: str = "payload",
    reading: Reading | None = None,
    source: str = NAME,
    now: datetime | None = None,
) -> list[Quote]:
    """Every quote in a CSV or Parquet payload, or a `SourceError` naming the line and why."""
    reading = reading or Reading()
    latest = (now or datetime.now(UTC)) + _FUTURE_TOLERANCE
    if payload.startswith(PARQUET_MAGIC):
        columns, rows = _parquet_rows(payload, label, source)
    else:
        columns, rows = _csv_rows(payload, label, source)
    return _quotes(columns, rows, label=label, reading=reading, source=source, latest=latest)


def _csv_rows(payload: bytes, label: str, source: str) -> tuple[list[str], Iterator[_Row]]:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SourceError(
            source, f"not UTF-8 text ({error.reason} at byte {error.start})", location=label
        ) from error
    if looks_like_html(payload):
        raise SourceError(
            source,
            "an HTML page, not a CSV file (an error page saved in its place?)",
            location=label,
        )
    if "\x00" in text:
        raise SourceError(source, "not a CSV file: it holds NUL bytes", location=label)
    first_line = text.split("\n", 1)[0]
    delimiter = ","
    if "," not in first_line:
        delimiter = ";" if ";" in first_line else "\t" if "\t" in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as error:
        raise SourceError(source, f"malformed CSV ({error})", location=f"{label} line 1") from error
    if not header or not any(cell.strip() for cell in header):
        raise SourceError(source, "the file is empty: expected a header line", location=label)
    columns = [cell.strip().lower() for cell in header]

    def rows() -> Iterator[_Row]:
        line_number = 1
        try:
            for cells in reader:
                line_number = reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue
                where = f"{label} line {line_number}"
                if len(cells) > len(columns):
                    raise SourceError(
                        source,
                        f"{len(cells)} cells for {len(columns)} columns",
                        location=where,
                    )
                if len(cells) < len(columns):
                    raise SourceError(
                        source,
                        f"{len(cells)} cells for {len(columns)} columns (truncated?)",
                        location=where,
                    )
                yield (
                    where,
                    {
                        column: (f"{where} column {column}", cell.strip())
                        for column, cell in zip(columns, cells, strict=True)
                    },
                )
        except csv.Error as error:
            raise SourceError(
                source, f"malformed CSV ({error})", location=f"{label} line {line_number + 1}"
            ) from error

    return columns, rows()


def _parquet_rows(payload: bytes, label: str, source: str) -> tuple[list[str], Iterator[_Row]]:
    import pyarrow
    import pyarrow.parquet

    try:
        table = pyarrow.parquet.read_table(pyarrow.BufferReader(payload))
    except (pyarrow.ArrowException, OSError, ValueError) as error:
        raise SourceError(
            source, f"not a readable Parquet file ({error})", location=label
        ) from error
    try:
        names = [str(name) for name in table.column_names]
        values = [table.column(index).to_pylist() for index in range(len(names))]
    except Exception as error:  # pyarrow's conversions raise many types (decoding, tz lookups)
        raise SourceError(
            source, f"cannot read the Parquet values ({error})", location=label
        ) from error
    columns = [name.strip().lower() for name in names]

    def rows() -> Iterator[_Row]:
        for index in range(table.num_rows):
            where = f"{label} row {index + 1}"
            yield (
                where,
                {
                    column: (f"{where} column {column}", cells[index])
                    for column, cells in zip(columns, values, strict=True)
                },
            )

    return columns, rows()


def _quotes(
    columns: list[str],
    rows: Iterable[_Row],
    *,
    label: str,
    reading: Reading,
    source: str,
    latest: datetime,
) -> list[Quote]:
    present = set(columns)
    duplicated = sorted({column for column in columns if columns.count(column) > 1 and column})
    if duplicated:
        raise SourceError(
            source, f"columns {duplicated} appear twice in the header", location=label
        )
    missing = [column for column in ("observed_at", "rate") if column not in present]
    by_pair = "pair" in present
    if not by_pair:
        missing += [column for column in ("base", "quote") if column not in present]
    if missing:
        raise SourceError(
            source,
            f"missing columns {missing}: the file needs observed_at, base and quote (or pair), "
            f"rate, and optionally kind; it has {columns}",
            location=label,
        )
    if by_pair and ({"base", "quote"} & present):
        raise SourceError(
            source, "give either a pair column or base and quote columns, not both", location=label
        )
    quotes: list[Quote] = []
    seen: dict[tuple[object, ...], str] = {}
    pairs: dict[tuple[str, str], Pair] = {}
    for where, cells in rows:
        if by_pair:
            pair = _pair_cell(cells["pair"], source, pairs)
        else:
            base = _code(cells["base"], source)
            quote_code = _code(cells["quote"], source)
            if base == quote_code:
                raise SourceError(
                    source, f"base and quote are both {base}", location=cells["quote"][0]
                )
            pair = pairs.get((base, quote_code)) or pairs.setdefault(
                (base, quote_code), Pair.of(base, quote_code)
            )
        observed_at = _observed_at(cells["observed_at"], reading, source)
        if observed_at > latest:
            raise SourceError(
                source,
                f"{observed_at.isoformat()} is in the future",
                location=cells["observed_at"][0],
            )
        rate = _rate(cells["rate"], source)
        kind = _kind(cells["kind"], source) if "kind" in cells else QuoteKind.MID
        key = (pair, kind, observed_at)
        if key in seen:
            raise SourceError(
                source,
                f"{pair} {kind} at {observed_at.isoformat()} appears twice (first at {seen[key]})",
                location=where,
            )
        seen[key] = where
        quotes.append(
            Quote(pair=pair, rate=rate, observed_at=observed_at, source=source, kind=kind)
        )
    if not quotes:
        raise SourceError(source, "no data rows after the header", location=label)
    return quotes


def _text(cell: _Cell, what: str, source: str) -> str:
    where, value = cell
    if value is None:
        raise SourceError(source, f"{what} is empty", location=where)
    if not isinstance(value, str):
        raise SourceError(
            source, f"{what} must be text, got {type(value).__name__} {value!r}", location=where
        )
    text = value.strip()
    if not text:
        raise SourceError(source, f"{what} is empty", location=where)
    return text


def _code(cell: _Cell, source: str) -> str:
    code = _text(cell, "the currency code", source).upper()
    if code not in KNOWN_CODES:
        raise SourceError(source, f"unknown currency code {code!r}", location=cell[0])
    return code


def _pair_cell(cell: _Cell, source: str, pairs: dict[tuple[str, str], Pair]) -> Pair:
    text = _text(cell, "the pair", source).upper()
    cleaned = text.replace("-", "/").replace("_", "/")
    if "/" in cleaned:
        base, _, quote = cleaned.partition("/")
    elif len(cleaned) == 6:
        base, quote = cleaned[:3], cleaned[3:]
    else:
        raise SourceError(
            source, f"pair {text!r} is not BASE/QUOTE (EUR/USD or EURUSD)", location=cell[0]
        )
    base, quote = base.strip(), quote.strip()
    for code in (base, quote):
        if code not in KNOWN_CODES:
            raise SourceError(
                source, f"unknown currency code {code!r} in pair {text!r}", location=cell[0]
            )
    if base == quote:
        raise SourceError(source, f"pair {text!r} has the same code twice", location=cell[0])
    return pairs.get((base, quote)) or pairs.setdefault((base, quote), Pair.of(base, quote))


def _observed_at(cell: _Cell, reading: Reading, source: str) -> datetime:
    where, value = cell
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return _at_day_time(value, reading, where, source)
    else:
        text = _text(cell, "observed_at", source)
        try:
            if len(text) == 10 and text[4:5] == "-" and text[7:8] == "-":
                return _at_day_time(date.fromisoformat(text), reading, where, source)
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise SourceError(
                source, f"observed_at {text!r} is not an ISO 8601 date or time", location=where
            ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        if reading.timezone is None:
            raise SourceError(
                source,
                f"observed_at {moment.isoformat()} has no UTC offset: add one "
                "(…+01:00, …Z) or set the timezone option",
                location=where,
            )
        moment = moment.replace(tzinfo=reading.timezone)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise SourceError(
            source, f"observed_at {moment.isoformat()} is out of range", location=where
        ) from None


def _at_day_time(day: date, reading: Reading, where: str, source: str) -> datetime:
    if reading.timezone is None:
        raise SourceError(
            source,
            f"observed_at {day.isoformat()} is a date: set the timezone option (and time, "
            "default 00:00) to say which instant it means",
            location=where,
        )
    try:
        return datetime.combine(day, reading.day_time, tzinfo=reading.timezone).astimezone(UTC)
    except OverflowError:
        raise SourceError(
            source, f"observed_at {day.isoformat()} is out of range", location=where
        ) from None


def _rate(cell: _Cell, source: str) -> Decimal:
    where, value = cell
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        if isinstance(value, Decimal):
            rate = value
        elif isinstance(value, int):
            rate = Decimal(value)
        elif isinstance(value, float):
            rate = Decimal(repr(value))  # the shortest decimal form: the digits that were written
        else:
            rate = Decimal(_text(cell, "the rate", source))
    except InvalidOperation:
        raise SourceError(source, f"rate {value!r} is not a number", location=where) from None
    if not rate.is_finite() or rate <= 0:
        raise SourceError(source, f"rate {value!r} is not a positive number", location=where)
    return rate


def _kind(cell: _Cell, source: str) -> QuoteKind:
    where, value = cell
    if value is None or (isinstance(value, str) and not value.strip()):
        return QuoteKind.MID
    text = _text(cell, "the kind", source).lower()
    try:
        return QuoteKind(text)
    except ValueError:
        known = ", ".join(kind.value for kind in QuoteKind)
        raise SourceError(source, f"kind {text!r} is not one of {known}", location=where) from None


def _interval(text: str, source: str) -> timedelta:
    match = _INTERVAL.match(text.lower())
    if not match or int(match.group(1)) == 0:
        raise SourceError(
            source, f"interval {text!r} is not a positive duration such as 1d, 1h, 15m or 30s"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@hookimpl
def fxcortex_register_sources(register: Callable[[FileSource], None]) -> None:
    """Register the file import source (set ``location`` to use it)."""
    register(FileSource())
