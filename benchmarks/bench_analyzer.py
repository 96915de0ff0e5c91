"""The analyzer's throughput on a Kafka topic of Debezium events, beside a ceiling and a baseline.

One run, on a real Kafka broker started with ``services/local.py`` in a temporary folder (or the
one ``KAFKA_BOOTSTRAP_SERVERS`` names), stopped afterwards:

1. produce ``--events`` (default 1,000,000) Debezium JSON envelopes of ``fxcortex.rates`` (the
   connector's wire format: no embedded schemas, decimals as strings) to a topic of four
   partitions keyed by pair, as the connector does: twenty pairs of one-second ticks, every tenth
   change a revision (``u`` with its before image). Not timed.
2. **ceiling**: a bare confluent-kafka consumer reading the whole topic in batches of 10,000
   with the feed's fetch settings (`FETCH_SETTINGS`), decoding nothing: the fastest this
   process can take the events off the broker (best of ``--repeat`` rounds, default 3: the
   broker shares the machine's two cores).
3. **decoding floor**: the same consumer decoding every message as the analyzer's feed does
   (`decode_row`) and nothing else, best of ``--repeat`` rounds: no analyzer can go faster, so
   this says how much of the ceiling is left for analytics, writes, state and commits.
4. **analyzer**: the real loop (`run_analyzer`: `KafkaChangeFeed` decoding, every analyzer,
   writes to the analytics store — chDB in-process, or with ``--store clickhouse`` a ClickHouse
   HTTP server started beside Kafka — state to the cache, offsets committed after each batch of
   ``--batch`` changes). Once with ``ohlc`` alone, once with every non-ML analytic (ML ones:
   ``forecast``, ``online_anomaly``; their own rate is in ``bench_analytics.py``).
5. **naive**: a per-message consumer that decodes each event and inserts one row into chDB
   with one INSERT, on the first ``--naive-events`` (default 5,000).

Each analyzer run has a group and an analytics folder of its own. Target (issue "CDC to
analytics"): ≥ 50,000 events/s per process and ≥ 30 % of the ceiling. The decoding floor alone
measures 29-30 % of the ceiling on the development machine (decoding a message costs about 2.5
times taking it off the broker), so the share is out of reach for any analyzer that decodes JSON
in Python; the table shows the floor beside it::

    python benchmarks/bench_analyzer.py [--events N] [--batch N] [--naive-events N]
                                        [--store chdb|clickhouse]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from fxcortex.core import AnalyticsStore, make_plugin_manager
from fxcortex.core.plugins import Registry
from fxcortex.runtime.adapters.chdb import ChdbAnalyticsStore
from fxcortex.runtime.adapters.clickhouse import ClickHouseServerStore
from fxcortex.runtime.adapters.debezium import decode, decode_row
from fxcortex.runtime.adapters.kafka import FETCH_SETTINGS, KafkaChangeFeed
from fxcortex.runtime.adapters.sqlite import SqliteCache
from fxcortex.runtime.analyzer import run_analyzer
from fxcortex.runtime.config import ClickHouseSettings

REPO = Path(__file__).resolve().parents[1]
PARTITIONS = 4
PAIRS = [
    f"{base}/{quote}"
    for base in ("EUR", "GBP", "AUD", "NZD")
    for quote in ("USD", "JPY", "CHF", "CAD", "SEK")
]
ML_ANALYTICS = frozenset({"forecast", "online_anomaly"})
TARGET_EVENTS_PER_SECOND = 50_000
TARGET_SHARE_OF_CEILING = 0.30


@contextmanager
def services(names: list[str]) -> Iterator[dict[str, str]]:
    """The environment's services, or ones started with services/local.py."""
    wanted = {"kafka": "KAFKA_BOOTSTRAP_SERVERS", "clickhouse": "CLICKHOUSE_HOST"}
    if all(os.environ.get(wanted[name]) for name in names):
        yield dict(os.environ)
        return
    sys.path.insert(0, str(REPO / "services"))
    import local  # type: ignore[import-not-found]

    root = Path(tempfile.mkdtemp(prefix="fxcortex-bench-"))
    root.chmod(0o755)
    stack = local.LocalServices(root)
    try:
        stack.start(names, report=sys.stderr)
        yield stack.env()
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def open_store(kind: str, folder: Path, env: dict[str, str]) -> AnalyticsStore:
    """The analytics store the analyzer writes to: chDB in ``folder``, or the ClickHouse server."""
    if kind == "chdb":
        return ChdbAnalyticsStore(folder / "analytics")
    settings = ClickHouseSettings(
        host=env["CLICKHOUSE_HOST"],
        port=int(env.get("CLICKHOUSE_PORT", "8123")),
        database=f"fxbench_{uuid.uuid4().hex[:8]}",
    )
    return ClickHouseServerStore(settings)


