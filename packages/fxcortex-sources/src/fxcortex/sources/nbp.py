"""Narodowy Bank Polski exchange-rate tables A, B and C (sources ``nbp-a``, ``nbp-b``, ``nbp-c``).

Endpoint (no key): ``https://api.nbp.pl/api/exchangerates/tables/{T}/{start}/{end}/?format=json``.
One query may cover at most 93 days, so a window is cut into 93-day chunks (`split_window`),
fetched one after the other; every chunk is parsed before the first quote is yielded, so one bad
chunk fails the whole fetch. An open start means 2002-01-02, the first day the API serves; an open
end, or one past today (in Warsaw), means today. For a range without any table (a weekend, a
holiday, a week without a Wednesday table B) the API answers 404, which here means "no tables":
that chunk yields nothing. Any other HTTP error is a `SourceError`.

Three sources, one per table, rather than one source with a ``table`` option: the tables differ in
schedule (B is weekly), observation interval, currencies and kind of rate, and a source's name is
part of every stored quote's key, so one name should mean one series family.

- ``nbp-a``: table A, average rates of about 32 currencies, every working day. Kind ``mid``.
- ``nbp-b``: table B, average rates of about 116 less-traded currencies, Wednesdays. Kind ``mid``.
- ``nbp-c``: table C, the bank's buying (``bid``) and selling (``ask``) rates of about 13
  currencies, every working day: two quotes per currency and day, kinds ``bid`` and ``ask``.

Format: a JSON list of tables ``{"table": "A", "no": "041/A/NBP/2026", "effectiveDate":
"2026-03-02", "rates": [{"currency": "dolar amerykański", "code": "USD", "mid": 3.6056}, …]}``;
table C adds ``"tradingDate"`` and has ``bid``/``ask`` in place of ``mid``. Rates are JSON numbers,
read as `Decimal` straight from their text (``2.8e-06`` stays exactly 0.0000028), never as float.

Units and direction: the API gives each rate per one unit of the foreign currency (the printed
tables' "przelicznik" of 100 for HUF, JPY … is already divided out), in złoty. USD ``mid`` 3.6056
is PLN 3.6056 per USD 1, so the quote is ``USD/PLN`` 3.6056.

Time: ``observed_at`` is the table's publication on its ``effectiveDate``, in Warsaw time (CET or
CEST as the day falls) converted to UTC: tables A and B at 12:15 (NBP publishes them between about
11:45 and 12:15), table C at 08:15 (it is published between about 07:45 and 08:15 and is valid
that day; its ``tradingDate`` is the previous working day). The window is applied to
``effectiveDate``.

Checks, each a `SourceError` naming the URL, the table (its index and number) and the currency: a
table of another letter than asked for, a missing or malformed ``effectiveDate``, ``rates`` or
``code``, a code that is not a known currency (or is PLN), a rate that is not a positive number,
a bid above the ask, the same currency twice in a table, a key twice in one JSON object, two
tables on one day, a day more than
one day ahead of today, and an HTML page served with status 200.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
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
from fxcortex.sources.http import HttpFetcher, looks_like_html, split_window
from fxcortex.sources.options import HTTP_OPTIONS, http_options

BASE_URL = "https://api.nbp.pl/api"
FIRST_DAY = date(2002, 1, 2)
MAX_DAYS = 93
TABLES = ("A", "B", "C")

_WARSAW = ZoneInfo("Europe/Warsaw")
_FUTURE_TOLERANCE = timedelta(days=1)
_OPTIONS = HTTP_OPTIONS


@attrs.frozen(kw_only=True)
class TableSpec:
    """What differs between the tables: when they are out, how often, what they quote."""

    letter: str
    description: str
    published: time
    schedule: Schedule
    currencies: tuple[str, ...]
    observation_interval: timedelta
    kinds: tuple[QuoteKind, ...]


TABLE_SPECS = {
    "A": TableSpec(
        letter="A",
        description="NBP table A: average złoty rates of about 32 currencies (PLN quote, 2002–)",
        published=time(12, 15),
        schedule=Schedule(
            cron="15 12 * * 1-5",
            timezone="Europe/Warsaw",
            description="every Polish working day, published between 11:45 and 12:15 Warsaw time",
        ),
        currencies=tuple(
            """
            THB USD AUD HKD CAD NZD SGD EUR HUF CHF GBP UAH JPY CZK DKK ISK NOK SEK RON TRY ILS
            CLP PHP MXN ZAR BRL MYR IDR INR KRW CNY XDR
            """.split()  # noqa: SIM905
        ),
        observation_interval=timedelta(days=1),
        kinds=(QuoteKind.MID,),
    ),
    "B": TableSpec(
        letter="B",
        description="NBP table B: weekly average złoty rates of about 116 other currencies",
        published=time(12, 15),
        schedule=Schedule(
            cron="15 12 * * 3",
            timezone="Europe/Warsaw",
            description="Wednesdays, published between 11:45 and 12:15 Warsaw time",
        ),
        currencies=(),  # about 116, and the list changes as currencies come and go
        observation_interval=timedelta(days=7),
        kinds=(QuoteKind.MID,),
    ),
    "C": TableSpec(
        letter="C",
        description="NBP table C: buying (bid) and selling (ask) złoty rates of 13 currencies",
        published=time(8, 15),
        schedule=Schedule(
            cron="15 8 * * 1-5",
            timezone="Europe/Warsaw",
            description="every Polish working day, published between 07:45 and 08:15 Warsaw time",
        ),
        currencies=tuple("USD AUD CAD EUR HUF CHF GBP JPY CZK DKK NOK SEK XDR".split()),  # noqa: SIM905
        observation_interval=timedelta(days=1),
        kinds=(QuoteKind.BID, QuoteKind.ASK),
    ),
}


@attrs.frozen(kw_only=True)
class NbpSource:
    """One NBP exchange-rate table (``table`` A, B or C); build one with `NbpSource.of`."""

    table: str = "A"
    base_url: str = BASE_URL
    timeout: float = 30.0
    max_attempts: int = 5
    backoff: float = 0.5
    name: str = "nbp-a"
    description: str = TABLE_SPECS["A"].description
    schedule: Schedule = TABLE_SPECS["A"].schedule
    currencies: tuple[str, ...] = TABLE_SPECS["A"].currencies
    history_since: date | None = FIRST_DAY
    observation_interval: timedelta = timedelta(days=1)
    max_window_days: int = MAX_DAYS
    """NBP answers at most 93 days per query: a backfill loads one query per transaction."""

    @classmethod
    def of(cls, table: str) -> NbpSource:
        """The source of one table, named ``nbp-<letter>``, with that table's schedule."""
        spec = TABLE_SPECS[table]
        return cls(
            table=table,
            name=f"nbp-{table.lower()}",
            description=spec.description,
            schedule=spec.schedule,
            currencies=spec.currencies,
            observation_interval=spec.observation_interval,
        )

    def configure(self, **options: str) -> Self:
        """A copy with ``timeout`` (seconds), ``max_attempts`` (at least 1) or ``backoff`` set."""
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise SourceError(
                self.name,
                f"unknown options {sorted(unknown)}; known: {', '.join(_OPTIONS)} "
                "(each table is its own source: nbp-a, nbp-b, nbp-c)",
            )
        changes: dict[str, object] = {}
        changes.update(http_options(self.name, options))
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def url(self, chunk: FetchWindow) -> str:
        """The URL of one closed chunk of at most 93 days."""
        assert chunk.since is not None and chunk.until is not None
        return (
            f"{self.base_url.rstrip('/')}/exchangerates/tables/{self.table}/"
            f"{chunk.since.isoformat()}/{chunk.until.isoformat()}/?format=json"
        )

    def chunks(self, window: FetchWindow, today: date | None = None) -> list[FetchWindow]:
        """The 93-day queries that cover ``window``, from 2002-01-02 at most up to today."""
        today = today or datetime.now(_WARSAW).date()
        start = max(window.since or FIRST_DAY, FIRST_DAY)
        end = min(window.until or today, today)
        if start > end:
            return []
        return split_window(FetchWindow(since=start, until=end), MAX_DAYS, earliest=FIRST_DAY)

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Fetch every chunk of ``window`` and parse them all before yielding the first quote.

        A chunk the API has no table for (HTTP 404) or that is unchanged (HTTP 304) adds nothing.
        """
        quotes: list[Quote] = []
        with HttpFetcher.for_source(
            self.name,
            context,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff,
        ) as fetcher:
            for chunk in self.chunks(window):
                url = self.url(chunk)
                try:
                    answer = fetcher.get(url)
                except SourceError as error:
                    # NBP's "Not Found - Brak danych": no table in the range. The fetcher
                    # keeps no status code on its error, so its reason is what tells.
                    if error.reason.startswith("HTTP 404"):
                        continue
                    raise
                if answer is not None:
                    quotes += parse(
                        answer.content, table=self.table, label=url, window=window, source=self.name
                    )
        return iter(quotes)


def parse(
    payload: bytes,
    *,
    table: str,
    label: str = "payload",
    window: FetchWindow | None = None,
    source: str | None = None,
    today: date | None = None,
) -> list[Quote]:
    """The quotes of an NBP ``tables`` JSON payload of ``table`` inside ``window``."""
    spec = TABLE_SPECS[table]
    source = source or f"nbp-{table.lower()}"
    window = window or FetchWindow()
    latest_allowed = (today or datetime.now(UTC).date()) + _FUTURE_TOLERANCE
    tables = _json(payload, label, source)
    if not isinstance(tables, list):
        raise SourceError(source, "not a list of tables", location=label)
    quotes: list[Quote] = []
    days: set[date] = set()
    for index, document in enumerate(tables):
        where = f"{label} [{index}]"
        if not isinstance(document, dict):
            raise SourceError(source, "a table is not an object", location=where)
        number = document.get("no")
        if isinstance(number, str):
            where = f"{where} table {number}"
        letter = document.get("table")
        if letter != table:
            raise SourceError(
                source, f"table {letter!r} where table {table!r} was asked for", location=where
            )
        day = _day(document.get("effectiveDate"), where, source)
        if day in days:
            raise SourceError(source, f"two tables on {day}", location=where)
        days.add(day)
        if day > latest_allowed:
            raise SourceError(source, f"effectiveDate {day} is in the future", location=where)
        rates = document.get("rates")
        if not isinstance(rates, list):
            raise SourceError(source, "no 'rates' list", location=where)
        table_quotes = _table_quotes(rates, spec, publication_time(table, day), where, source)
        if window.contains(day):
            quotes += table_quotes
    return quotes


def publication_time(table: str, day: date) -> datetime:
    """When NBP's table ``table`` for ``day`` is out, in UTC."""
    published = TABLE_SPECS[table].published
    return datetime.combine(day, published, tzinfo=_WARSAW).astimezone(UTC)


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
            source, f"effectiveDate is missing or not text ({value!r})", location=where
        )
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SourceError(
            source, f"effectiveDate {value!r} is not a date", location=where
        ) from None


