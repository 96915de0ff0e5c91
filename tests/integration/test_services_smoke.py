"""Smoke tests: every service of the backend is the real thing, and the CDC path works end to end.

PostgreSQL -> (pgoutput) -> Debezium on Kafka Connect -> Kafka -> a confluent-kafka consumer.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import psycopg
import pytest
import redis as redis_lib
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from redis.backoff import NoBackoff
from redis.retry import Retry

T = TypeVar("T")
POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` at ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except Exception as exc:  # the service may still be coming up: remember, retry
            last_error = exc
        else:
            if result:
                return result
        time.sleep(0.5)
    detail = f"; last error: {last_error!r}" if last_error else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}{detail}", pytrace=False)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def consumer_factory(kafka: Any) -> Iterator[Callable[[str], Consumer]]:
    consumers: list[Consumer] = []

    def make(topic: str) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                "group.id": unique("smoke"),
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        consumers.append(consumer)
        return consumer

    yield make
    for consumer in consumers:
        consumer.close()


def create_topic(bootstrap_servers: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    for future in admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1)]
    ).values():
        future.result(timeout=30)


def produce(bootstrap_servers: str, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap_servers, "acks": "all"})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0, "the message was not delivered within 30 s"


def consume_until(
    consumer: Consumer, accept: Callable[[bytes | None, bytes | None], bool], timeout: float
) -> tuple[bytes | None, bytes | None]:
    """Poll until a message that ``accept`` likes arrives; returns its (key, value)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        error = message.error()
        if error is not None:
            if error.retriable() or "UNKNOWN_TOPIC" in str(error):
                continue
            raise KafkaException(error)
        seen += 1
        if accept(message.key(), message.value()):
            return message.key(), message.value()
    pytest.fail(f"no matching message within {timeout:.0f} s ({seen} others seen)", pytrace=False)