def envelope(op: str, pair: str, second: int, rate: str, before: str | None, now_ms: int) -> bytes:
    """One change of ``fxcortex.rates`` as the connector writes it."""
    base, quote = pair.split("/")
    observed = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=second)
    row = {
        "source": "bench",
        "base": base,
        "quote": quote,
        "kind": "mid",
        "observed_at": observed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "rate": rate,
    }
    document = {
        "before": None if before is None else {**row, "rate": before},
        "after": row,
        "source": {
            "version": "3.6.1.Final",
            "connector": "postgresql",
            "name": "fxbench",
            "ts_ms": now_ms,
            "snapshot": "false",
            "db": "fxcortex",
            "schema": "fxcortex",
            "table": "rates",
            "txId": 1,
            "lsn": 1,
        },
        "transaction": None,
        "op": op,
        "ts_ms": now_ms,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def produce(bootstrap: str, topic: str, events: int) -> None:
    """``events`` changes: ticks round-robin over the pairs, every tenth a revision."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1_000_000})
    now_ms = int(time.time() * 1000)
    last_rate: dict[str, tuple[int, str]] = {}
    for n in range(events):
        pair = PAIRS[n % len(PAIRS)]
        second = n // len(PAIRS)
        if n % 10 == 9 and pair in last_rate:  # revise this pair's previous tick
            old_second, old_rate = last_rate[pair]
            rate = f"{1 + (n % 997) / 10_000:.4f}"
            value = envelope("u", pair, old_second, rate, old_rate, now_ms)
        else:
            rate = f"{1 + (n % 991) / 10_000:.4f}"
            value = envelope("c", pair, second, rate, None, now_ms)
            last_rate[pair] = (second, rate)
        key = json.dumps({"base": pair[:3], "quote": pair[4:]}).encode()
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        if n % 100_000 == 0:
            producer.poll(0)
            print(f"  produced {n:,}", file=sys.stderr)
    producer.flush(120)


def fresh_consumer(bootstrap: str, topic: str, role: str) -> Consumer:
    """A consumer of ``topic`` in a new group of its own, reading from the start."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{role}-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            # as the analyzer's feed reads: without it a consumer busy between polls waits out
            # librdkafka's fetch backoff, and so would the ceiling's rounds now and then
            **FETCH_SETTINGS,
        }
    )
    consumer.subscribe([topic])
    return consumer


def bare_consumer(bootstrap: str, topic: str, events: int, *, decoding: bool) -> float:
    """Events/s of a consumer that reads the topic and does nothing else, or only decodes.

    Without ``decoding``: the ceiling, the fastest this process takes events off the broker.
    With it: the decoding floor, every message decoded as the analyzer's feed does
    (`decode_row`, the msgspec path) before any analytic, write, state or commit; no analyzer
    can beat it.
    """
    consumer = fresh_consumer(bootstrap, topic, "decoding" if decoding else "ceiling")
    seen = 0
    started = None
    while seen < events:
        messages = consumer.consume(10_000, 5.0)
        if started is None and messages:
            started = time.perf_counter()
        for message in messages:
            if message.error() is not None:
                continue
            if decoding:
                decode_row(
                    message.value(),
                    topic=topic,
                    partition=message.partition() or 0,
                    offset=message.offset() or 0,
                )
            seen += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return events / elapsed


def analyzer(
    env: dict[str, str], topic: str, events: int, batch: int, only: set[str] | None, store_kind: str
) -> float:
    """Events/s of the real analyzer loop with the chosen analytics."""
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    registry = Registry.collect(make_plugin_manager())
    analyzers = [
        a
        for name, a in registry.analyzers.items()
        if (only is None and name not in ML_ANALYTICS) or (only is not None and name in only)
    ]
    folder = Path(tempfile.mkdtemp(prefix="fxcortex-bench-analyzer-"))
    store = open_store(store_kind, folder, env)
    store.ensure_tables([spec for a in analyzers for spec in a.tables])
    cache = SqliteCache(folder / "cache.sqlite")
    feed = KafkaChangeFeed(
        bootstrap, topic, group_id=f"analyzer-{uuid.uuid4().hex[:6]}", batch_timeout=5.0
    )
    intervals = {"bench": timedelta(seconds=1)}
    try:
        done = 0
        # The group's first assignment and fetch are not the analyzer's work: start the clock at
        # the first batch in hand.
        first = run_analyzer(
            feed,
            analyzers,
            store=store,
            cache=cache,
            intervals=intervals,
            batch_size=batch,
            max_batches=1,
        )
        done += first.changes
        started = time.perf_counter()
        while done < events:
            result = run_analyzer(
                feed,
                analyzers,
                store=store,
                cache=cache,
                intervals=intervals,
                batch_size=batch,
                max_batches=1,  # one at a time: no wait for more once all is read
            )
            if result.changes == 0:
                break
            done += result.changes
            if done % 200_000 < batch:
                print(f"  analyzed {done:,}", file=sys.stderr)
        elapsed = time.perf_counter() - started
    finally:
        feed.close()
        store.close()
        cache.close()
        shutil.rmtree(folder, ignore_errors=True)
    return (done - first.changes) / elapsed


