"""The distributed profile's rate store: PostgreSQL through psycopg 3.

Rates live in ``fxcortex.rates``, keyed by (source, base, quote, kind, observed_at), the rate an
exact ``numeric`` stored with trailing zeros trimmed (1.10 is kept as 1.1, as the SQLite store
does), ``observed_at`` a ``timestamptz``. The table has ``REPLICA IDENTITY FULL`` so a change
event of an update carries the row's before image, and the publication `PUBLICATION` that
Debezium reads (pgoutput).

A load takes a transaction-scoped advisory lock per source it touches (loads of one source
queue, loads of different sources run side by side). When no stored row of those sources lies in
the time span of the load (a first load, a backfill, a new day), every quote is new and is COPYed
(binary) straight into the table. Otherwise the quotes are COPYed into a session's staging table
and merged with two statements::

    UPDATE rates SET rate = staged rate  WHERE the key is staged and the rate differs
    INSERT INTO rates SELECT … FROM staging  WHERE NOT EXISTS (the same key)

so a new quote is one INSERT, a revised one is one UPDATE, and an unchanged one is not touched at
all: not updated, not even locked, hence no WAL record and no change event. One transaction per
load: a failing load stores nothing of itself.

A large load into an empty table (the first backfill of a new installation) drops the natural
key, COPYs the rows and adds the key back, all in its transaction: PostgreSQL builds the index
once from sorted rows instead of inserting a million entries one by one, which is most of the
cost of a load (a million quotes: about 1.8 s indexed row by row, 0.7 s unindexed plus 0.4 s to
build the index). It needs the table to itself (``ACCESS EXCLUSIVE``), asked for without
waiting: when anyone else holds a lock on the table, the load goes the usual way instead.
The rows are the same either way, and so are their change events.

Why not one ``INSERT … ON CONFLICT … DO UPDATE … WHERE rate <> excluded.rate``: it gives the same
rows, but every insert becomes a speculative insertion (an extra WAL record and index check per
row), measured about twice as slow on a million new quotes, and it locks each unchanged row it
skips, which is a write. ``benchmarks/bench_pg_load.py`` measures both.

Migrations are versioned (``fxcortex.schema_migrations``) and run under an advisory lock, so
``fxcortex bootstrap`` can be run any number of times, by several processes at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from fxcortex.core import FetchWindow, LoadResult, Pair, Quote, QuoteKind, StoreError
from fxcortex.runtime.adapters.pgcopy import COLUMNS, copy_chunks
from fxcortex.runtime.ledger import BackfillRecord, RunRecord, Trigger, run_record

log = logging.getLogger(__name__)

SCHEMA = "fxcortex"
HEARTBEAT_TABLE = "debezium_heartbeat"
"""One row Debezium's ``heartbeat.action.query`` updates (see `fxcortex.runtime.connector`)."""
PUBLICATION = "fxcortex_rates"
"""The publication Debezium's PostgreSQL connector reads (``publication.name``)."""
NATURAL_KEY = "rates_natural_key"
# Time first: most comparisons are then decided by one integer instead of three or four equal
# strings, which makes loading about twice as fast as (source, base, quote, kind, observed_at).
_NATURAL_KEY_COLUMNS = "observed_at, quote, base, source, kind"
BULK_LOAD_ROWS = 50_000
"""Loads of at least this many quotes into an empty table build the key's index after the rows."""

_KINDS = {kind.value: kind for kind in QuoteKind}
T = TypeVar("T")


