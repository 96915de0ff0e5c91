"""The ingest ledger: every run of a source, and the progress of every backfill.

A run is recorded when it starts (``running``) and again when it ends (``succeeded`` with its
row counts, or ``failed`` with its error); a run whose process died is marked ``abandoned`` by the
next run of the same source, which holds the source's lock and so knows nobody else runs it.
A backfill is recorded by its request (source, since, until, options) with the last day it has
fully loaded, so the same request resumes after the last finished chunk.

The distributed profile keeps the ledger in PostgreSQL (`fxcortex.runtime.adapters.postgres`),
the embedded one in its SQLite file (`SqliteLedger`).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs

from fxcortex.core import FetchWindow, LoadResult
from fxcortex.core.batch import from_micros

RunStatus = Literal["running", "succeeded", "failed", "abandoned"]
Trigger = Literal["scheduled", "manual", "backfill"]


@attrs.frozen(kw_only=True)
class RunRecord:
    """One run of a source as the ledger holds it."""

    id: int
    source: str
    trigger: str
    window: FetchWindow
    started_at: datetime
    finished_at: datetime | None
    status: str
    received: int | None
    inserted: int | None
    revised: int | None
    error: str | None
    holder: str | None


@attrs.frozen(kw_only=True)
class BackfillRecord:
    """A backfill request and how far it has got (``done_until`` None: no chunk finished yet)."""

    id: int
    source: str
    since: date
    until: date
    options: str
    chunk_days: int
    done_until: date | None
    status: str

    @property
    def resume_from(self) -> date:
        """The first day still to load."""
        if self.done_until is None:
            return self.since
        return date.fromordinal(self.done_until.toordinal() + 1)


class Ledger(Protocol):
    """Where runs and backfill progress are recorded."""

    def start_run(self, source: str, window: FetchWindow, trigger: Trigger, holder: str) -> int:
        """Record a run that starts now; returns its id."""
        ...

    def finish_run(
        self, run_id: int, *, result: LoadResult | None = None, error: str | None = None
    ) -> None:
        """Record how a run ended: its load result, or its error."""
        ...

    def abandon_runs(self, source: str, *, before: int) -> int:
        """Mark the runs of ``source`` older than run ``before`` that still say running."""
        ...

    def runs(self, *, source: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""
        ...

    def latest_observed_at(self, source: str) -> datetime | None:
        """When the newest stored observation of ``source`` was made."""
        ...

    def backfill(
        self, source: str, since: date, until: date, options: str, chunk_days: int
    ) -> BackfillRecord:
        """The record of this backfill request, created when it is new."""
        ...

    def restart_backfill(self, backfill_id: int) -> BackfillRecord:
        """Forget a backfill's progress, so it loads from its first day again."""
        ...

    def backfill_progress(self, backfill_id: int, done_until: date, *, finished: bool) -> None:
        """Record that every day up to ``done_until`` is loaded."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS ingest_runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    source        TEXT    NOT NULL,
    trigger       TEXT    NOT NULL,
    window_since  TEXT,
    window_until  TEXT,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    status        TEXT    NOT NULL DEFAULT 'running',
    rows_received INTEGER,
    rows_inserted INTEGER,
    rows_revised  INTEGER,
    error         TEXT,
    holder        TEXT
);
CREATE INDEX IF NOT EXISTS ingest_runs_by_source ON ingest_runs (source, started_at);
CREATE TABLE IF NOT EXISTS backfills (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    source     TEXT    NOT NULL,
    since      TEXT    NOT NULL,
    until      TEXT    NOT NULL,
    options    TEXT    NOT NULL DEFAULT '',
    chunk_days INTEGER NOT NULL,
    done_until TEXT,
    status     TEXT    NOT NULL DEFAULT 'running',
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (source, since, until, options)
);
"""
_RUN_COLUMNS = (
    "id, source, trigger, window_since, window_until, started_at, finished_at, status,"
    " rows_received, rows_inserted, rows_revised, error, holder"
)
_BACKFILL_COLUMNS = "id, source, since, until, options, chunk_days, done_until, status"


def _now_micros() -> int:
    return int(datetime.now(UTC).timestamp() * 1_000_000)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def run_record(row: tuple[Any, ...]) -> RunRecord:
    """A `RunRecord` from a row laid out as the ledgers select it (times already datetimes)."""
    since, until = row[3], row[4]
    return RunRecord(
        id=row[0],
        source=row[1],
        trigger=row[2],
        window=FetchWindow(since=since, until=until),
        started_at=row[5],
        finished_at=row[6],
        status=row[7],
        received=row[8],
        inserted=row[9],
        revised=row[10],
        error=row[11],
        holder=row[12],
    )