def naive(bootstrap: str, topic: str, events: int) -> float:
    """Events/s of decoding each message and inserting it with its own INSERT."""
    folder = Path(tempfile.mkdtemp(prefix="fxcortex-bench-naive-"))
    db: Any = importlib.import_module("chdb.session").Session(str(folder))
    db.query(
        "CREATE TABLE rates (source String, base String, quote String, kind String,"
        " observed_at DateTime64(6, 'UTC'), rate Decimal(38, 18), position UInt64)"
        " ENGINE = ReplacingMergeTree(position) ORDER BY (source, base, quote, kind, observed_at)"
    )
    consumer = fresh_consumer(bootstrap, topic, "naive")
    done = 0
    started = None
    try:
        while done < events:
            message = consumer.poll(5.0)
            if message is None or message.error() is not None:
                continue
            if started is None:
                started = time.perf_counter()
            change = decode(
                message.value(),
                topic=topic,
                partition=message.partition() or 0,
                offset=message.offset() or 0,
            )
            if change is not None and change.after is not None:
                q = change.after
                db.query(
                    "INSERT INTO rates VALUES ("
                    f"'{q.source}', '{q.pair.base.code}', '{q.pair.quote.code}', '{q.kind.value}',"
                    f" '{q.observed_at.strftime('%Y-%m-%d %H:%M:%S.%f')}', {q.rate},"
                    f" {change.position})"
                )
            consumer.commit(message=message, asynchronous=True)
            done += 1
    finally:
        consumer.close()
        db.close()
        shutil.rmtree(folder, ignore_errors=True)
    return done / (time.perf_counter() - (started or time.perf_counter()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000, help="changes per batch (50,000)")
    parser.add_argument("--naive-events", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3, help="ceiling rounds (best counts)")
    parser.add_argument(
        "--store",
        choices=["chdb", "clickhouse"],
        default="chdb",
        help="the analyzer writes to chDB in-process (default) or a ClickHouse server",
    )
    args = parser.parse_args(argv)

    names = ["kafka"] if args.store == "chdb" else ["kafka", "clickhouse"]
    with services(names) as env:
        bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
        topic = f"fxbench-{uuid.uuid4().hex[:8]}"
        print(f"producing {args.events:,} events to {topic}", file=sys.stderr)
        produce(bootstrap, topic, args.events)
        print("ceiling", file=sys.stderr)
        top = max(
            bare_consumer(bootstrap, topic, args.events, decoding=False) for _ in range(args.repeat)
        )
        print("decoding floor", file=sys.stderr)
        floor = max(
            bare_consumer(bootstrap, topic, args.events, decoding=True) for _ in range(args.repeat)
        )
        print("analyzer: ohlc", file=sys.stderr)
        ohlc_rate = analyzer(env, topic, args.events, args.batch, {"ohlc"}, args.store)
        print("analyzer: every non-ML analytic", file=sys.stderr)
        all_rate = analyzer(env, topic, args.events, args.batch, None, args.store)
        print("naive", file=sys.stderr)
        naive_rate = naive(bootstrap, topic, args.naive_events)

    print()
    print(
        f"{args.events:,} Debezium events, {PARTITIONS} partitions, batches of {args.batch:,},"
        f" analytics store: {args.store}"
    )
    print(f"{'consumer':34}{'events/s':>12}{'x naive':>9}{'of ceiling':>12}  verdict")
    for label, rate in (
        ("ceiling (consume, no decoding)", top),
        ("consume + decode, nothing else", floor),
        ("analyzer: ohlc", ohlc_rate),
        ("analyzer: every non-ML analytic", all_rate),
        (f"naive (first {args.naive_events:,})", naive_rate),
    ):
        verdict = ""
        if label.startswith("analyzer"):
            fast = rate >= TARGET_EVENTS_PER_SECOND
            share = rate / top >= TARGET_SHARE_OF_CEILING
            verdict = ("ok" if fast else "SLOW (>= 50,000/s)") + (
                "" if share else ", LOW (>= 30 % of ceiling)"
            )
        print(f"{label:34}{rate:12,.0f}{rate / naive_rate:8.1f}x{rate / top:11.1%}  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