@attrs.frozen
class Migration:
    """One step of the schema; applied once, in version order, recorded with its name."""

    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "rates, ingest runs, backfills and the Debezium publication",
        (
            f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
            f"""CREATE TABLE {SCHEMA}.rates (
                source      text        NOT NULL,
                base        text        NOT NULL,
                quote       text        NOT NULL,
                kind        text        NOT NULL
                    CHECK (kind IN ('mid', 'bid', 'ask', 'buy', 'sell')),
                observed_at timestamptz NOT NULL,
                rate        numeric     NOT NULL CHECK (rate > 0),
                CONSTRAINT {NATURAL_KEY} PRIMARY KEY ({_NATURAL_KEY_COLUMNS})
            )""",
            # CDC must carry the before image of a revision, not only its key
            f"ALTER TABLE {SCHEMA}.rates REPLICA IDENTITY FULL",
            f"""CREATE TABLE {SCHEMA}.ingest_runs (
                id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                source        text        NOT NULL,
                trigger       text        NOT NULL,
                window_since  date,
                window_until  date,
                started_at    timestamptz NOT NULL DEFAULT now(),
                finished_at   timestamptz,
                status        text        NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'succeeded', 'failed', 'abandoned')),
                rows_received integer,
                rows_inserted integer,
                rows_revised  integer,
                error         text,
                holder        text
            )""",
            f"CREATE INDEX ingest_runs_by_source ON {SCHEMA}.ingest_runs (source, started_at DESC)",
            f"""CREATE TABLE {SCHEMA}.backfills (
                id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                source      text        NOT NULL,
                since       date        NOT NULL,
                until       date        NOT NULL,
                options     text        NOT NULL DEFAULT '',
                chunk_days  integer     NOT NULL CHECK (chunk_days > 0),
                done_until  date,
                status      text        NOT NULL DEFAULT 'running'
                    CHECK (status IN ('running', 'finished')),
                started_at  timestamptz NOT NULL DEFAULT now(),
                updated_at  timestamptz NOT NULL DEFAULT now(),
                CONSTRAINT backfills_request UNIQUE (source, since, until, options)
            )""",
            f"CREATE PUBLICATION {PUBLICATION} FOR TABLE {SCHEMA}.rates",
        ),
    ),
    Migration(
        2,
        "the Debezium heartbeat table, in the publication",
        (
            # Debezium's heartbeat.action.query updates this row: when the rates are idle and
            # other tables fill the WAL, the change gives the connector a position to confirm,
            # so the replication slot moves on and PostgreSQL can recycle the WAL behind it.
            f"""CREATE TABLE {SCHEMA}.{HEARTBEAT_TABLE} (
                id      smallint    PRIMARY KEY CHECK (id = 1),
                beat_at timestamptz NOT NULL DEFAULT now()
            )""",
            f"INSERT INTO {SCHEMA}.{HEARTBEAT_TABLE} (id) VALUES (1)",
            f"ALTER PUBLICATION {PUBLICATION} ADD TABLE {SCHEMA}.{HEARTBEAT_TABLE}",
        ),
    ),
)

_MIGRATIONS_TABLE = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

# A fixed key for pg_advisory_xact_lock: two bootstraps at once apply each migration once.
_MIGRATION_LOCK = 0x6678_636F_7274_6578  # "fxcortex"


def migrate(connection: psycopg.Connection[Any]) -> list[Migration]:
    """Apply the migrations not yet applied, each in its own transaction; returns those applied."""
    applied: list[Migration] = []
    for migration in MIGRATIONS:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            connection.execute(_MIGRATIONS_TABLE)
            done = connection.execute(
                f"SELECT 1 FROM {SCHEMA}.schema_migrations WHERE version = %s",
                (migration.version,),
            ).fetchone()
            if done:
                continue
            for statement in migration.statements:
                connection.execute(statement)
            connection.execute(
                f"INSERT INTO {SCHEMA}.schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(migration)
    return applied


def schema_version(connection: psycopg.Connection[Any]) -> int:
    """The highest migration applied (0 on a database never bootstrapped)."""
    row = connection.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.schema_migrations",)
    ).fetchone()
    if not row or not row[0]:
        return 0
    (version,) = connection.execute(
        f"SELECT coalesce(max(version), 0) FROM {SCHEMA}.schema_migrations"
    ).fetchone() or (0,)
    return int(version)


LATEST_VERSION = MIGRATIONS[-1].version