class SqliteLedger:
    """The embedded profile's ledger: two tables in its SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._connection.executescript(_SQLITE_SCHEMA)

    def start_run(self, source: str, window: FetchWindow, trigger: Trigger, holder: str) -> int:
        """Record a run that starts now; returns its id."""
        cursor = self._connection.execute(
            "INSERT INTO ingest_runs (source, trigger, window_since, window_until, started_at,"
            " holder) VALUES (?, ?, ?, ?, ?, ?)",
            (
                source,
                trigger,
                window.since.isoformat() if window.since else None,
                window.until.isoformat() if window.until else None,
                _now_micros(),
                holder,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def finish_run(
        self, run_id: int, *, result: LoadResult | None = None, error: str | None = None
    ) -> None:
        """Record how a run ended."""
        self._connection.execute(
            "UPDATE ingest_runs SET finished_at = ?, status = ?, rows_received = ?,"
            " rows_inserted = ?, rows_revised = ?, error = ? WHERE id = ?",
            (
                _now_micros(),
                "failed" if error is not None else "succeeded",
                result.received if result else None,
                result.inserted if result else None,
                result.revised if result else None,
                error,
                run_id,
            ),
        )

    def abandon_runs(self, source: str, *, before: int) -> int:
        """Mark older runs of ``source`` that still say running as abandoned."""
        return self._connection.execute(
            "UPDATE ingest_runs SET status = 'abandoned', finished_at = ?"
            " WHERE source = ? AND status = 'running' AND id < ?",
            (_now_micros(), source, before),
        ).rowcount

    def runs(self, *, source: str | None = None, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""
        where, parameters = ("WHERE source = ?", (source, limit)) if source else ("", (limit,))
        rows = self._connection.execute(
            f"SELECT {_RUN_COLUMNS} FROM ingest_runs {where} ORDER BY id DESC LIMIT ?", parameters
        ).fetchall()
        return [
            run_record(
                (
                    *row[:3],
                    _day(row[3]),
                    _day(row[4]),
                    from_micros(row[5]),
                    from_micros(row[6]) if row[6] is not None else None,
                    *row[7:],
                )
            )
            for row in rows
        ]

    def latest_observed_at(self, source: str) -> datetime | None:
        """When the newest stored observation of ``source`` was made."""
        try:
            (latest,) = self._connection.execute(
                "SELECT max(observed_at) FROM rates WHERE source = ?", (source,)
            ).fetchone()
        except sqlite3.OperationalError:  # no rates table yet: nothing was ever loaded
            return None
        return from_micros(latest) if latest is not None else None

    def backfill(
        self, source: str, since: date, until: date, options: str, chunk_days: int
    ) -> BackfillRecord:
        """The record of this backfill request, created when it is new."""
        now = _now_micros()
        self._connection.execute(
            "INSERT INTO backfills (source, since, until, options, chunk_days, started_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (source, since, until, options) DO NOTHING",
            (source, since.isoformat(), until.isoformat(), options, chunk_days, now, now),
        )
        row = self._connection.execute(
            f"SELECT {_BACKFILL_COLUMNS} FROM backfills"
            " WHERE source = ? AND since = ? AND until = ? AND options = ?",
            (source, since.isoformat(), until.isoformat(), options),
        ).fetchone()
        return self._backfill_record(row)

    def restart_backfill(self, backfill_id: int) -> BackfillRecord:
        """Forget a backfill's progress."""
        self._connection.execute(
            "UPDATE backfills SET done_until = NULL, status = 'running', updated_at = ?"
            " WHERE id = ?",
            (_now_micros(), backfill_id),
        )
        row = self._connection.execute(
            f"SELECT {_BACKFILL_COLUMNS} FROM backfills WHERE id = ?", (backfill_id,)
        ).fetchone()
        return self._backfill_record(row)

    def backfill_progress(self, backfill_id: int, done_until: date, *, finished: bool) -> None:
        """Record that every day up to ``done_until`` is loaded."""
        self._connection.execute(
            "UPDATE backfills SET done_until = ?, status = ?, updated_at = ? WHERE id = ?",
            (
                done_until.isoformat(),
                "finished" if finished else "running",
                _now_micros(),
                backfill_id,
            ),
        )

    @staticmethod
    def _backfill_record(row: tuple[Any, ...]) -> BackfillRecord:
        since, until = _day(row[2]), _day(row[3])
        assert since is not None and until is not None
        return BackfillRecord(
            id=row[0],
            source=row[1],
            since=since,
            until=until,
            options=row[4],
            chunk_days=row[5],
            done_until=_day(row[6]),
            status=row[7],
        )

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()
