"""ETL → PostgreSQL → Debezium → Kafka → analyzer → analytics store, on the real services.

The ohlc bars the analyzer builds from the change stream (a snapshot, inserts, revisions and a
delete) equal the ones the embedded pipeline computes from the final PostgreSQL rows in one go.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

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


def _wait_for_messages(bootstrap_servers: str, topic: str, want: int) -> int:
    """Wait until the topic holds ``want`` messages (or its size holds for 10 s); its size."""
    watcher = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "watcher"})
    deadline = time.monotonic() + 120
    high, steady_since = -1, time.monotonic()
    try:
        while time.monotonic() < deadline and high < want:
            now = -1
            with contextlib.suppress(Exception):
                partitions = watcher.list_topics(topic, timeout=5).topics[topic].partitions
                now = sum(
                    watcher.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                    for p in partitions
                )
            if now != high:
                high, steady_since = now, time.monotonic()
            elif high > 0 and time.monotonic() - steady_since > 10:
                break
            time.sleep(0.3)
    finally:
        watcher.close()
    return high


def _worker(env: dict[str, str], args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("cdc_analyzer_worker.py")), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_mid_stream_and_restart_gives_identical_results(
    postgres: Any,
    kafka: Any,
    kafka_connect: Any,
    redis: Any,
    database: DatabaseSettings,
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    prefix, name = f"fxkill{suffix}", f"fxkill-{suffix}"
    pairs = ("EUR/USD", "EUR/GBP", "EUR/JPY", "EUR/CHF")
    rates = PostgresRateStore(database.conninfo)
    connect_db = DatabaseSettings(
        host=postgres.connect_host,
        port=postgres.connect_port,
        name=database.name,
        user=database.user,
        password=database.password,
    )
    client = ConnectClient(kafka_connect.url)
    topic = f"{prefix}.fxcortex.rates"
    try:
        client.register(
            connector_config(Settings(database=connect_db), name=name, topic_prefix=prefix)
        )
        rates.upsert(_quotes(pairs, range(0, 10)))  # snapshot reads
        _wait_for_messages(kafka.bootstrap_servers, topic, 40)  # the snapshot is done
        rates.upsert(_quotes(pairs, range(10, 1500)))
        rates.upsert(_quotes(pairs[:2], range(100, 400), bump="0.05"))
        rates.delete(_quotes(pairs[2:3], range(500, 600)))
        high = _wait_for_messages(kafka.bootstrap_servers, topic, 4 * 1500 + 2 * 300 + 2 * 100)
        assert high == 4 * 1500 + 2 * 300 + 2 * 100  # a tombstone follows each delete
        env = {
            **os.environ,
            "DB_HOST": database.host,
            "DB_PORT": str(database.port),
            "DB_NAME": database.name,
            "DB_USER": database.user,
            "DB_PASSWORD": database.password,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        }
        args = [
            str(tmp_path / "dist"),
            topic,
            f"analyzer-{suffix}",
            redis.host,
            str(redis.port),
            f"fxkill:{suffix}:",
            "200",
            "--until-idle",
        ]
        first = _worker(env, args)
        assert first.stdout is not None
        batches = 0
        while batches < 5:
            line = first.stdout.readline()
            assert line, first.stderr.read() if first.stderr else "worker ended"
            if line.startswith("batch ") and line.strip() != "batch 0":
                batches += 1
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)

        second = _worker(env, args)
        _out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err
        final_rows = list(rates.quotes())
    finally:
        with contextlib.suppress(Exception):
            client.delete(name)
        client.close()
        rates.close()

    with Pipeline.open(Settings(home=tmp_path / "dist")) as killed:
        streamed = killed.query(OHLC).rows
    with Pipeline.open(Settings(home=tmp_path / "batch")) as batch:
        batch.rates.upsert(final_rows)
        batch.analyze()
        recomputed = batch.query(OHLC).rows
    assert streamed
    assert streamed == recomputed
