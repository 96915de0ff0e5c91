"""ETL → PostgreSQL → Debezium → Kafka → analyzer → analytics store, on the real services.

The ohlc bars the analyzer builds from the change stream (a snapshot, inserts, revisions and a
delete) equal the ones the embedded pipeline computes from the final PostgreSQL rows in one go.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fxcortex.core import Quote, make_plugin_manager
from fxcortex.core.testing import quote
from fxcortex.runtime.adapters import redis as redis_adapter
from fxcortex.runtime.adapters.chdb import ChdbAnalyticsStore
from fxcortex.runtime.adapters.kafka import KafkaChangeFeed
from fxcortex.runtime.adapters.postgres import PostgresRateStore, migrate
from fxcortex.runtime.config import DatabaseSettings, RedisSettings, Settings
from fxcortex.runtime.connector import ConnectClient, connector_config
from fxcortex.runtime.pipeline import Pipeline
from fxcortex.runtime.profiles import Stores

OHLC = (
    "SELECT source, base, quote, kind, resolution, bucket_start, open, high, low, close,"
    " observations FROM ohlc ORDER BY source, base, quote, kind, resolution, bucket_start"
)
START = datetime(2024, 1, 1, 13, 0, tzinfo=UTC)


@pytest.fixture
def database(postgres: Any) -> Iterator[DatabaseSettings]:
    name = f"fxe2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    settings = DatabaseSettings(
        host=postgres.host,
        port=postgres.port,
        name=name,
        user=postgres.user,
        password=postgres.password,
    )
    with psycopg.connect(settings.conninfo, autocommit=True) as conn:
        migrate(conn)
    yield settings
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = admin.execute(
                "SELECT count(*) FROM pg_replication_slots WHERE database = %s AND active", (name,)
            ).fetchone()
            if not row or not row[0]:
                break
            time.sleep(0.5)
        for (slot,) in admin.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)
        ).fetchall():
            with contextlib.suppress(Exception):
                admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _quotes(pairs: tuple[str, ...], days: range, bump: str = "0") -> list[Quote]:
    return [
        quote(
            pair=pair,
            rate=str(1 + (index * 7 + day * 13) % 97 / 1000 + float(bump)),
            observed_at=START + timedelta(days=day),
            source="ecb",
        )
        for index, pair in enumerate(pairs)
        for day in days
    ]


def test_stream_analytics_equal_a_batch_recompute(
    postgres: Any,
    kafka: Any,
    kafka_connect: Any,
    redis: Any,
    database: DatabaseSettings,
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    prefix, name = f"fxe2e{suffix}", f"fxe2e-{suffix}"
    pairs = ("EUR/USD", "EUR/GBP", "EUR/JPY")
    rates = PostgresRateStore(database.conninfo)
    rates.upsert(_quotes(pairs, range(0, 40)))  # before the connector: snapshot reads

    connect_db = DatabaseSettings(
        host=postgres.connect_host,
        port=postgres.connect_port,
        name=database.name,
        user=database.user,
        password=database.password,
    )
    client = ConnectClient(kafka_connect.url)
    client.register(connector_config(Settings(database=connect_db), name=name, topic_prefix=prefix))
    settings = Settings(profile="distributed", home=tmp_path / "dist", database=database)
    stores = Stores(
        rates=rates,
        feed=KafkaChangeFeed(
            kafka.bootstrap_servers, f"{prefix}.fxcortex.rates", group_id=f"analyzer-{suffix}"
        ),
        cache=redis_adapter.RedisCache(
            redis_adapter.connect(RedisSettings(host=redis.host, port=redis.port)),
            prefix=f"fxe2e:{suffix}:",
        ),
        analytics=ChdbAnalyticsStore(settings.analytics_path),
    )
    pipeline = Pipeline(settings, make_plugin_manager(), stores)
    try:
        rates.upsert(_quotes(pairs, range(40, 80)))  # streamed inserts
        rates.upsert(_quotes(pairs[:1], range(30, 50), bump="0.05"))  # revisions
        rates.delete(_quotes(pairs[1:2], range(60, 62)))  # deletes
        expected_changes = 3 * 40 + 3 * 40 + 20 + 2
        seen = 0
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            batch = pipeline.analyze(max_batches=1).changes
            seen += batch
            if seen >= expected_changes and batch == 0:
                break
        assert seen == expected_changes
        streamed = pipeline.query(OHLC).rows
        final_rows = list(rates.quotes())
    finally:
        with contextlib.suppress(Exception):
            client.delete(name)
        client.close()
        pipeline.close()

    assert len(final_rows) == 3 * 80 - 2
    with Pipeline.open(Settings(home=tmp_path / "batch")) as batch:
        batch.rates.upsert(final_rows)
        batch.analyze()
        recomputed = batch.query(OHLC).rows
    assert streamed
    assert streamed == recomputed
