"""End-to-end latency of the distributed pipeline: PostgreSQL commit → analytics rows written.

One run, on real services started with ``services/local.py`` in a temporary folder (PostgreSQL,
Redis, Kafka, Kafka Connect with Debezium, and with ``--store clickhouse`` the ClickHouse HTTP
server; stopped afterwards):

1. bootstrap the rate store, register the Debezium connector;
2. run the analyzer service's loop (`run_service`: the Kafka change feed, every registered
   analyzer, the analytics store — chDB in-process by default, or the ClickHouse server — and
   the Redis cache) in a thread;
3. write ``--rate`` rows a second (default 1,000) for ``--seconds`` (default 60) into PostgreSQL
   through the rate store, in ``--ticks`` upserts a second;
4. for every change, latency = the moment its batch's analytics rows were written minus the
   PostgreSQL commit time Debezium reports for it (``source.ts_ms``) — what the analyzer's
   ``fxcortex_analyzer_end_to_end_latency_seconds`` histogram measures, here kept exactly.

Reports p50, p90, p99 and the maximum over the changes written after the first ``--warmup``
seconds, beside a ceiling: the latency of a consumer that only reads the same topic and
decodes each event (Debezium and Kafka's share of the latency, without any analytics).
Target: p99 ≤ 2 s. ``FXCORTEX_DISABLED_PLUGINS`` applies as usual::

    python benchmarks/bench_cdc_latency.py [--rate N] [--seconds S] [--ticks T] [--warmup S]
                                           [--store chdb|clickhouse]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer

from fxcortex.core import Pair, Quote, QuoteKind, make_plugin_manager
from fxcortex.runtime.adapters import redis as redis_adapter
from fxcortex.runtime.adapters.chdb import ChdbAnalyticsStore
from fxcortex.runtime.adapters.clickhouse import ClickHouseServerStore
from fxcortex.runtime.adapters.debezium import decode
from fxcortex.runtime.adapters.kafka import KafkaChangeFeed
from fxcortex.runtime.adapters.postgres import PostgresRateStore, migrate
from fxcortex.runtime.cli_analyzer import run_service
from fxcortex.runtime.config import ClickHouseSettings, DatabaseSettings, RedisSettings, Settings
from fxcortex.runtime.connector import ConnectClient, connector_config
from fxcortex.runtime.pipeline import Pipeline
from fxcortex.runtime.profiles import Stores

REPO = Path(__file__).resolve().parents[1]
PAIRS = [f"EUR/{code}" for code in ("USD", "GBP", "JPY", "CHF", "AUD", "CAD", "NZD", "SEK")]


class _Counter:
    def inc(self, amount: float = 1) -> None:
        """Store failures are not part of this benchmark."""


class LatencyRecorder:
    """Stands where `AnalyzerMetrics` stands in `run_analyzer`, keeping every latency exactly."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (commit time s, latency s)
        self.batches: list[tuple[float, int, float]] = []  # (written at, changes, insert s)
        self.store_failures = _Counter()
        self._lock = threading.Lock()

    def batch(self, committed_micros: Sequence[int], written_at: float, insert: float) -> None:
        """One batch's changes were written at ``written_at`` (seconds since the epoch)."""
        with self._lock:
            self.batches.append((written_at, len(committed_micros), insert))
            self.samples.extend(
                (micros / 1e6, written_at - micros / 1e6) for micros in committed_micros
            )

    def feed_state(self, pending: int, dead_lettered: int) -> None:
        """Lag is not part of this benchmark."""


