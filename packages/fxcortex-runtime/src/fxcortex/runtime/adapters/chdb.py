"""The embedded profile's analytics store: the ClickHouse engine in-process, through chDB.

Each declared table ``t`` becomes ``t_versions``, a ReplacingMergeTree keyed by the table's key and
versioned by the change-feed position, plus a view ``t`` that shows the newest version of every key
that is not deleted. Writing the same rows twice therefore changes nothing, and users query ``t``
as if it were a plain table. The DDL is the one a ClickHouse server runs (`ddl` is shared with the
server adapter).
"""

from __future__ import annotations

import enum
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fxcortex.core import QueryResult, StoreError, TableSpec, TableWrite
from fxcortex.core.tables import DELETED_COLUMN, VERSION_COLUMN

DATABASE = "fxcortex"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def versions_table(name: str) -> str:
    """The name of the versioned table behind the view ``name``."""
    return f"{name}_versions"


def ddl(spec: TableSpec, database: str = DATABASE) -> list[str]:
    """The statements that create a spec's versioned table and its current-state view."""
    columns = ",\n    ".join(f"`{c.name}` {c.type}" for c in spec.columns)
    names = ", ".join(f"`{c.name}`" for c in spec.columns)
    key = ", ".join(f"`{k}`" for k in spec.key)
    table = f"{database}.{versions_table(spec.name)}"
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"CREATE TABLE IF NOT EXISTS {table} (\n    {columns},\n"
        f"    `{VERSION_COLUMN}` UInt64,\n    `{DELETED_COLUMN}` UInt8\n)"
        f" ENGINE = ReplacingMergeTree({VERSION_COLUMN}, {DELETED_COLUMN}) ORDER BY ({key})",
        f"CREATE VIEW IF NOT EXISTS {database}.{spec.name} AS"
        f" SELECT {names} FROM {table} FINAL WHERE {DELETED_COLUMN} = 0",
    ]


def _transport_type(type_: str) -> str:
    # How a value travels in the insert payload: decimals as text, times as microseconds.
    if type_.startswith("DateTime64"):
        return "Int64"
    if "Decimal" in type_:
        return "String"
    return type_


def _insert_expression(name: str, type_: str) -> str:
    if type_.startswith("DateTime64"):
        return f"fromUnixTimestamp64Micro(`{name}`, 'UTC')"
    if "Decimal" in type_:
        return f"CAST(`{name}`, '{type_}')"
    return f"`{name}`"


def _plain(values: list[Any]) -> list[Any]:
    if not values:
        return values
    sample = values[0]
    if isinstance(sample, Decimal):
        return [str(value) for value in values]
    if isinstance(sample, enum.Enum):  # e.g. a QuoteKind: the engine wants its plain value
        return [value.value for value in values]
    if isinstance(sample, datetime):
        return [(value - _EPOCH) // _MICRO for value in values]
    return values


def insert_statement(spec: TableSpec, write: TableWrite) -> str:
    """One INSERT carrying the rows inline as one JSON array of columns (``format`` function).

    Inline data needs no Python-side engine bridge and parses at C++ speed, for a server and for
    chDB alike; a single column-oriented JSON document is encoded by one call into the C encoder
    (four times faster than a JSON line per row).
    """
    columns = [_plain(values) for values in write.columns.values()]
    columns.append(write.versions)
    columns.append([int(flag) for flag in write.deleted])
    payload = json.dumps(columns)
    tag = "$fx$"
    while tag in payload:  # a heredoc ends at its tag: pick one the data does not contain
        tag = f"$fx{secrets.token_hex(4)}$"
    structure = ", ".join(
        [f"{c.name} {_transport_type(c.type)}" for c in spec.columns]
        + [f"{VERSION_COLUMN} UInt64", f"{DELETED_COLUMN} UInt8"]
    )
    quoted_structure = structure.replace("\\", "\\\\").replace("'", "\\'")
    selected = ", ".join(
        [_insert_expression(c.name, c.type) for c in spec.columns]
        + [f"`{VERSION_COLUMN}`", f"`{DELETED_COLUMN}`"]
    )
    return (
        f"INSERT INTO {DATABASE}.{versions_table(spec.name)} SELECT {selected}"
        f" FROM format(JSONCompactColumns, '{quoted_structure}', {tag}{payload}{tag})"
    )


class ChdbAnalyticsStore:
    """Analytics tables in a chDB session whose data lives under ``path``."""

    def __init__(self, path: Path) -> None:
        from chdb import session  # imported here: loading the engine takes a moment

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._session = session.Session(str(path))
        self._specs: dict[str, TableSpec] = {}
        self._run(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        self._run(f"USE {DATABASE}")
        # Rows travel inline in the INSERT text (see insert_statement), so allow large statements.
        self._run("SET max_query_size = 1073741824")

    def _run(self, sql: str, output_format: str = "CSV") -> Any:
        try:
            return self._session.query(sql, output_format)
        except Exception as error:  # chDB raises its own ChdbError; name the statement
            first_line = sql.strip().splitlines()[0][:200]
            raise StoreError(f"analytics store {self.path}: {error} (in: {first_line})") from error

    def ensure_tables(self, specs: Sequence[TableSpec]) -> None:
        """Create the versioned tables and views that do not exist yet."""
        for spec in specs:
            for statement in ddl(spec):
                self._run(statement)
            self._specs[spec.name] = spec

    def write(self, writes: Sequence[TableWrite]) -> None:
        """Insert rows with their versions; re-writing the same rows changes nothing visible."""
        for write in writes:
            if not len(write):
                continue
            spec = self._specs.get(write.table)
            if spec is None:
                raise StoreError(
                    f"write to unknown table {write.table!r}; call ensure_tables first"
                )
            write.check_against(spec)
            self._run(insert_statement(spec, write))

    def query(self, sql: str) -> QueryResult:
        """Run SQL (table names resolve in the ``fxcortex`` database) and return its rows."""
        table = self._run(sql, "ArrowTable")
        columns = list(table.column_names)
        rows = [tuple(row.values()) for row in table.to_pylist()]
        return QueryResult(columns=columns, rows=rows)

    def optimize(self) -> None:
        """Merge every versioned table now (ClickHouse otherwise merges in the background)."""
        for spec in self._specs.values():
            self._run(f"OPTIMIZE TABLE {DATABASE}.{versions_table(spec.name)} FINAL")

    def close(self) -> None:
        """Close the chDB session."""
        self._session.close()
