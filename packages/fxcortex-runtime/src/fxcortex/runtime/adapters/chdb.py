"""The embedded profile's analytics store: the ClickHouse engine in-process, through chDB.

Each declared table ``t`` becomes ``t_versions``, a ReplacingMergeTree keyed by the table's key and
versioned by the change-feed position, plus a view ``t`` that shows the newest version of every key
that is not deleted. Writing the same rows twice therefore changes nothing, and users query ``t``
as if it were a plain table. The DDL is the one a ClickHouse server runs (`ddl` is shared with the
server adapter).
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fxcortex.core import QueryResult, StoreError, TableSpec, TableWrite
from fxcortex.core.tables import DELETED_COLUMN, VERSION_COLUMN

DATABASE = "fxcortex"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


# Readers see a versioned table through its view, which reads FINAL: collapsing each inserted
# block by key as well (ClickHouse's default for a ReplacingMergeTree) took a quarter of the
# insert's time and changed nothing anyone reads.
INSERT_SETTINGS = "SETTINGS optimize_on_insert = 0"


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


def transport_type(type_: str) -> Any:
    """How a column travels to the engine: decimals as text, times as µs since the epoch."""
    import pyarrow as pa

    if type_.startswith("DateTime64"):
        return pa.int64()
    if "Decimal" in type_:
        return pa.string()
    if "Float" in type_:
        return pa.float64()
    if "String" in type_:
        return pa.string()
    if "UInt" in type_:
        return pa.uint64()
    if "Int" in type_:
        return pa.int64()
    return None  # let Arrow infer it


def insert_expression(name: str, type_: str) -> str:
    """The expression turning a transported column back into its declared type."""
    if type_.startswith("DateTime64"):
        return f"fromUnixTimestamp64Micro(`{name}`, 'UTC')"
    if "Decimal" in type_:
        return f"CAST(`{name}`, '{type_}')"
    return f"`{name}`"


def _plain(values: Any) -> Any:
    """Values Arrow converts in C: numpy arrays as they are, objects as their plain values."""
    if hasattr(values, "dtype") or not len(values):
        return values  # a numpy column: µs for times, NaN for a missing float
    sample = values[0]
    if isinstance(sample, Decimal):
        return [str(value) for value in values]
    if isinstance(sample, enum.Enum):  # e.g. a QuoteKind: the engine wants its plain value
        return [value.value for value in values]
    if isinstance(sample, datetime):
        return [(value - _EPOCH) // _MICRO for value in values]
    return values


def arrow_table(spec: TableSpec, write: TableWrite) -> Any:
    """The rows of a write as one Arrow table (NaN and None become nulls)."""
    import pyarrow as pa

    arrays = {
        column.name: pa.array(
            _plain(write.columns[column.name]),
            type=transport_type(column.type),
            from_pandas=True,
        )
        for column in spec.columns
    }
    arrays[VERSION_COLUMN] = pa.array(write.versions, type=pa.uint64())
    arrays[DELETED_COLUMN] = pa.array(write.deleted, type=pa.bool_()).cast(pa.uint8())
    return pa.table(arrays)


def insert_statement(spec: TableSpec, path: Path) -> str:
    """The INSERT that loads a write's Arrow file into the versioned table."""
    selected = ", ".join(
        [insert_expression(c.name, c.type) for c in spec.columns]
        + [f"`{VERSION_COLUMN}`", f"`{DELETED_COLUMN}`"]
    )
    where = str(path).replace("\\", "\\\\").replace("'", "\\'")
    return (
        f"INSERT INTO {DATABASE}.{versions_table(spec.name)} {INSERT_SETTINGS}"
        f" SELECT {selected} FROM file('{where}', 'Arrow')"
    )


def checked_spec(specs: Mapping[str, TableSpec], write: TableWrite) -> TableSpec:
    """The spec of the table a write goes to, once the write matches it."""
    spec = specs.get(write.table)
    if spec is None:
        raise StoreError(f"write to unknown table {write.table!r}; call ensure_tables first")
    write.check_against(spec)
    return spec


def query_result(table: Any) -> QueryResult:
    """The rows of an Arrow table as a `QueryResult`."""
    rows = [tuple(row.values()) for row in table.to_pylist()]
    return QueryResult(columns=list(table.column_names), rows=rows)


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
        self._spool = path / "spool"  # Arrow files of inserts in flight
        self._spool.mkdir(exist_ok=True)

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
            spec = checked_spec(self._specs, write)
            # Rows travel as an Arrow file the engine reads natively: columns convert in C (numpy
            # columns without a copy), where inline JSON spent seconds formatting floats.
            import pyarrow.ipc as ipc

            table = arrow_table(spec, write)
            path = self._spool / f"{spec.name}-{secrets.token_hex(6)}.arrow"
            try:
                with ipc.new_file(str(path), table.schema) as writer:
                    writer.write_table(table)
                self._run(insert_statement(spec, path))
            finally:
                path.unlink(missing_ok=True)

    def query(self, sql: str) -> QueryResult:
        """Run SQL (table names resolve in the ``fxcortex`` database) and return its rows."""
        return query_result(self._run(sql, "ArrowTable"))

    def optimize(self) -> None:
        """Merge every versioned table now (ClickHouse otherwise merges in the background)."""
        for spec in self._specs.values():
            self._run(f"OPTIMIZE TABLE {DATABASE}.{versions_table(spec.name)} FINAL")

    def close(self) -> None:
        """Close the chDB session."""
        self._session.close()
