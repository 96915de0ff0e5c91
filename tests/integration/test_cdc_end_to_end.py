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

import pytest
from confluent_kafka import Consumer, TopicPartition
from databases import as_connect_sees_it, fresh_database

from fxcortex.core import AnalyticsStore, Quote, make_plugin_manager
from fxcortex.core.testing import quote
from fxcortex.runtime.adapters import redis as redis_adapter
from fxcortex.runtime.adapters.chdb import ChdbAnalyticsStore
from fxcortex.runtime.adapters.clickhouse import ClickHouseServerStore
from fxcortex.runtime.adapters.kafka import KafkaChangeFeed
from fxcortex.runtime.adapters.postgres import PostgresRateStore
from fxcortex.runtime.config import ClickHouseSettings, DatabaseSettings, RedisSettings, Settings
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
    with fresh_database(postgres, "fxe2e") as settings:
        yield settings


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


@pytest.mark.parametrize("analytics", ["chdb", "clickhouse-server"])
def test_stream_analytics_equal_a_batch_recompute(
    postgres: Any,
    kafka: Any,
    kafka_connect: Any,
    redis: Any,
    database: DatabaseSettings,
    tmp_path: Path,
    analytics: str,
    request: pytest.FixtureRequest,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    prefix, name = f"fxe2e{suffix}", f"fxe2e-{suffix}"
    pairs = ("EUR/USD", "EUR/GBP", "EUR/JPY")
    rates = PostgresRateStore(database.conninfo)
    rates.upsert(_quotes(pairs, range(0, 40)))  # before the connector: snapshot reads

    connect_db = as_connect_sees_it(database, postgres)
    client = ConnectClient(kafka_connect.url)
    client.register(connector_config(Settings(database=connect_db), name=name, topic_prefix=prefix))
    # The writes below must come after the snapshot, or it reads their result instead of their
    # events (a Connect worker busy rebalancing can start the task late).
    assert _wait_for_messages(kafka.bootstrap_servers, f"{prefix}.fxcortex.rates", 3 * 40) == 120
    settings = Settings(profile="distributed", home=tmp_path / "dist", database=database)
    store: AnalyticsStore
    if analytics == "chdb":
        store = ChdbAnalyticsStore(settings.analytics_path)
    else:
        server = request.getfixturevalue("clickhouse")
        store = ClickHouseServerStore(
            ClickHouseSettings(host=server.host, port=server.port, database=f"fxe2e_{suffix}")
        )
    stores = Stores(
        rates=rates,
        feed=KafkaChangeFeed(
            kafka.bootstrap_servers, f"{prefix}.fxcortex.rates", group_id=f"analyzer-{suffix}"
        ),
        cache=redis_adapter.RedisCache(
            redis_adapter.connect(RedisSettings(host=redis.host, port=redis.port)),
            prefix=f"fxe2e:{suffix}:",
        ),
        analytics=store,
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


COMPARED = {
    "ohlc": OHLC,
    "returns": "SELECT * FROM returns ORDER BY ALL",
    "gaps": "SELECT * FROM gaps ORDER BY ALL",
    "rates_mirror": "SELECT * FROM rates_mirror ORDER BY ALL",
}


def _assert_tables_equal_a_recompute(
    streamed: Path | ClickHouseSettings, batch: Path, final_rows: list[Quote]
) -> None:
    """The streamed tables (chDB under a home, or a ClickHouse server database) equal those
    computed once from the final PostgreSQL rows."""
    if isinstance(streamed, Path):
        with Pipeline.open(Settings(home=streamed)) as pipeline:
            tables = {table: pipeline.query(sql).rows for table, sql in COMPARED.items()}
    else:
        server = ClickHouseServerStore(streamed)
        try:
            tables = {table: server.query(sql).rows for table, sql in COMPARED.items()}
        finally:
            server.close()
    with Pipeline.open(Settings(home=batch)) as pipeline:
        pipeline.rates.upsert(final_rows)
        pipeline.analyze()
        recomputed = {table: pipeline.query(sql).rows for table, sql in COMPARED.items()}
    assert len(tables["rates_mirror"]) == len(final_rows)  # nothing lost, nothing doubled
    for table in COMPARED:
        assert tables[table], table
        assert tables[table] == recomputed[table], table


def _wait_for_messages(bootstrap_servers: str, topic: str, want: int, timeout: float = 120) -> int:
    """Wait until the topic holds ``want`` messages (or its size holds for 10 s); its size."""
    watcher = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "watcher"})
    deadline = time.monotonic() + timeout
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


