"""A PostgreSQL database of a test's own on the session's server, for tests that run Debezium.

Dropping it needs care: the connector's replication slot must be let go (Kafka Connect stops its
task a moment after the connector is deleted) and dropped, or ``DROP DATABASE`` refuses.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import psycopg

from fxcortex.runtime.adapters.postgres import migrate
from fxcortex.runtime.config import DatabaseSettings


def as_connect_sees_it(database: DatabaseSettings, postgres: Any) -> DatabaseSettings:
    """The test's database at the address Kafka Connect reaches PostgreSQL by."""
    return attrs.evolve(database, host=postgres.connect_host, port=postgres.connect_port)


@contextlib.contextmanager
def fresh_database(
    postgres: Any, prefix: str, *, migrated: bool = True
) -> Iterator[DatabaseSettings]:
    """A new database ``<prefix>_<random>`` (with the rate store's schema unless told not to)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    settings = DatabaseSettings(
        host=postgres.host,
        port=postgres.port,
        name=name,
        user=postgres.user,
        password=postgres.password,
    )
    if migrated:
        with psycopg.connect(settings.conninfo, autocommit=True) as conn:
            migrate(conn)
    try:
        yield settings
    finally:
        drop_database(postgres, name)


def drop_database(postgres: Any, name: str) -> None:
    """Drop a test's database once its replication slots are released (60 s at most)."""
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            active = admin.execute(
                "SELECT count(*) FROM pg_replication_slots WHERE database = %s AND active", (name,)
            ).fetchone()
            if not active or not active[0]:
                break
            time.sleep(0.5)
        for (slot,) in admin.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)
        ).fetchall():
            # still held by a consumer going away: DROP DATABASE … FORCE below settles it
            with contextlib.suppress(psycopg.Error):
                admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