def quotes_for_tick(tick: int, rows: int) -> list[Quote]:
    """``rows`` new observations spread over the pairs, each at its own instant."""
    start = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(seconds=tick)
    return [
        Quote(
            pair=Pair.of(*PAIRS[i % len(PAIRS)].split("/")),
            rate=Decimal("1.1") + Decimal(tick % 1000) / 100_000 + Decimal(i) / 10_000_000,
            observed_at=start + timedelta(microseconds=i),
            source="bench",
            kind=QuoteKind.MID,
        )
        for i in range(rows)
    ]


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def decode_only(bootstrap: str, topic: str, stop: Any, out: Any) -> None:
    """The ceiling: read and decode each event as it arrives; latency at decode time.

    Runs in a process of its own (``stop`` an Event, ``out`` a Queue of latency lists), so it
    takes no time from the analyzer's interpreter.
    """
    latencies: list[float] = []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ceiling-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        while not stop.is_set():
            for message in consumer.consume(1000, 0.05):
                if message.error() is not None or message.value() is None:
                    continue
                change = decode(
                    message.value(),
                    topic=topic,
                    partition=message.partition() or 0,
                    offset=message.offset() or 0,
                )
                if change is not None:
                    now = time.time()
                    latencies.append(now - change.committed_at.timestamp())
    finally:
        consumer.close()
        out.put(latencies)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000, help="rows a second (1000)")
    parser.add_argument("--seconds", type=int, default=60, help="how long to write (60)")
    parser.add_argument("--ticks", type=int, default=10, help="upserts a second (10)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds left out (5)")
    parser.add_argument(
        "--store",
        choices=["chdb", "clickhouse"],
        default="chdb",
        help="the analyzer writes to chDB in-process (default) or a ClickHouse server",
    )
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO / "services"))
    import local  # type: ignore[import-not-found]

    root = Path(tempfile.mkdtemp(prefix="fxcortex-bench-"))
    root.chmod(0o755)
    stack = local.LocalServices(root)
    try:
        names = ["postgres", "redis", "kafka", "kafka_connect"]
        stack.start(
            [*names, "clickhouse"] if args.store == "clickhouse" else names, report=sys.stderr
        )
        env = stack.env()
        return run(args, env, root)
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace, env: dict[str, str], root: Path) -> int:
    database = DatabaseSettings(
        host=env["DB_HOST"],
        port=int(env["DB_PORT"]),
        name=env["DB_NAME"],
        user=env["DB_USER"],
        password=env["DB_PASSWORD"],
    )
    with psycopg.connect(database.conninfo, autocommit=True) as conn:
        migrate(conn)
    prefix = f"fxbench{uuid.uuid4().hex[:6]}"
    topic = f"{prefix}.fxcortex.rates"
    connect = ConnectClient(env["CONNECT_URL"])
    connect.register(
        connector_config(Settings(database=database), name=prefix, topic_prefix=prefix)
    )
    rates = PostgresRateStore(database.conninfo)
    settings = Settings(profile="distributed", home=root / "analytics-home", database=database)
    feed = KafkaChangeFeed(env["KAFKA_BOOTSTRAP_SERVERS"], topic, group_id=f"{prefix}-analyzer")
    stores = Stores(
        rates=rates,
        feed=feed,
        cache=redis_adapter.RedisCache(
            redis_adapter.connect(
                RedisSettings(host=env["REDIS_HOST"], port=int(env["REDIS_PORT"]))
            )
        ),
        analytics=(
            ChdbAnalyticsStore(settings.analytics_path)
            if args.store == "chdb"
            else ClickHouseServerStore(
                ClickHouseSettings(
                    host=env["CLICKHOUSE_HOST"], port=int(env["CLICKHOUSE_PORT"]), database=prefix
                )
            )
        ),
    )
    pipeline = Pipeline(settings, make_plugin_manager(), stores)
    analyzers = ", ".join(sorted(pipeline.registry.analyzers))
    print(f"analyzers: {analyzers}", file=sys.stderr)
    recorder = LatencyRecorder()
    stop = threading.Event()
    service = threading.Thread(
        target=run_service, args=(pipeline, stop), kwargs={"metrics": recorder}, daemon=True
    )
    ceiling: list[float] = []
    ceiling_stop = multiprocessing.Event()
    ceiling_out: Any = multiprocessing.Queue()
    try:
        # Warm up: the first change creates the topic and the analyzer joins its group.
        rates.upsert(quotes_for_tick(-1, 1))
        service.start()
        deadline = time.monotonic() + 120
        while not recorder.samples and time.monotonic() < deadline:
            time.sleep(0.2)
        if not recorder.samples:
            print("the analyzer never saw the warm-up change", file=sys.stderr)
            return 1
        reader = multiprocessing.Process(
            target=decode_only,
            args=(env["KAFKA_BOOTSTRAP_SERVERS"], topic, ceiling_stop, ceiling_out),
            daemon=True,
        )
        reader.start()
        time.sleep(5.0)  # the ceiling's consumer has joined its group and read the warm-up
        started = time.time()
        per_tick = args.rate // args.ticks
        total = args.seconds * args.ticks
        print(f"writing {args.rate} rows/s for {args.seconds} s", file=sys.stderr)
        for tick in range(total):
            due = started + tick / args.ticks
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            rates.upsert(quotes_for_tick(tick, per_tick))
            if tick % (args.ticks * 10) == 0:
                print(f"  {tick // args.ticks} s", file=sys.stderr)
        written = total * per_tick
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            done = sum(1 for committed, _ in recorder.samples if committed >= started - 1)
            if done >= written:
                break
            time.sleep(0.5)
        behind = time.time() - started - args.seconds
    finally:
        stop.set()
        ceiling_stop.set()
        with contextlib.suppress(Exception):
            ceiling = ceiling_out.get(timeout=60)[1:]  # the warm-up change left out
        service.join(60)
        pipeline.close()
        connect.delete(prefix)
        connect.close()

    steady = [
        latency for committed, latency in recorder.samples if committed >= started + args.warmup
    ]
    ceiling_steady = ceiling[len(ceiling) * int(args.warmup) // max(1, args.seconds) :]
    print()
    print(f"end-to-end latency, {args.rate} rows/s for {args.seconds} s ({len(steady)} changes)")
    print(f"{'':28}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    for label, values in (
        ("analyzer (rows written)", steady),
        ("ceiling (decoded)", ceiling_steady),
    ):
        if not values:
            print(f"{label:28}no samples")
            continue
        cells = [percentile(values, q) for q in (0.5, 0.9, 0.99)] + [max(values)]
        print(f"{label:28}" + "".join(f"{value:8.3f}" for value in cells))
    print(f"caught up {behind:.1f} s after the last write; mean {statistics.fmean(steady):.3f} s")
    timed = [b for b in recorder.batches if b[0] >= started + args.warmup]
    if len(timed) > 1:
        cycle = (timed[-1][0] - timed[0][0]) / (len(timed) - 1)
        size = statistics.fmean(n for _, n, _ in timed)
        insert = statistics.fmean(s for _, _, s in timed)
        print(f"analyzer batches: {size:.0f} changes every {cycle:.3f} s, writes {insert:.3f} s")
    p99 = percentile(steady, 0.99)
    print(f"target p99 <= 2 s: {'met' if p99 <= 2.0 else 'MISSED'} ({p99:.3f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