_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS fxcortex_staging (
    source      text        NOT NULL,
    base        text        NOT NULL,
    quote       text        NOT NULL,
    kind        text        NOT NULL,
    observed_at timestamptz NOT NULL,
    rate        numeric     NOT NULL
) ON COMMIT DELETE ROWS
"""
_STAGING_COLUMNS = ", ".join(COLUMNS)  # the order copy_chunks writes
_COPY_STAGING = f"COPY pg_temp.fxcortex_staging ({_STAGING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_SAME_KEY = """
    {t}.source = s.source AND {t}.base = s.base AND {t}.quote = s.quote
    AND {t}.kind = s.kind AND {t}.observed_at = s.observed_at"""

# trim_scale: one text per number, so 1.10 is stored (and read back) as 1.1
_REVISE = f"""
UPDATE {SCHEMA}.rates AS r SET rate = trim_scale(s.rate)
FROM pg_temp.fxcortex_staging AS s
WHERE {_SAME_KEY.format(t="r")} AND r.rate <> s.rate
"""
_INSERT = f"""
INSERT INTO {SCHEMA}.rates ({_STAGING_COLUMNS})
SELECT s.source, s.base, s.quote, s.kind, s.observed_at, trim_scale(s.rate)
FROM pg_temp.fxcortex_staging AS s
WHERE NOT EXISTS (SELECT FROM {SCHEMA}.rates AS e WHERE {_SAME_KEY.format(t="e")})
"""
_DELETE = f"""
DELETE FROM {SCHEMA}.rates AS r USING pg_temp.fxcortex_staging AS s WHERE {_SAME_KEY.format(t="r")}
"""
_LOCK_SOURCE = "SELECT pg_advisory_xact_lock(hashtextextended('fxcortex.rates:' || %s, 0))"
_ANY_IN_SPAN = f"""
SELECT EXISTS (
    SELECT FROM {SCHEMA}.rates WHERE observed_at BETWEEN %s AND %s AND source = ANY(%s)
)"""
_COPY_RATES = f"COPY {SCHEMA}.rates ({_STAGING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_ANY_ROW = f"SELECT EXISTS (SELECT FROM {SCHEMA}.rates)"
_TAKE_TABLE = f"LOCK TABLE {SCHEMA}.rates IN ACCESS EXCLUSIVE MODE NOWAIT"
_DROP_KEY = f"ALTER TABLE {SCHEMA}.rates DROP CONSTRAINT {NATURAL_KEY}"
_ADD_KEY = (
    f"ALTER TABLE {SCHEMA}.rates ADD CONSTRAINT {NATURAL_KEY} PRIMARY KEY ({_NATURAL_KEY_COLUMNS})"
)


Row = tuple[str, str, str, str, datetime, Decimal]


def quote_rows(quotes: Iterable[Quote]) -> Iterator[Row]:
    """The rows of quotes in the COPY column order, rates as given."""
    for q in quotes:
        pair = q.pair
        yield (q.source, pair.base.code, pair.quote.code, q.kind.value, q.observed_at, q.rate)


def _configure(connection: psycopg.Connection[Any]) -> None:
    # Times come back as UTC datetimes whatever the server's TimeZone; the staging table lives
    # as long as the connection and empties itself at every commit.
    connection.execute("SET TIME ZONE 'UTC'")
    # a million staged quotes take ~80 MB; the default 8 MB of temp buffers would spill them
    connection.execute("SET temp_buffers = '128MB'")
    # Matching a load against the table: index probes for a small load, an in-memory hash join
    # for a large one. A merge join would sort both sides on four strings first, several times
    # slower here; JIT compilation only adds latency to these statements.
    connection.execute("SET work_mem = '64MB'")
    connection.execute("SET enable_mergejoin = off")
    connection.execute("SET jit = off")
    connection.execute(_STAGING)
    connection.commit()


def make_pool(
    conninfo: str,
    *,
    max_size: int = 4,
    timeout: float = 15.0,
    name: str = "fxcortex",
) -> ConnectionPool[psycopg.Connection[Any]]:
    """A connection pool that checks each connection before lending it.

    The check is what makes a restart of PostgreSQL between two runs invisible: the connections
    broken by the restart are thrown away and replaced instead of failing the next run.
    """
    return ConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        open=True,
        configure=_configure,
        check=ConnectionPool.check_connection,
        timeout=timeout,
        name=name,
        kwargs={"application_name": name},
    )


def describe(conninfo: str) -> str:
    """``host:port/dbname`` of a connection string, for messages (never the password)."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "PostgreSQL"
    return f"PostgreSQL at {parts.get('host', '?')}:{parts.get('port', 5432)}/{parts.get('dbname')}"


