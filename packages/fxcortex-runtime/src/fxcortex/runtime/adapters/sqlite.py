"""The embedded profile's rate store, change feed and cache, all in one SQLite file.

Rates are keyed by (source, base, quote, kind, observed_at). Triggers on the rates table append
every insert, update and delete to ``rate_changes``, whose autoincrement ``position`` is the feed's
monotonic position: the same idea as a WAL read by Debezium, inside one file and without a server.
Times are stored as microseconds since the epoch (UTC), rates as canonical decimal text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from fxcortex.core import LoadResult, Quote, StoreError
from fxcortex.core.batch import ROW_COLUMNS, ChangeRows, quote_from_row, to_micros

# SQLite caps the number of bound parameters of one statement; stay well below it.
_CHUNK = 500

SCHEMA = """
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS rates (
    source      TEXT    NOT NULL,
    base        TEXT    NOT NULL,
    quote       TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    observed_at INTEGER NOT NULL,
    rate        TEXT    NOT NULL,
    PRIMARY KEY (source, base, quote, kind, observed_at)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS rate_changes (
    position      INTEGER PRIMARY KEY AUTOINCREMENT,
    op            TEXT    NOT NULL,
    committed_at  INTEGER NOT NULL,
    b_source TEXT, b_base TEXT, b_quote TEXT, b_kind TEXT, b_observed_at INTEGER, b_rate TEXT,
    a_source TEXT, a_base TEXT, a_quote TEXT, a_kind TEXT, a_observed_at INTEGER, a_rate TEXT
);

CREATE TABLE IF NOT EXISTS feed_checkpoints (
    consumer TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS cache (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS rates_after_insert AFTER INSERT ON rates BEGIN
    INSERT INTO rate_changes (op, committed_at,
        a_source, a_base, a_quote, a_kind, a_observed_at, a_rate)
    VALUES ('c', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        NEW.source, NEW.base, NEW.quote, NEW.kind, NEW.observed_at, NEW.rate);
END;

CREATE TRIGGER IF NOT EXISTS rates_after_update AFTER UPDATE ON rates BEGIN
    INSERT INTO rate_changes (op, committed_at,
        b_source, b_base, b_quote, b_kind, b_observed_at, b_rate,
        a_source, a_base, a_quote, a_kind, a_observed_at, a_rate)
    VALUES ('u', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        OLD.source, OLD.base, OLD.quote, OLD.kind, OLD.observed_at, OLD.rate,
        NEW.source, NEW.base, NEW.quote, NEW.kind, NEW.observed_at, NEW.rate);
END;

CREATE TRIGGER IF NOT EXISTS rates_after_delete AFTER DELETE ON rates BEGIN
    INSERT INTO rate_changes (op, committed_at,
        b_source, b_base, b_quote, b_kind, b_observed_at, b_rate)
    VALUES ('d', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER),
        OLD.source, OLD.base, OLD.quote, OLD.kind, OLD.observed_at, OLD.rate);
END;
"""

_UPSERT = """
INSERT INTO rates (source, base, quote, kind, observed_at, rate) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (source, base, quote, kind, observed_at) DO UPDATE SET rate = excluded.rate
WHERE rate <> excluded.rate
"""


def canonical_rate(rate: Decimal) -> str:
    """One text per number: 1.10 and 1.1 are stored alike, so a re-fetch is not a revision."""
    # Exact: normalize() would round to the context's 28 digits.
    text = format(rate, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the schema in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
    connection.executescript(SCHEMA)
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


class _Transaction:
    """``with _Transaction(conn):`` — BEGIN IMMEDIATE, then COMMIT, or ROLLBACK on any error."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")


class SqliteRateStore:
    """Rates in SQLite with an idempotent upsert on the natural key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = connect(path)

    def upsert(self, quotes: Sequence[Quote]) -> LoadResult:
        """Insert new quotes and revise changed ones, all in one transaction."""
        rows = [
            (
                q.source,
                q.pair.base.code,
                q.pair.quote.code,
                q.kind.value,
                to_micros(q.observed_at),
                canonical_rate(q.rate),
            )
            for q in quotes
        ]
        try:
            with _Transaction(self._connection) as connection:
                before = _last_position(connection)
                connection.executemany(_UPSERT, rows)
                counts = dict(
                    connection.execute(
                        "SELECT op, count(*) FROM rate_changes WHERE position > ? GROUP BY op",
                        (before,),
                    ).fetchall()
                )
        except sqlite3.Error as error:
            raise StoreError(
                f"loading {len(rows)} quotes into {self.path} failed: {error}"
            ) from error
        return LoadResult(
            received=len(rows), inserted=counts.get("c", 0), revised=counts.get("u", 0)
        )

    def delete(self, quotes: Sequence[Quote]) -> int:
        """Delete these quotes' rows (by key) in one transaction; returns how many existed."""
        keys = [
            (q.source, q.pair.base.code, q.pair.quote.code, q.kind.value, to_micros(q.observed_at))
            for q in quotes
        ]
        with _Transaction(self._connection) as connection:
            before = _last_position(connection)
            connection.executemany(
                "DELETE FROM rates WHERE source = ? AND base = ? AND quote = ? AND kind = ?"
                " AND observed_at = ?",
                keys,
            )
            (deleted,) = connection.execute(
                "SELECT count(*) FROM rate_changes WHERE position > ?", (before,)
            ).fetchone()
            return int(deleted)

    def count(self) -> int:
        """How many quotes are stored."""
        (count,) = self._connection.execute("SELECT count(*) FROM rates").fetchone()
        return int(count)

    def quotes(self, *, source: str | None = None) -> Iterator[Quote]:
        """Every stored quote (of one source), in key order."""
        sql = "SELECT source, base, quote, kind, observed_at, rate FROM rates"
        parameters: tuple[str, ...] = ()
        if source is not None:
            sql += " WHERE source = ?"
            parameters = (source,)
        for row in self._connection.execute(sql + " ORDER BY 1, 2, 3, 4, 5", parameters):
            yield quote_from_row(*row)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


def _last_position(connection: sqlite3.Connection) -> int:
    (position,) = connection.execute(
        "SELECT coalesce(max(position), 0) FROM rate_changes"
    ).fetchone()
    return int(position)


class SqliteChangeFeed:
    """The change log of a `SqliteRateStore` file, read in position order by one named consumer."""

    def __init__(self, path: Path, consumer: str = "analyzer") -> None:
        self.path = path
        self.consumer = consumer
        self._connection = connect(path)
        self._polled = self.committed()

    def committed(self) -> int:
        """The last position this consumer committed (0 before the first commit)."""
        row = self._connection.execute(
            "SELECT position FROM feed_checkpoints WHERE consumer = ?", (self.consumer,)
        ).fetchone()
        return int(row[0]) if row else 0

    def poll(self, max_changes: int) -> ChangeRows:
        """The next changes after the last polled one (objects are built only on access)."""
        rows = self._connection.execute(
            f"SELECT {', '.join(ROW_COLUMNS)}"
            " FROM rate_changes WHERE position > ? ORDER BY position LIMIT ?",
            (self._polled, max_changes),
        ).fetchall()
        if rows:
            self._polled = rows[-1][0]
        return ChangeRows(rows)

    def commit(self, position: int) -> None:
        """Record that every change up to ``position`` is applied."""
        self._connection.execute(
            "INSERT INTO feed_checkpoints (consumer, position) VALUES (?, ?)"
            " ON CONFLICT (consumer) DO UPDATE SET position = excluded.position",
            (self.consumer, position),
        )

    def rewind(self) -> None:
        """Forget what was polled but not committed: the next poll re-reads from the checkpoint."""
        self._polled = self.committed()

    def pending(self) -> int:
        """How many changes wait after the committed position."""
        (count,) = self._connection.execute(
            "SELECT count(*) FROM rate_changes WHERE position > ?", (self.committed(),)
        ).fetchone()
        return int(count)

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


class SqliteCache:
    """The embedded cache: in-process (no server) and kept in the SQLite file.

    Keeping it in the file is what lets an interrupted analyzer resume with the state it had
    committed rather than relearn from scratch.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = connect(path)
        # An analyzer batch reads and rewrites megabytes of state, far beyond SQLite's default
        # 2 MB page cache: on 600k tick events a 64 MB cache took the commits from 2.4 to 1.7 s.
        self._connection.execute("PRAGMA cache_size = -65536")  # KiB: up to 64 MB

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored values of those keys that have one."""
        wanted = list(keys)
        found: dict[str, bytes] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(
                self._connection.execute(
                    f"SELECT key, value FROM cache WHERE key IN ({marks})", chunk
                ).fetchall()
            )
        return found

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Set and delete keys in one transaction."""
        with _Transaction(self._connection) as connection:
            connection.executemany(
                "INSERT INTO cache (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                puts.items(),
            )
            connection.executemany("DELETE FROM cache WHERE key = ?", ((key,) for key in deletes))

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()
