"""The connector's heartbeat keeps the replication slot moving while the rates are idle.

Without it, a slot whose tables see no change never confirms a newer position, and PostgreSQL
keeps every WAL segment that other tables write behind it, until the disk fills. The connector of
`fxcortex.runtime.connector` updates the heartbeat row of the bootstrap's migration 2 on every
heartbeat; the test writes WAL through a table the connector does not capture and waits for the
slot's confirmed position to pass it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from databases import as_connect_sees_it, fresh_database

from fxcortex.runtime.adapters.postgres import HEARTBEAT_TABLE, SCHEMA
from fxcortex.runtime.config import DatabaseSettings, Settings
from fxcortex.runtime.connector import ConnectClient, connector_config


@pytest.fixture
def database(postgres: Any) -> Iterator[DatabaseSettings]:
    with fresh_database(postgres, "fxhb") as settings:
        yield settings


def confirmed_lsn(conn: psycopg.Connection[Any], slot: str) -> int | None:
    """The slot's confirmed flush position in bytes, None while the slot has none."""
    row = conn.execute(
        "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
        (slot,),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def test_an_idle_rates_table_does_not_hold_back_the_wal(
    postgres: Any, kafka: Any, kafka_connect: Any, database: DatabaseSettings
) -> None:
    suffix = uuid.uuid4().hex[:8]
    name = f"fxhb-{suffix}"
    slot = name.replace("-", "_")
    connect_db = as_connect_sees_it(database, postgres)
    body = connector_config(
        Settings(database=connect_db), name=name, heartbeat_ms=500, topic_prefix=f"fxhb{suffix}"
    )
    client = ConnectClient(kafka_connect.url)
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE public.other_traffic (id bigint, padding text)")
        try:
            client.register(body)
            deadline = time.monotonic() + 90
            while confirmed_lsn(conn, slot) is None:
                assert time.monotonic() < deadline, "the connector never created its slot"
                time.sleep(0.5)

            # WAL the connector does not capture, while the rates stay untouched.
            conn.execute(
                "INSERT INTO public.other_traffic"
                " SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g"
            )
            (written,) = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone() or (
                0,
            )
            deadline = time.monotonic() + 90
            while (confirmed_lsn(conn, slot) or 0) < int(written):
                assert time.monotonic() < deadline, (
                    f"slot {slot} stuck at {confirmed_lsn(conn, slot)}, WAL written to {written}"
                )
                time.sleep(0.5)
            (beat_at,) = conn.execute(
                f"SELECT beat_at FROM {SCHEMA}.{HEARTBEAT_TABLE} WHERE id = 1"
            ).fetchone() or (None,)
            (now,) = conn.execute("SELECT now()").fetchone() or (None,)
            assert beat_at is not None and now is not None
            assert (now - beat_at).total_seconds() < 30  # the connector is the one beating
            (rates,) = conn.execute(f"SELECT count(*) FROM {SCHEMA}.rates").fetchone() or (0,)
            assert rates == 0
        finally:
            client.delete(name)
            client.close()