class PostgresRateStore:
    """Rates in PostgreSQL with a COPY-based idempotent upsert on the natural key."""

    def __init__(
        self,
        conninfo: str,
        *,
        pool: ConnectionPool[psycopg.Connection[Any]] | None = None,
        pool_size: int = 4,
        bulk_load_rows: int = BULK_LOAD_ROWS,
    ) -> None:
        self.conninfo = conninfo
        self.bulk_load_rows = bulk_load_rows
        self.where = describe(conninfo)
        self._owns_pool = pool is None
        self.pool = pool if pool is not None else make_pool(conninfo, max_size=pool_size)

    def _run(self, what: str, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``work`` in one transaction; any failure is a `StoreError` saying what failed."""
        try:
            with self.pool.connection() as connection:
                return work(connection)  # the pool commits, or rolls back on an exception
        except PoolTimeout as error:
            raise StoreError(f"{what}: cannot reach {self.where}: {error}") from error
        except psycopg.Error as error:
            raise StoreError(f"{what} in {self.where} failed: {error}".strip()) from error

    def upsert(self, quotes: Sequence[Quote]) -> LoadResult:
        """Insert new quotes and revise changed ones, all in one transaction."""
        if not quotes:
            return LoadResult(received=0, inserted=0, revised=0)
        what = f"loading {len(quotes)} quotes"
        try:
            inserted, revised = self._run(what, lambda c: _load(c, quotes, self.bulk_load_rows))
        except StoreError as error:
            if not isinstance(error.__cause__, psycopg.errors.UniqueViolation):
                raise
            # The same key twice in one call (the ETL removes such duplicates first): the last
            # one wins, as if they had been loaded one after the other.
            latest = {q.key: q for q in quotes}
            inserted, revised = self._run(
                what, lambda c: _load(c, latest.values(), self.bulk_load_rows)
            )
        return LoadResult(received=len(quotes), inserted=inserted, revised=revised)

    def delete(self, quotes: Sequence[Quote]) -> int:
        """Delete the rows with these quotes' keys in one transaction; returns how many existed."""
        if not quotes:
            return 0

        def work(connection: psycopg.Connection[Any]) -> int:
            _stage(connection, quotes)
            return connection.execute(_DELETE).rowcount

        return self._run(f"deleting {len(quotes)} quotes", work)

    def count(self) -> int:
        """How many quotes are stored."""
        row = self._run(
            "counting quotes",
            lambda c: c.execute(f"SELECT count(*) FROM {SCHEMA}.rates").fetchone(),
        )
        return int(row[0]) if row else 0

    def latest_observed_at(self, source: str) -> datetime | None:
        """When the newest stored observation of ``source`` was made (None when it has none)."""
        row = self._run(
            f"reading the latest observation of {source!r}",
            lambda c: c.execute(
                f"SELECT max(observed_at) FROM {SCHEMA}.rates WHERE source = %s", (source,)
            ).fetchone(),
        )
        return row[0] if row else None

    def quotes(self, *, source: str | None = None) -> Iterator[Quote]:
        """Every stored quote (of one source), in key order, streamed from a server cursor."""
        where = " WHERE source = %s" if source is not None else ""
        query = (
            f"SELECT source, base, quote, kind, observed_at, rate FROM {SCHEMA}.rates{where}"
            " ORDER BY source, base, quote, kind, observed_at"
        )
        params = (source,) if source is not None else ()
        try:
            with self.pool.connection() as connection, connection.transaction():
                cursor = connection.cursor(name="fxcortex_quotes")
                cursor.itersize = 10_000
                for src, base, quote, kind, observed_at, rate in cursor.execute(query, params):
                    yield Quote(
                        pair=Pair.of(base, quote),
                        rate=rate,
                        observed_at=observed_at,
                        source=src,
                        kind=_KINDS[kind],
                    )
        except PoolTimeout as error:
            raise StoreError(f"reading quotes: cannot reach {self.where}: {error}") from error
        except psycopg.Error as error:
            raise StoreError(f"reading quotes from {self.where} failed: {error}") from error

    def close(self) -> None:
        """Close the pool (when this store made it)."""
        if self._owns_pool:
            self.pool.close()


def _copy(connection: psycopg.Connection[Any], statement: str, quotes: Iterable[Quote]) -> None:
    # Our own binary rows (`copy_chunks`): psycopg's per-field dumpers took longer to
    # format a quote than the server took to store it.
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in copy_chunks(quotes):
            copy.write(chunk)


def _stage(connection: psycopg.Connection[Any], quotes: Iterable[Quote]) -> None:
    _copy(connection, _COPY_STAGING, quotes)


def _took_empty_table(connection: psycopg.Connection[Any]) -> bool:
    """Whether the rates table is empty and now this transaction's alone (``ACCESS EXCLUSIVE``).

    The lock is asked for without waiting, in a savepoint: two loads that both saw an empty
    table each hold a share lock on it, and waiting for the other's would deadlock. A lock not
    granted at once, or a row found once it is granted, is given back and the answer is no.
    """
    if _has_rows(connection):
        return False
    try:
        with connection.transaction() as savepoint:
            connection.execute(_TAKE_TABLE)
            if _has_rows(connection):  # a load committed in between
                raise psycopg.Rollback(savepoint)  # gives the lock back
            return True
    except psycopg.errors.LockNotAvailable:
        return False
    return False


def _has_rows(connection: psycopg.Connection[Any]) -> bool:
    row = connection.execute(_ANY_ROW).fetchone()
    return row is None or bool(row[0])  # no answer counts as rows: the usual way is always safe


def _bulk_load(connection: psycopg.Connection[Any], quotes: Iterable[Quote]) -> None:
    """COPY quotes into the empty table with the key dropped, then build the key from them.

    A key seen twice fails where the key is added, as a unique violation, like a COPY into the
    indexed table would.
    """
    connection.execute(_DROP_KEY)
    _copy(connection, _COPY_RATES, quotes)
    connection.execute(_ADD_KEY)


def _load(
    connection: psycopg.Connection[Any],
    quotes: Iterable[Quote],
    bulk_load_rows: int = BULK_LOAD_ROWS,
) -> tuple[int, int]:
    """Load quotes in the caller's transaction; returns (inserted, revised)."""
    quotes = list(quotes)
    sources = sorted({q.source for q in quotes})
    for source in sources:  # in name order, so two loads never deadlock
        connection.execute(_LOCK_SOURCE, (source,))
    if len(quotes) >= bulk_load_rows and _took_empty_table(connection):
        log.info("first load of %d quotes: building the key's index after the rows", len(quotes))
        _bulk_load(connection, quotes)
        return len(quotes), 0
    first = min(q.observed_at for q in quotes)
    last = max(q.observed_at for q in quotes)
    # The key's index leads with observed_at, so this scans the span's rows of every source:
    # cheap for daily fixings; a table shared with a high-volume tick source would want an
    # index on (source, observed_at) for it (and for latest_observed_at).
    overlaps = connection.execute(_ANY_IN_SPAN, (first, last, sources)).fetchone()
    if overlaps and not overlaps[0]:
        # Nothing of these sources in this span, and the locks keep it so: all new. (The same key
        # twice in the load fails on the primary key, and the caller retries without it.)
        _copy(connection, _COPY_RATES, quotes)
        return len(quotes), 0
    _stage(connection, quotes)
    revised = connection.execute(_REVISE).rowcount
    inserted = connection.execute(_INSERT).rowcount
    return inserted, revised


_RUN_COLUMNS = (
    "id, source, trigger, window_since, window_until, started_at, finished_at, status,"
    " rows_received, rows_inserted, rows_revised, error, holder"
)
_BACKFILL_COLUMNS = "id, source, since, until, options, chunk_days, done_until, status"


class PostgresLedger:
    """The ingest ledger in ``fxcortex.ingest_runs`` and ``fxcortex.backfills``."""

    def __init__(self, store: PostgresRateStore) -> None:
        self.store = store

    def start_run(self, source: str, window: FetchWindow, trigger: Trigger, holder: str) -> int:
        """Record a run that starts now; returns its id."""
        row = self.store._run(
            f"recording a run of {source!r}",
            lambda c: c.execute(
                f"INSERT INTO {SCHEMA}.ingest_runs (source, trigger, window_since, window_until,"
                " holder) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (source, trigger, window.since, window.until, holder),
            ).fetchone(),
        )
        assert row is not None
        return int(row[0])

    def finish_run(
        self, run_id: int, *, result: LoadResult | None = None, error: str | None = None
    ) -> None:
        """Record how a run ended."""
        self.store._run(
            f"recording the end of run {run_id}",
            lambda c: c.execute(
                f"UPDATE {SCHEMA}.ingest_runs SET finished_at = now(), status = %s,"
                " rows_received = %s, rows_inserted = %s, rows_revised = %s, error = %s"
                " WHERE id = %s",
                (
                    "failed" if error is not None else "succeeded",
                    result.received if result else None,
                    result.inserted if result else None,
                    result.revised if result else None,
                    error,
                    run_id,
                ),
            ),
        )

    def abandon_runs(self, source: str, *, before: int) -> int:
        """Mark older runs of ``source`` that still say running as abandoned."""
        return self.store._run(
            f"closing abandoned runs of {source!r}",
            lambda c: (
                c.execute(
                    f"UPDATE {SCHEMA}.ingest_runs SET status = 'abandoned', finished_at = now()"
                    " WHERE source = %s AND status = 'running' AND id < %s",
                    (source, before),
                ).rowcount
            ),
        )

    def runs(self, *, source: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""
        where = "WHERE source = %s" if source else ""
        parameters: tuple[Any, ...] = (source, limit) if source else (limit,)
        rows = self.store._run(
            "reading ingest runs",
            lambda c: c.execute(
                f"SELECT {_RUN_COLUMNS} FROM {SCHEMA}.ingest_runs {where}"
                " ORDER BY id DESC LIMIT %s",
                parameters,
            ).fetchall(),
        )
        return [run_record(row) for row in rows]

    def latest_observed_at(self, source: str) -> datetime | None:
        """When the newest stored observation of ``source`` was made."""
        return self.store.latest_observed_at(source)

    def backfill(
        self, source: str, since: date, until: date, options: str, chunk_days: int
    ) -> BackfillRecord:
        """The record of this backfill request, created when it is new."""

        def work(connection: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
            connection.execute(
                f"INSERT INTO {SCHEMA}.backfills (source, since, until, options, chunk_days)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT ON CONSTRAINT backfills_request"
                " DO NOTHING",
                (source, since, until, options, chunk_days),
            )
            return connection.execute(
                f"SELECT {_BACKFILL_COLUMNS} FROM {SCHEMA}.backfills"
                " WHERE source = %s AND since = %s AND until = %s AND options = %s",
                (source, since, until, options),
            ).fetchone()

        row = self.store._run(f"recording a backfill of {source!r}", work)
        assert row is not None
        return BackfillRecord(**dict(zip(_BACKFILL_FIELDS, row, strict=True)))

    def restart_backfill(self, backfill_id: int) -> BackfillRecord:
        """Forget a backfill's progress."""
        row = self.store._run(
            f"restarting backfill {backfill_id}",
            lambda c: c.execute(
                f"UPDATE {SCHEMA}.backfills SET done_until = NULL, status = 'running',"
                f" updated_at = now() WHERE id = %s RETURNING {_BACKFILL_COLUMNS}",
                (backfill_id,),
            ).fetchone(),
        )
        assert row is not None
        return BackfillRecord(**dict(zip(_BACKFILL_FIELDS, row, strict=True)))

    def backfill_progress(self, backfill_id: int, done_until: date, *, finished: bool) -> None:
        """Record that every day up to ``done_until`` is loaded."""
        self.store._run(
            f"recording the progress of backfill {backfill_id}",
            lambda c: c.execute(
                f"UPDATE {SCHEMA}.backfills SET done_until = %s, status = %s, updated_at = now()"
                " WHERE id = %s",
                (done_until, "finished" if finished else "running", backfill_id),
            ),
        )

    def close(self) -> None:
        """Nothing of its own to close: the rate store's pool is closed with the store."""


_BACKFILL_FIELDS = (
    "id",
    "source",
    "since",
    "until",
    "options",
    "chunk_days",
    "done_until",
    "status",
)


class PostgresAdvisoryLease:
    """A session-level advisory lock held on a connection of its own until released."""

    def __init__(self, connection: psycopg.Connection[Any], holder: str) -> None:
        self.connection = connection
        self.holder = holder

    def renew(self) -> bool:
        """The lock lasts as long as its connection: alive means still held."""
        try:
            self.connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        """Close the connection, which releases the lock."""
        self.connection.close()


class PostgresAdvisoryLocks:
    """Advisory locks by name: what the scheduler falls back to while Redis is unreachable."""

    def __init__(self, conninfo: str, holder: str) -> None:
        self.conninfo = conninfo
        self.holder = holder

    def acquire(self, name: str) -> PostgresAdvisoryLease | None:
        """Take the lock ``name`` if nobody holds it; None when somebody does."""
        connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)
        row = connection.execute(
            "SELECT pg_try_advisory_lock(hashtextextended('fxcortex.lock:' || %s, 0))", (name,)
        ).fetchone()
        if not row or not row[0]:
            connection.close()
            return None
        return PostgresAdvisoryLease(connection, self.holder)
