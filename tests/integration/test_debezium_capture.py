"""Golden test of the Debezium decoder on events captured from the real connector.

Rows are inserted, revised and deleted through the PostgreSQL rate store; the connector of
`fxcortex.runtime.connector` (the one ``fxcortex connector register`` sends, with a prefix of the
test's own) streams them to Kafka, and every message decodes to the change that was made.
With ``FXCORTEX_CAPTURE_FIXTURES=1`` the captured envelopes are saved as the unit tests' fixtures
(packages/fxcortex-runtime/tests/fixtures/debezium/).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from databases import as_connect_sees_it, fresh_database

from fxcortex.core import ChangeOp
from fxcortex.core.testing import quote
from fxcortex.runtime.adapters.debezium import decode
from fxcortex.runtime.adapters.postgres import PostgresRateStore
from fxcortex.runtime.config import DatabaseSettings, Settings
from fxcortex.runtime.connector import ConnectClient, connector_config

DAY = timedelta(days=1)
FIXTURES = Path(__file__).resolve().parents[2] / "packages/fxcortex-runtime/tests/fixtures/debezium"


def capture_consumer(kafka: Any, group: str) -> Consumer:
    """A consumer reading the connector's topics from the start, committing nothing."""
    return Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "topic.metadata.refresh.interval.ms": 1000,
        }
    )


def _let_go(
    consumer: Consumer, client: ConnectClient, connector: str, store: PostgresRateStore
) -> None:
    """Close what a capture test opened; the connector goes, whatever state it is in."""
    consumer.close()
    with contextlib.suppress(Exception):
        client.delete(connector)
    client.close()
    store.close()


@pytest.fixture
def database(postgres: Any) -> Iterator[DatabaseSettings]:
    with fresh_database(postgres, "fxdbz") as settings:
        yield settings


@pytest.mark.parametrize("schemas", [False, True], ids=["bare", "with-schemas"])
def test_real_connector_events_decode(
    postgres: Any, kafka: Any, kafka_connect: Any, database: DatabaseSettings, schemas: bool
) -> None:
    store = PostgresRateStore(database.conninfo)
    snapshot = quote(pair="EUR/USD", rate="1.0850")
    store.upsert([snapshot])  # before the connector: a snapshot read

    suffix = uuid.uuid4().hex[:8]
    prefix, name = f"fxdbz{suffix}", f"fxdbz-{suffix}"
    connect_db = as_connect_sees_it(database, postgres)
    body = connector_config(
        Settings(database=connect_db),
        name=name,
        heartbeat_ms=500,
        schemas=schemas,
        topic_prefix=prefix,
    )
    client = ConnectClient(kafka_connect.url)
    topic = f"{prefix}.fxcortex.rates"
    consumer = capture_consumer(kafka, f"capture-{suffix}")
    try:
        client.register(body)
        consumer.subscribe([topic, f"__debezium-heartbeat.{prefix}"])
        messages: list[Any] = []

        def drain(until: float, want: int) -> None:
            while (
                time.monotonic() < until
                and len({m.offset() for m in messages if m.topic() == topic}) < want
            ):
                message = consumer.poll(0.5)
                if message is not None and message.error() is None:
                    messages.append(message)

        drain(time.monotonic() + 120, 1)  # the snapshot read
        inserted = quote(pair="GBP/USD", rate="1.2710")
        store.upsert([inserted])
        revised = quote(pair="GBP/USD", rate="1.2712")
        store.upsert([revised])
        store.delete([revised])
        drain(time.monotonic() + 90, 5)  # + insert, update, delete, tombstone
        heartbeat_deadline = time.monotonic() + 30
        while time.monotonic() < heartbeat_deadline and not any(
            m.topic() != topic for m in messages
        ):
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                messages.append(message)
    finally:
        _let_go(consumer, client, name, store)

    # a rebalance of the capturing consumer (the heartbeat topic appearing) may read again
    unique = {(m.topic(), m.partition(), m.offset()): m for m in messages}
    messages = [unique[key] for key in sorted(unique)]
    rates = [m for m in messages if m.topic() == topic]
    heartbeats = [m for m in messages if m.topic() != topic]
    decoded = [
        decode(m.value(), topic=m.topic(), partition=m.partition(), offset=m.offset())
        for m in rates
    ]
    # Connect may restart the task before its first offset commit (another test's connector
    # leaving rebalances the workers): it snapshots again, a re-delivery after the first five.
    assert [None if c is None else c.op for c in decoded][:5] == [
        ChangeOp.READ,
        ChangeOp.CREATE,
        ChangeOp.UPDATE,
        ChangeOp.DELETE,
        None,
    ]
    read, create, update, delete, _ = decoded[:5]
    assert read is not None and read.after == snapshot
    assert create is not None and create.after == inserted
    assert update is not None and update.before == inserted and update.after == revised
    assert update.after is not None and update.after.rate == Decimal("1.2712")
    assert delete is not None and delete.before == revised
    positions = [c.position for c in decoded if c is not None]
    assert positions == sorted(set(positions))
    assert json.loads(rates[1].key()) == (
        {"schema": json.loads(rates[1].key())["schema"], "payload": {"base": "GBP", "quote": "USD"}}
        if schemas
        else {"base": "GBP", "quote": "USD"}
    )
    assert heartbeats, "no heartbeat within 30 s"
    for message in heartbeats:
        assert decode(message.value(), topic=message.topic(), partition=0, offset=0) is None

    if os.environ.get("FXCORTEX_CAPTURE_FIXTURES"):
        FIXTURES.mkdir(parents=True, exist_ok=True)
        shape = "schemas" if schemas else "bare"
        names = ["read", "create", "update", "delete"]
        for label, message in zip(names, rates, strict=False):
            (FIXTURES / f"{shape}-{label}.json").write_bytes(message.value())
        (FIXTURES / f"{shape}-heartbeat.json").write_bytes(heartbeats[0].value())