def _table_quotes(
    rates: list[Any], spec: TableSpec, observed_at: datetime, where: str, source: str
) -> list[Quote]:
    quotes: list[Quote] = []
    codes: set[str] = set()
    for index, entry in enumerate(rates):
        entry_where = f"{where} rates[{index}]"
        if not isinstance(entry, dict):
            raise SourceError(source, "a rate is not an object", location=entry_where)
        code = entry.get("code")
        if not isinstance(code, str) or code not in KNOWN_CODES:
            raise SourceError(source, f"unknown currency code {code!r}", location=entry_where)
        entry_where = f"{where} {code}"
        if code == "PLN":
            raise SourceError(source, "PLN quoted in złoty", location=entry_where)
        if code in codes:
            raise SourceError(source, f"{code} appears twice in the table", location=entry_where)
        codes.add(code)
        pair = Pair.of(code, "PLN")
        values = {kind: _rate(entry, kind.value, entry_where, source) for kind in spec.kinds}
        if QuoteKind.BID in values and values[QuoteKind.BID] > values[QuoteKind.ASK]:
            raise SourceError(
                source,
                f"bid {values[QuoteKind.BID]} is above ask {values[QuoteKind.ASK]}",
                location=entry_where,
            )
        quotes += (
            Quote(pair=pair, rate=rate, observed_at=observed_at, source=source, kind=kind)
            for kind, rate in values.items()
        )
    return quotes


def _rate(entry: dict[str, Any], field: str, where: str, source: str) -> Decimal:
    if field not in entry:
        raise SourceError(source, f"no {field!r} rate", location=where)
    value = entry[field]
    if not isinstance(value, Decimal):
        raise SourceError(source, f"{field} {value!r} is not a number", location=where)
    if not value.is_finite() or value <= 0:
        raise SourceError(source, f"{field} {value} is not a positive number", location=where)
    return value


@hookimpl
def fxcortex_register_sources(register: Callable[[NbpSource], None]) -> None:
    """Register one source per NBP table: ``nbp-a``, ``nbp-b`` and ``nbp-c``."""
    for table in TABLES:
        register(NbpSource.of(table))
