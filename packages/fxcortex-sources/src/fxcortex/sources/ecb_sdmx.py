"""ECB euro reference rates from the SDMX data API (source ``ecb-sdmx``).

Endpoint (no key): ``https://data-api.ecb.europa.eu/service/data/EXR/D.{codes}.EUR.SP00.A``
with ``format=csvdata``, ``startPeriod`` (the window's first day, else 1999-01-04, the first fix)
and ``endPeriod`` (the window's last day; left out for an open window). ``{codes}`` is empty for
every currency (``D..EUR.SP00.A``) or the ``symbols`` option joined with ``+``
(``D.USD+GBP.EUR.SP00.A``). The key reads: daily (``D``), the currency, against the euro
(``EUR``), the foreign-exchange reference rate (``SP00``), average (``A``).

Format: CSV with a header line, one observation per row. The API has served both the full header
(``KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE,OBS_STATUS,…,
UNIT_MULT``, titles quoted because they hold commas) and a short one
(``FREQ,CURRENCY,TIME_PERIOD,OBS_VALUE``), so columns are found by name, in any order:

- ``CURRENCY``, ``TIME_PERIOD`` (``YYYY-MM-DD``) and ``OBS_VALUE`` are required;
- ``CURRENCY_DENOM`` (must be ``EUR``), ``FREQ`` (``D``), ``EXR_TYPE`` (``SP00``) and
  ``EXR_SUFFIX`` (``A``) are checked when present, so a URL that asked for another series fails
  instead of storing it under the wrong meaning;
- ``UNIT_MULT`` (a power of ten, 0 for these series) scales the value when present:
  rate = ``OBS_VALUE`` × 10^``UNIT_MULT``;
- other columns are ignored.

Units and direction: ``OBS_VALUE`` units of ``CURRENCY`` per one euro, so every quote is
``EUR/<CURRENCY>`` of kind ``mid``, rate = ``OBS_VALUE`` (a Decimal read from the text).

Quirks: a period without observations (a weekend, a TARGET holiday) has been answered both with an
empty body and status 200, read here as no quotes, and with HTTP 404 ("No results found."), which
stays a `SourceError`: the shared fetcher does not pass the 404 body on, so it cannot be told from
a wrong URL, and a misconfigured source must not look like a quiet one. An empty, ``NaN`` or
``N/A`` value (a suspended currency, a holiday) is skipped. A row
whose every cell is empty (one closes a recorded response) is skipped like a blank line. The same
currency twice on one day, an unknown currency code, a day more than one day ahead of today, a
value that is not a positive number, a row with more or fewer cells than the header: each is a
`SourceError` naming the URL, the line and the column. An HTML page served with status 200 is
refused as such.

Time: the rates are set at the ECB's 14:15 Frankfurt-time concertation; that instant in UTC is
``observed_at``, exactly as for the ``ecb`` (reference-rate files) source, so the two sources'
observations of one fix share an instant. They are published around 16:00 Frankfurt time, the
schedule here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, DecimalException, InvalidOperation
from typing import Self

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
from fxcortex.sources.ecb import CURRENCIES, concertation_time
from fxcortex.sources.http import HttpFetcher, looks_like_html
from fxcortex.sources.options import HTTP_OPTIONS, http_options, reject_unknown

NAME = "ecb-sdmx"
BASE_URL = "https://data-api.ecb.europa.eu/service"
FIRST_DAY = date(1999, 1, 4)
SCHEDULE = Schedule(
    cron="0 16 * * 1-5",
    timezone="Europe/Berlin",
    description="every TARGET working day, published around 16:00 Frankfurt time",
)

_MISSING = frozenset({"", "NaN", "N/A"})
_REQUIRED = ("CURRENCY", "TIME_PERIOD", "OBS_VALUE")
# Dimensions of the key we ask for: when a column is present it must hold this value.
_EXPECTED = {"FREQ": "D", "CURRENCY_DENOM": "EUR", "EXR_TYPE": "SP00", "EXR_SUFFIX": "A"}
# A fix can be dated tomorrow in UTC terms for a moment after midnight in Asia; more is an error.
_FUTURE_TOLERANCE = timedelta(days=1)
_OPTIONS = ("symbols", *HTTP_OPTIONS)


@attrs.frozen(kw_only=True)
class EcbSdmxSource:
    """ECB reference rates (EUR base, mid) from the SDMX data API's EXR dataset, as CSV."""

    base_url: str = BASE_URL
    symbols: tuple[str, ...] = ()
    timeout: float = 60.0
    max_attempts: int = 5
    backoff: float = 0.5
    name: str = NAME
    description: str = "ECB euro reference rates from the SDMX data API (EXR, EUR base, 1999–)"
    schedule: Schedule = SCHEDULE
    currencies: tuple[str, ...] = CURRENCIES
    history_since: date | None = FIRST_DAY
    observation_interval: timedelta = timedelta(days=1)

    def configure(self, **options: str) -> Self:
        """A copy with options set.

        ``symbols`` (comma-separated codes, e.g. ``USD,GBP``; empty for all), ``timeout``
        (seconds), ``max_attempts`` (HTTP attempts, at least 1), ``backoff`` (the first retry's
        ceiling in seconds; 0 retries at once).
        """
        reject_unknown(self.name, options, _OPTIONS)
        changes: dict[str, object] = {}
        if "symbols" in options:
            symbols = _symbols(options["symbols"], self.name)
            changes["symbols"] = symbols
            changes["currencies"] = symbols or CURRENCIES
        changes.update(http_options(self.name, options))
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def url(self, window: FetchWindow) -> str:
        """The request URL for ``window`` (query included)."""
        key = "D." + "+".join(self.symbols) + ".EUR.SP00.A"
        query = f"format=csvdata&startPeriod={(window.since or FIRST_DAY).isoformat()}"
        if window.until is not None:
            query += f"&endPeriod={window.until.isoformat()}"
        return f"{self.base_url.rstrip('/')}/data/EXR/{key}?{query}"

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Ask the API for ``window`` and yield its quotes, all parsed before the first is yielded.

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
    """The quotes of an EXR ``csvdata`` payload inside ``window``, or a `SourceError`."""
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
    if not text.strip():
        return []  # how the API has answered a period without observations (a holiday)
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
                source,
                f"{len(cells)} cells for {len(header)} columns (truncated?)",
                location=where,
            )
        values = {name: cells[index].strip() for name, index in columns.items()}
        for name, expected in _EXPECTED.items():
            if name in values and values[name] != expected:
                raise SourceError(
                    source,
                    f"{name} is {values[name]!r}, expected {expected!r}: not a daily euro "
                    "reference rate",
                    location=f"{where} column {name}",
                )
        code = values["CURRENCY"]
        if code not in KNOWN_CODES:
            raise SourceError(
                source, f"unknown currency code {code!r}", location=f"{where} column CURRENCY"
            )
        if code == "EUR":
            raise SourceError(
                source,
                "EUR quoted against itself (every rate is per euro)",
                location=f"{where} column CURRENCY",
            )
        day = _day(values["TIME_PERIOD"], f"{where} column TIME_PERIOD", source)
        if (code, day) in seen:
            raise SourceError(source, f"{code} on {day} appears twice", location=where)
        seen.add((code, day))
        if day > latest_allowed:
            raise SourceError(
                source, f"{day} is in the future", location=f"{where} column TIME_PERIOD"
            )
        if values["OBS_VALUE"] in _MISSING or not window.contains(day):
            continue
        rate = _rate(values, where, source)
        pair = pairs.get(code) or pairs.setdefault(code, Pair.of("EUR", code))
        quotes.append(
            Quote(
                pair=pair,
                rate=rate,
                observed_at=concertation_time(day),
                source=source,
                kind=QuoteKind.MID,
            )
        )
    return quotes