def test_a_first_load_built_in_bulk_streams_every_row(
    postgres: Any, kafka: Any, kafka_connect: Any, database: DatabaseSettings
) -> None:
    """A bulk first load drops and adds the key in its transaction: Debezium sees plain inserts."""
    suffix = uuid.uuid4().hex[:8]
    prefix, name = f"fxbulk{suffix}", f"fxbulk-{suffix}"
    connect_db = as_connect_sees_it(database, postgres)
    client = ConnectClient(kafka_connect.url)
    topic = f"{prefix}.fxcortex.rates"
    consumer = capture_consumer(kafka, f"bulk-{suffix}")
    loaded = [
        quote(pair=pair, rate=f"1.{n:04d}", observed_at=datetime(2024, 1, 1, tzinfo=UTC) + n * DAY)
        for n in range(100)
        for pair in ("EUR/USD", "EUR/JPY", "USD/IRR")
    ]
    store = PostgresRateStore(database.conninfo, bulk_load_rows=100)
    messages: dict[int, Any] = {}
    try:
        client.register(
            connector_config(
                Settings(database=connect_db), name=name, heartbeat_ms=500, topic_prefix=prefix
            )
        )
        consumer.subscribe([topic, f"__debezium-heartbeat.{prefix}"])
        deadline = time.monotonic() + 120
        streaming = False  # a heartbeat: the (empty) snapshot is over, the WAL is being read
        while time.monotonic() < deadline and not streaming:
            message = consumer.poll(0.5)
            streaming = message is not None and message.error() is None
        assert streaming, "no heartbeat from the connector within 120 s"
        assert store.upsert(loaded).inserted == len(loaded)
        assert store.bulk_load_rows <= len(loaded)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(messages) < len(loaded):
            message = consumer.poll(0.5)
            if message is None or message.error() is not None or message.topic() != topic:
                continue
            messages[message.offset()] = message
    finally:
        _let_go(consumer, client, name, store)

    decoded = [
        decode(m.value(), topic=m.topic(), partition=m.partition(), offset=m.offset())
        for m in messages.values()
    ]
    assert all(c is not None and c.op is ChangeOp.CREATE for c in decoded)
    assert sorted((c.after for c in decoded if c is not None), key=repr) == sorted(loaded, key=repr)
    assert {tuple(json.loads(m.key())) for m in messages.values()} == {("base", "quote")}
