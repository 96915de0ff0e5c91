"""The distributed profile's analytics store: a ClickHouse server, over HTTP (clickhouse-connect).

The tables are the chDB store's (`fxcortex.runtime.adapters.chdb.ddl`): per declared table ``t``
a ReplacingMergeTree ``t_versions`` versioned by the change-feed position, with an ``is_deleted``
flag, and a view ``t`` of the newest undeleted version of every key. A re-delivered batch writes
the same rows with the same versions and so changes nothing anyone can see.

A write travels as one Arrow stream per table, the same columns the chDB store spools to a file
(times as µs, decimals as text), and the server turns them into the declared types in the
``INSERT … SELECT … FROM input(…)`` that receives it: columnar from numpy to the server's parts.
Any failure (server down, refused statement, timeout) is a `StoreError` naming the server, so the
analyzer retries the batch with backoff and commits nothing until the rows have landed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from fxcortex.core import QueryResult, StoreError, TableSpec, TableWrite
from fxcortex.core.tables import DELETED_COLUMN, VERSION_COLUMN
from fxcortex.runtime.adapters.chdb import (
    INSERT_SETTINGS,
    arrow_table,
    checked_spec,
    ddl,
    insert_expression,
    query_result,
    versions_table,
)
from fxcortex.runtime.config import ClickHouseSettings


def input_type(type_: str) -> str:
    """The type a column has on the wire (see `fxcortex.runtime.adapters.chdb.transport_type`)."""
    if type_.startswith("Nullable(") and type_.endswith(")"):
        return f"Nullable({input_type(type_[len('Nullable(') : -1])})"
    if type_.startswith("DateTime64"):
        return "Int64"
    if "Decimal" in type_ or "String" in type_:
        return "String"
    return type_


def insert_statement(spec: TableSpec, database: str) -> str:
    """The INSERT that reads one Arrow stream of a write into the versioned table."""
    structure = ", ".join(
        [f"`{c.name}` {input_type(c.type)}" for c in spec.columns]
        + [f"`{VERSION_COLUMN}` UInt64", f"`{DELETED_COLUMN}` UInt8"]
    )
    selected = ", ".join(
        [insert_expression(c.name, c.type) for c in spec.columns]
        + [f"`{VERSION_COLUMN}`", f"`{DELETED_COLUMN}`"]
    )
    return (
        f"INSERT INTO {database}.{versions_table(spec.name)} {INSERT_SETTINGS} SELECT {selected}"
        f" FROM input('{structure}') FORMAT ArrowStream"
    )


class ClickHouseServerStore:
    """Analytics tables on a ClickHouse server."""

    def __init__(self, settings: ClickHouseSettings, *, connect_timeout: float = 10.0) -> None:
        import clickhouse_connect  # an extra of the distributed profile

        self.settings = settings
        try:
            self._client = clickhouse_connect.get_client(
                host=settings.host,
                port=settings.port,
                username=settings.user,
                password=settings.password,
                secure=settings.secure,
                connect_timeout=connect_timeout,
                # the database may not exist yet: it is created below, then selected
                database="default",
            )
        except Exception as error:  # clickhouse-connect raises its own OperationalError
            raise StoreError(f"{settings}: cannot connect: {error}") from error
        self._specs: dict[str, TableSpec] = {}
        self._run(f"CREATE DATABASE IF NOT EXISTS {settings.database}")
        self._client.database = settings.database

    def _run(self, sql: str, data: bytes | None = None) -> Any:
        try:
            return self._client.command(sql, data=data)
        except Exception as error:  # network failures and refused statements alike
            first_line = sql.strip().splitlines()[0][:200]
            raise StoreError(f"{self.settings}: {error} (in: {first_line})") from error

    def ensure_tables(self, specs: Sequence[TableSpec]) -> None:
        """Create the versioned tables and views that do not exist yet."""
        for spec in specs:
            for statement in ddl(spec, self.settings.database):
                self._run(statement)
            self._specs[spec.name] = spec

    def write(self, writes: Sequence[TableWrite]) -> None:
        """Insert rows with their versions; re-writing the same rows changes nothing visible."""
        import pyarrow.ipc as ipc

        for write in writes:
            if not len(write):
                continue
            spec = checked_spec(self._specs, write)
            table = arrow_table(spec, write)
            stream = io.BytesIO()
            with ipc.new_stream(stream, table.schema) as writer:
                writer.write_table(table)
            self._run(insert_statement(spec, self.settings.database), stream.getvalue())

    def query(self, sql: str) -> QueryResult:
        """Run SQL (table names resolve in the store's database) and return its rows."""
        try:
            table = self._client.query_arrow(sql)
        except Exception as error:
            raise StoreError(f"{self.settings}: {error} (in: {sql.strip()[:200]})") from error
        return query_result(table)

    def optimize(self) -> None:
        """Merge every versioned table now (the server otherwise merges in the background)."""
        for spec in self._specs.values():
            self._run(f"OPTIMIZE TABLE {self.settings.database}.{versions_table(spec.name)} FINAL")

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
