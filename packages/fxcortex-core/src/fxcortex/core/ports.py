"""The ports: what the runtime asks of sources, transforms and analyzers, and of its stores.

Sources, transforms and analyzers are plugins; the stores are adapters the runtime picks by profile
(embedded: SQLite, an in-process cache, chDB; distributed: PostgreSQL, Redis, Kafka, ClickHouse).
None of them knows which profile runs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any, Protocol, Self, runtime_checkable

import attrs

from fxcortex.core.models import FetchWindow, Quote, RateChange, Schedule
from fxcortex.core.tables import TableSpec, TableWrite


@attrs.define
class FetchContext:
    """What the runtime lends a source for one fetch.

    ``cache`` holds per-source metadata between fetches (HTTP validators such as ETag and
    Last-Modified). A source never writes it directly: it stages updates with `remember`, and the
    runtime commits them only after the fetch's quotes are stored, so an unchanged-looking
    publication can never hide data that a failed load lost.
    """

    cache: Cache | None = None
    staged: dict[str, bytes] = attrs.Factory(dict)
    http_transport: Any = None
    """An httpx transport to use instead of the network: tests replay recorded responses."""

    def recall(self, key: str) -> bytes | None:
        """A value remembered by an earlier, successful fetch (or staged by this one)."""
        if key in self.staged:
            return self.staged[key]
        if self.cache is None:
            return None
        return self.cache.get_many([key]).get(key)

    def remember(self, key: str, value: bytes) -> None:
        """Stage a value, committed with the fetch's load."""
        self.staged[key] = value


@runtime_checkable
class Source(Protocol):
    """Fetches quotes from one publisher.

    ``schedule`` says when it publishes (cron in the publisher's timezone); ``currencies`` the codes
    it quotes (empty when it varies); ``history_since`` the first day a backfill can ask for (None
    when it has no history); ``observation_interval`` how far apart its observations usually are
    (one day for a daily fix, a second or less for ticks) — analytics use it to pick resolutions
    and annualise. A source needing optional packages may also carry ``extra``
    (`fxcortex.core.extras.Extra`).

    Optional: ``max_window_days`` (int), the most days one fetch may cover, when the publisher
    limits a request's range (NBP: 93). ``fxcortex backfill`` then loads history in windows of that
    size, one transaction and one ledger entry each, so an interrupted backfill resumes after the
    last finished window; without it a backfill takes a year per window (the source still splits
    a window into as many requests as its publisher needs).
    """

    name: str
    description: str
    schedule: Schedule
    currencies: tuple[str, ...]
    history_since: date | None
    observation_interval: timedelta

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterable[Quote]:
        """Yield the quotes published inside ``window``; raise `SourceError` on any failure.

        Parse everything before yielding anything, so a malformed payload fails before the first
        quote reaches the store. Yield nothing when the publisher says nothing changed (HTTP 304).
        """
        ...

    def configure(self, **options: str) -> Self:
        """A copy with these options set (e.g. ``location``); unknown ones raise `SourceError`."""
        ...


@runtime_checkable
class Transform(Protocol):
    """Rewrites the quotes of a fetch before they are loaded (filter, rescale, re-base …)."""

    name: str
    description: str

    def apply(self, quotes: Sequence[Quote]) -> Sequence[Quote]:
        """Return the quotes to load in place of ``quotes``."""
        ...


class AnalyzerState(Protocol):
    """An analyzer's own key-value state, committed together with the feed position it reflects."""

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored values of those keys that have one."""
        ...

    def put(self, key: str, value: bytes) -> None:
        """Set a key; visible to later reads, stored for good when the batch commits."""
        ...

    def delete(self, key: str) -> None:
        """Forget a key when the batch commits."""
        ...


@runtime_checkable
class AnalyzerContext(Protocol):
    """What the runtime gives an analyzer along with each batch."""

    @property
    def state(self) -> AnalyzerState:
        """This analyzer's state."""
        ...

    def observation_interval(self, source: str) -> timedelta | None:
        """The declared observation interval of a source, None when no such source is installed."""
        ...


@runtime_checkable
class Analyzer(Protocol):
    """Turns batches of rate changes into rows of its tables.

    Contract: for any split of a change stream into batches, re-deliveries included, the rows
    written equal those computed once from the final set of observations.

    Optional: ``combines_pairs = True`` (a class attribute) for an analyzer whose rows combine
    several pairs. The Kafka feed gives one consumer a pair's changes, not every pair's, so it
    warns when such an analyzer runs on a consumer that holds only some of the partitions.
    """

    # Read-only members: a frozen attrs class or plain class attributes both satisfy them.
    @property
    def name(self) -> str:
        """The analyzer's registered name (also its state's namespace)."""
        ...

    @property
    def description(self) -> str:
        """One line on what it computes."""
        ...

    @property
    def tables(self) -> Sequence[TableSpec]:
        """The tables it writes."""
        ...

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """Apply a batch (ordered by position) and return the rows it changes."""
        ...


@attrs.frozen(kw_only=True)
class LoadResult:
    """What loading one fetch did to the rate store."""

    received: int
    inserted: int
    revised: int

    @property
    def unchanged(self) -> int:
        """Quotes that were already stored with the same rate."""
        return self.received - self.inserted - self.revised


@runtime_checkable
class RateStore(Protocol):
    """Holds every quote once, by natural key (source, base, quote, kind, observed_at)."""

    def upsert(self, quotes: Sequence[Quote]) -> LoadResult:
        """Insert new quotes and revise changed ones in one transaction; all or nothing."""
        ...

    def delete(self, quotes: Sequence[Quote]) -> int:
        """Delete the rows with these quotes' keys in one transaction; returns how many existed."""
        ...

    def count(self) -> int:
        """How many quotes are stored."""
        ...

    def quotes(self, *, source: str | None = None) -> Iterable[Quote]:
        """Every stored quote (of one source), in key order."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class ChangeFeed(Protocol):
    """Delivers the rate store's row changes in position order, at least once.

    Optional: ``rewind()``, forget what was polled but not committed, so the next poll starts
    again after the committed position; the analyzer calls it when a batch fails, so a caller
    that goes on in the same process (a retry) does not skip the failed batch.
    """

    def poll(self, max_changes: int) -> Sequence[RateChange]:
        """The next changes after the last committed position (empty when caught up)."""
        ...

    def commit(self, position: int) -> None:
        """Record that every change up to ``position`` is fully applied."""
        ...

    def pending(self) -> int:
        """How many changes wait after the committed position (for progress reports)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@runtime_checkable
class Cache(Protocol):
    """Small keyed state: ETL metadata (watermarks, validators), locks, analyzer state."""

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored values of those keys that have one."""
        ...

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Set and delete keys atomically: all of it is visible afterwards, or none."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@attrs.frozen(kw_only=True)
class QueryResult:
    """Rows of an analytics query, with their column names."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


@runtime_checkable
class AnalyticsStore(Protocol):
    """The ClickHouse side: analytics tables, idempotent writes, and SQL."""

    def ensure_tables(self, specs: Sequence[TableSpec]) -> None:
        """Create whatever tables (and their current-state views) do not exist yet."""
        ...

    def write(self, writes: Sequence[TableWrite]) -> None:
        """Store rows; writing the same rows and versions twice changes nothing."""
        ...

    def query(self, sql: str) -> QueryResult:
        """Run SQL and return its rows."""
        ...

    def close(self) -> None:
        """Release the engine or connection."""
        ...