def _rows(text: str, label: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """The CSV rows, each with the line it starts on; a malformed line is a `SourceError`."""
    # newline="" lets the csv module, not the text layer, decide what ends a line.
    # strict: a body cut inside a quoted title is an error, not a cell running to the end.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        line = reader.line_num + 1  # a quoted cell may span lines: line_num counts them
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
            f"the header lacks {', '.join(missing)}: not an SDMX csvdata payload",
            location=where,
        )
    wanted = (*_REQUIRED, *_EXPECTED, "UNIT_MULT")
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in wanted:
            if name in columns:
                raise SourceError(source, f"column {name} appears twice", location=where)
            columns[name] = index
    return columns


def _day(text: str, where: str, source: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SourceError(source, f"{text!r} is not a day (YYYY-MM-DD)", location=where) from None


def _rate(values: dict[str, str], where: str, source: str) -> Decimal:
    text = values["OBS_VALUE"]
    try:
        rate = Decimal(text)
    except InvalidOperation:
        raise SourceError(
            source, f"rate {text!r} is not a number", location=f"{where} column OBS_VALUE"
        ) from None
    if not rate.is_finite() or rate <= 0:
        raise SourceError(
            source, f"rate {text!r} is not a positive number", location=f"{where} column OBS_VALUE"
        )
    multiplier = values.get("UNIT_MULT", "")
    if multiplier:
        if not multiplier.lstrip("-").isdigit() or abs(int(multiplier)) > 18:
            raise SourceError(
                source,
                f"unit multiplier {multiplier!r} is not a power of ten",
                location=f"{where} column UNIT_MULT",
            )
        try:
            rate = rate.scaleb(int(multiplier))
        except DecimalException:
            raise SourceError(
                source, f"rate {text!r} ×10^{multiplier} is out of range", location=where
            ) from None
    return rate


def _symbols(text: str, source: str) -> tuple[str, ...]:
    codes = tuple(
        code
        for code in (part.strip().upper() for part in text.replace("+", ",").split(","))
        if code
    )
    for code in codes:
        if code not in KNOWN_CODES or code == "EUR":
            raise SourceError(source, f"symbols: {code!r} is not a currency the ECB quotes")
    return codes


@hookimpl
def fxcortex_register_sources(register: Callable[[EcbSdmxSource], None]) -> None:
    """Register the ECB SDMX source (every reference-rate currency)."""
    register(EcbSdmxSource())