@pytest.mark.parametrize("analytics", ["chdb", "clickhouse-server"])
def test_sigkill_mid_stream_and_restart_gives_identical_results(
    postgres: Any,
    kafka: Any,
    kafka_connect: Any,
    redis: Any,
    database: DatabaseSettings,
    tmp_path: Path,
    analytics: str,
    request: pytest.FixtureRequest,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    prefix, name = f"fxkill{suffix}", f"fxkill-{suffix}"
    pairs = ("EUR/USD", "EUR/GBP", "EUR/JPY", "EUR/CHF")
    rates = PostgresRateStore(database.conninfo)
    connect_db = as_connect_sees_it(database, postgres)
    client = ConnectClient(kafka_connect.url)
    topic = f"{prefix}.fxcortex.rates"
    try:
        client.register(
            connector_config(Settings(database=connect_db), name=name, topic_prefix=prefix)
        )
        rates.upsert(_quotes(pairs, range(0, 10)))  # snapshot reads
        _wait_for_messages(kafka.bootstrap_servers, topic, 40)  # the snapshot is done
        rates.upsert(_quotes(pairs, range(10, 23_000)))
        rates.upsert(_quotes(pairs[:2], range(100, 3_100), bump="0.05"))
        rates.delete(_quotes(pairs[2:4], range(500, 1_500)))
        changes = 4 * 23_000 + 2 * 3_000 + 2 * 1_000  # 100,000
        high = _wait_for_messages(kafka.bootstrap_servers, topic, changes + 2_000, timeout=600)
        assert high == changes + 2_000  # a tombstone follows each delete
        env = {
            **os.environ,
            "DB_HOST": database.host,
            "DB_PORT": str(database.port),
            "DB_NAME": database.name,
            "DB_USER": database.user,
            "DB_PASSWORD": database.password,
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            # The ML models are deterministic per stream, not comparable to a batch recompute.
            "FXCORTEX_DISABLED_PLUGINS": "forecast,online_anomaly",
        }
        streamed: Path | ClickHouseSettings = tmp_path / "dist"
        if analytics == "clickhouse-server":
            server = request.getfixturevalue("clickhouse")
            streamed = ClickHouseSettings(
                host=server.host, port=server.port, database=f"fxkill_{suffix}"
            )
            env |= {
                "CLICKHOUSE_HOST": server.host,
                "CLICKHOUSE_PORT": str(server.port),
                "CLICKHOUSE_DATABASE": streamed.database,
            }
        args = [
            str(tmp_path / "dist"),
            topic,
            f"analyzer-{suffix}",
            redis.host,
            str(redis.port),
            f"fxkill:{suffix}:",
            "5000",
            "--until-idle",
        ]
        first = _worker(env, args)
        assert first.stdout is not None
        batches = 0
        while batches < 6:  # 30,000 of the 100,000 changes applied, then the kill
            line = first.stdout.readline()
            assert line, first.stderr.read() if first.stderr else "worker ended"
            if line.startswith("batch ") and line.strip() != "batch 0":
                batches += 1
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)

        second = _worker(env, args)
        _out, err = second.communicate(timeout=600)
        assert second.returncode == 0, err
        final_rows = list(rates.quotes())
    finally:
        with contextlib.suppress(Exception):
            client.delete(name)
        client.close()
        rates.close()

    assert len(final_rows) == 4 * 23_000 - 2_000
    _assert_tables_equal_a_recompute(streamed, tmp_path / "batch", final_rows)


def test_kafka_connect_killed_and_restarted_mid_stream_loses_no_change(
    postgres: Any,
    kafka: Any,
    kafka_connect: Any,
    redis: Any,
    database: DatabaseSettings,
    tmp_path: Path,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    prefix, name = f"fxconn{suffix}", f"fxconn-{suffix}"
    pairs = ("EUR/USD", "EUR/GBP", "EUR/JPY", "EUR/CHF")
    rates = PostgresRateStore(database.conninfo)
    connect_db = as_connect_sees_it(database, postgres)
    client = ConnectClient(kafka_connect.url)
    topic = f"{prefix}.fxcortex.rates"
    settings = Settings(profile="distributed", home=tmp_path / "dist", database=database)
    pipeline = Pipeline(
        settings,
        make_plugin_manager(),
        Stores(
            rates=rates,
            feed=KafkaChangeFeed(kafka.bootstrap_servers, topic, group_id=f"analyzer-{suffix}"),
            cache=redis_adapter.RedisCache(
                redis_adapter.connect(RedisSettings(host=redis.host, port=redis.port)),
                prefix=f"fxconn:{suffix}:",
            ),
            analytics=ChdbAnalyticsStore(settings.analytics_path),
        ),
    )
    try:
        client.register(
            connector_config(Settings(database=connect_db), name=name, topic_prefix=prefix)
        )
        rates.upsert(_quotes(pairs, range(0, 10)))  # snapshot reads
        _wait_for_messages(kafka.bootstrap_servers, topic, 40)
        # Past the initial snapshot: its end is in Connect's offsets (flushed every second).
        # Killed within a second or so of the snapshot, the worker found its offset still saying
        # "snapshot not completed" on restart and ran the snapshot again, and the mirror never
        # matched the rate store (deletes made in between are not in a snapshot): see the README.
        time.sleep(5.0)
        # A stream under way when the Connect worker dies: some of it sent, some not.
        for start in range(10, 4_010, 500):
            rates.upsert(_quotes(pairs, range(start, start + 500)))
        kafka_connect.kill()
        rates.upsert(_quotes(pairs[:2], range(100, 1_100), bump="0.05"))  # while it is down
        rates.delete(_quotes(pairs[2:3], range(200, 400)))
        kafka_connect.restart()  # the connector resumes from its committed source offsets
        rates.upsert(_quotes(pairs, range(4_010, 4_510)))  # after it is back

        final_rows = list(rates.quotes())
        assert len(final_rows) == 4 * 4_510 - 200
        # Catch up until the analytics store mirrors every final row (or give up after 5 min).
        deadline = time.monotonic() + 300
        mirrored = -1
        while time.monotonic() < deadline and mirrored != len(final_rows):
            pipeline.analyze(max_batches=1)
            mirrored = pipeline.query("SELECT count() FROM rates_mirror").rows[0][0]
        pipeline.analyze()  # and anything after (re-sent events change nothing)
    finally:
        with contextlib.suppress(Exception):
            kafka_connect.ensure_running()
            client.delete(name)
        client.close()
        pipeline.close()

    _assert_tables_equal_a_recompute(tmp_path / "dist", tmp_path / "batch", final_rows)