# --------------------------------------------------------------------------- PostgreSQL
def test_postgres_creates_a_logical_replication_slot(postgres: Any) -> None:
    slot = unique("smoke_slot")
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
        row = conn.execute(
            "SELECT slot_name, lsn IS NOT NULL "
            "FROM pg_create_logical_replication_slot(%s, 'pgoutput')",
            (slot,),
        ).fetchone()
        assert row == (slot, True)
        plugin = conn.execute(
            "SELECT plugin FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()
        assert plugin == ("pgoutput",)
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


# --------------------------------------------------------------------------- Redis
def test_redis_set_get(redis: Any) -> None:
    client = redis_lib.Redis(host=redis.host, port=redis.port, socket_timeout=10)
    try:
        assert client.set("fxcortex:smoke", "EURUSD=1.0850")
        assert client.get("fxcortex:smoke") == b"EURUSD=1.0850"
        assert client.info("server")["redis_version"]
    finally:
        client.close()


# --------------------------------------------------------------------------- Kafka
def test_kafka_produces_and_consumes(
    kafka: Any, consumer_factory: Callable[[str], Consumer]
) -> None:
    topic = unique("smoke_topic")
    create_topic(kafka.bootstrap_servers, topic)
    consumer = consumer_factory(topic)
    produce(kafka.bootstrap_servers, topic, b"EURUSD", b'{"rate": "1.0850"}')
    _key, value = consume_until(consumer, lambda k, _v: k == b"EURUSD", timeout=60)
    assert value == b'{"rate": "1.0850"}'


# --------------------------------------------------------------------------- Connect + Debezium
def test_connect_lists_the_debezium_postgres_connector(kafka_connect: Any) -> None:
    plugins = kafka_connect.request("GET", "/connector-plugins")
    classes = {plugin["class"]: plugin for plugin in plugins}
    assert POSTGRES_CONNECTOR in classes, classes
    assert classes[POSTGRES_CONNECTOR]["type"] == "source"
    assert classes[POSTGRES_CONNECTOR]["version"].startswith("3.")


def test_debezium_streams_an_insert_to_kafka(
    postgres: Any, kafka: Any, kafka_connect: Any, consumer_factory: Callable[[str], Consumer]
) -> None:
    table = unique("fx_smoke")
    publication, slot, name = f"{table}_pub", f"{table}_slot", f"{table}-connector"
    topic = f"fxcortex.public.{table}"
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {table} (id serial PRIMARY KEY, pair text NOT NULL, "
            "rate numeric(18, 8) NOT NULL, observed_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.execute(f"ALTER TABLE {table} REPLICA IDENTITY FULL")
        conn.execute(f"CREATE PUBLICATION {publication} FOR TABLE {table}")

    config = {
        "connector.class": POSTGRES_CONNECTOR,
        "tasks.max": "1",
        # the database as Connect reaches it: 127.0.0.1:<port> for local processes, db:5432 on
        # the testcontainers network (postgres.host is this test process's address)
        **postgres.debezium_database_config(),
        "topic.prefix": "fxcortex",
        "plugin.name": "pgoutput",
        "publication.name": publication,
        "publication.autocreate.mode": "disabled",
        "slot.name": slot,
        "table.include.list": f"public.{table}",
        "decimal.handling.mode": "string",
        "key.converter": JSON_CONVERTER,
        "key.converter.schemas.enable": "false",
        "value.converter": JSON_CONVERTER,
        "value.converter.schemas.enable": "false",
    }
    kafka_connect.request("PUT", f"/connectors/{name}/config", config)
    try:

        def running() -> bool:
            status = kafka_connect.request("GET", f"/connectors/{name}/status")
            states = [status["connector"]["state"]] + [t["state"] for t in status["tasks"]]
            if "FAILED" in states:
                pytest.fail(f"connector failed: {json.dumps(status, indent=1)}", pytrace=False)
            return bool(status["tasks"]) and set(states) == {"RUNNING"}

        wait_for(running, 90, f"connector {name} and its task to run")
        consumer = consumer_factory(topic)
        with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
            conn.execute(f"INSERT INTO {table} (pair, rate) VALUES ('EURUSD', 1.085)")

        def is_insert(_key: bytes | None, value: bytes | None) -> bool:
            if value is None:
                return False
            event = json.loads(value)
            payload = event.get("payload", event)  # with or without the schema envelope
            return payload.get("op") in ("c", "r") and payload["after"]["pair"] == "EURUSD"

        key, value = consume_until(consumer, is_insert, timeout=90)
        assert value is not None
        assert key is not None
        event = json.loads(value)
        assert "schema" not in event  # schemas.enable=false: the bare Debezium envelope
        assert event["after"]["rate"] == "1.08500000"  # decimal.handling.mode=string
        assert event["source"]["connector"] == "postgresql"
        assert event["source"]["table"] == table
        assert json.loads(key) == {"id": event["after"]["id"]}
    finally:
        remove_connector(kafka_connect, postgres, name, slot, publication)


def remove_connector(
    kafka_connect: Any, postgres: Any, name: str, slot: str, publication: str
) -> None:
    """Best-effort cleanup that never hides the test's own failure."""
    with contextlib.suppress(Exception):
        kafka_connect.request("DELETE", f"/connectors/{name}")
    with (
        contextlib.suppress(Exception),
        psycopg.connect(postgres.conninfo, autocommit=True) as conn,
    ):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the task lets go of the slot shortly after DELETE
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if row is None or not row[0]:
                break
            time.sleep(0.5)
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = %s AND NOT active",
            (slot,),
        )
        conn.execute(f"DROP PUBLICATION IF EXISTS {publication}")


# --------------------------------------------------------------------------- kill / restart
@pytest.mark.process_control
def test_postgres_survives_kill_and_restart(postgres: Any) -> None:
    table = unique("fx_restart")
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (pair text PRIMARY KEY, rate numeric NOT NULL)")
        conn.execute(f"INSERT INTO {table} VALUES ('EURUSD', 1.085)")

    postgres.kill()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(postgres.conninfo, connect_timeout=3).close()

    postgres.restart()
    with psycopg.connect(postgres.conninfo, autocommit=True) as conn:
        assert conn.execute(f"SELECT rate::text FROM {table}").fetchone() == ("1.085",)
        conn.execute(f"DROP TABLE {table}")


@pytest.mark.process_control
def test_redis_survives_restart_and_kill(redis: Any) -> None:
    # no client-side retries: a dead server must show as an error at once
    client = redis_lib.Redis(
        host=redis.host, port=redis.port, socket_timeout=10, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.set("fxcortex:restart", "kept")
        redis.restart()  # graceful: the append-only file keeps the data
        assert client.get("fxcortex:restart") == b"kept"
        redis.kill()
        with pytest.raises(redis_lib.ConnectionError):
            client.ping()
        redis.restart()
        assert client.ping()
    finally:
        client.close()


def _clickhouse(sql: str, clickhouse: Any) -> str:
    request = urllib.request.Request(f"{clickhouse.url}/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return str(answer.read().decode())


def test_clickhouse_is_a_recent_server_with_the_tables_the_analytics_need(clickhouse: Any) -> None:
    major = int(_clickhouse("SELECT version()", clickhouse).split(".")[0])
    assert major >= 23  # DateTime64 and ReplacingMergeTree(version, is_deleted)
    table = f"default.{unique('smoke_rmt')}"
    _clickhouse(
        f"CREATE TABLE {table} (k String, at DateTime64(6, 'UTC'), v UInt64, is_deleted UInt8)"
        " ENGINE = ReplacingMergeTree(v, is_deleted) ORDER BY k",
        clickhouse,
    )
    _clickhouse(
        f"INSERT INTO {table} VALUES ('a', '2024-01-02 03:04:05.678901', 1, 0),"
        " ('a', '2024-01-02 03:04:05.678901', 2, 1), ('b', '2024-01-02 00:00:00', 1, 0)",
        clickhouse,
    )
    assert _clickhouse(f"SELECT k FROM {table} FINAL ORDER BY k", clickhouse) == "b\n"
    _clickhouse(f"DROP TABLE {table}", clickhouse)


@pytest.mark.process_control
def test_clickhouse_survives_kill_and_restart(clickhouse: Any) -> None:
    table = f"default.{unique('smoke_restart')}"
    _clickhouse(f"CREATE TABLE {table} (k String) ENGINE = MergeTree ORDER BY k", clickhouse)
    _clickhouse(f"INSERT INTO {table} VALUES ('kept')", clickhouse)
    clickhouse.kill()
    with pytest.raises(urllib.error.URLError, match="Connection refused"):
        _clickhouse("SELECT 1", clickhouse)
    clickhouse.restart()
    assert _clickhouse(f"SELECT k FROM {table}", clickhouse) == "kept\n"
    _clickhouse(f"DROP TABLE {table}", clickhouse)


@pytest.mark.process_control
def test_kafka_survives_kill_and_restart(
    kafka: Any, consumer_factory: Callable[[str], Consumer]
) -> None:
    topic = unique("smoke_restart")
    create_topic(kafka.bootstrap_servers, topic)
    produce(kafka.bootstrap_servers, topic, b"GBPUSD", b"before")
    kafka.kill()
    kafka.restart()
    produce(kafka.bootstrap_servers, topic, b"GBPUSD", b"after")
    consumer = consumer_factory(topic)
    values: list[bytes | None] = []

    def collect(_key: bytes | None, value: bytes | None) -> bool:
        values.append(value)
        return value == b"after"

    consume_until(consumer, collect, timeout=60)
    assert values == [b"before", b"after"]
