"""Loading quotes into PostgreSQL: the rate store's COPY upsert beside its baseline and ceiling.

One run measures, on the same synthetic quotes (``--rows``, default 1,000,000: ten EUR pairs, one
tick a second) and the same server:

- **upsert**: `PostgresRateStore.upsert`, the real thing, into the real table (time-first primary
  key, REPLICA IDENTITY FULL, in the Debezium publication): a first load into the empty table
  (a large one, so the key's index is built after the rows), the same load into a table that
  holds another source's rows (nothing of this source in its span, so straight into the indexed
  table), the same load when one quote of its span is already stored (so through staging,
  UPDATE and INSERT … WHERE NOT EXISTS), and an unchanged reload of all of it;
- **on-conflict**: the same COPY into staging followed by one ``INSERT … ON CONFLICT … DO UPDATE
  … WHERE rate <> excluded.rate``, the single-statement form the store does not use (for scale);
- **baseline**: plain ``executemany`` of ``INSERT … ON CONFLICT … DO UPDATE … WHERE`` into the same
  table (all the quotes, or ``--baseline-rows``), and the same statement run once per row on a
  sample (``--rowwise-rows``, default 50,000: the million would take a minute a round), each
  reported as rows/s;
- **ceiling**: a bare binary COPY of the same rows, encoded as the store encodes them
  (`copy_chunks`), into an UNLOGGED table with no index: the practical maximum for getting
  these rows into this server from Python.

Every timing starts from the same list of `Quote` objects and includes turning them into rows.
Targets: upsert ≥ 100k rows/s, ≥ 10× the baseline, ≥ 40 % of the ceiling. psycopg 3's
``executemany`` pipelines its statements (no round trip per row), which makes it a far stronger
baseline than psycopg 2's was; the benchmark also times one ``execute`` per row, the old pace.

PostgreSQL comes from DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD when DB_HOST is set (the
benchmark works in a database of its own that it creates and drops), else it starts one with
``services/local.py`` in a temporary folder and stops it afterwards::

    python benchmarks/bench_pg_load.py [--rows N] [--baseline-rows N] [--rowwise-rows N]
                                       [--repeat K]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import psycopg

from fxcortex.core import Pair, Quote, QuoteKind
from fxcortex.runtime.adapters.pgcopy import copy_chunks
from fxcortex.runtime.adapters.postgres import (
    _COPY_STAGING,
    PostgresRateStore,
    migrate,
    quote_rows,
)
from fxcortex.runtime.config import DatabaseSettings

REPO = Path(__file__).resolve().parents[1]
CURRENCIES = ("USD", "JPY", "GBP", "CHF", "SEK", "NOK", "PLN", "CZK", "HUF", "AUD")
ON_CONFLICT = """
INSERT INTO fxcortex.rates AS r (source, base, quote, kind, observed_at, rate)
SELECT source, base, quote, kind, observed_at, trim_scale(rate) FROM pg_temp.fxcortex_staging
ON CONFLICT ON CONSTRAINT rates_natural_key DO UPDATE SET rate = excluded.rate
WHERE r.rate <> excluded.rate
"""
BASELINE = """
INSERT INTO fxcortex.rates AS r (source, base, quote, kind, observed_at, rate)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT ON CONSTRAINT rates_natural_key DO UPDATE SET rate = excluded.rate
WHERE r.rate <> excluded.rate
"""


def synthetic_quotes(count: int, *, source: str = "bench") -> list[Quote]:
    """``count`` mid quotes of ten EUR pairs, a tick a second, rates with five decimals."""
    pairs = [Pair.of("EUR", code) for code in CURRENCIES]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    second = timedelta(seconds=1)
    return [
        Quote(
            pair=pairs[i % len(pairs)],
            rate=Decimal(f"1.{(i * 7919) % 100_000:05d}"),
            observed_at=start + (i // len(pairs)) * second,
            source=source,
            kind=QuoteKind.MID,
        )
        for i in range(count)
    ]


@contextlib.contextmanager
def server() -> Iterator[DatabaseSettings]:
    """The PostgreSQL of the environment, or one started with services/local.py."""
    if os.environ.get("DB_HOST"):
        yield DatabaseSettings(
            host=os.environ["DB_HOST"],
            port=int(os.environ.get("DB_PORT", "5432")),
            name=os.environ.get("DB_NAME", "fxcortex"),
            user=os.environ.get("DB_USER", "fxcortex"),
            password=os.environ.get("DB_PASSWORD", ""),
        )
        return
    sys.path.insert(0, str(REPO / "services"))
    import local  # type: ignore[import-not-found]

    root = Path(tempfile.mkdtemp(prefix="fxcortex-bench-"))
    root.chmod(0o755)
    stack = local.LocalServices(root)
    try:
        stack.start(["postgres"], report=sys.stderr)
        env = stack.env()
        yield DatabaseSettings(
            host=env["DB_HOST"],
            port=int(env["DB_PORT"]),
            name=env["DB_NAME"],
            user=env["DB_USER"],
            password=env["DB_PASSWORD"],
        )
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def scratch_database(admin: DatabaseSettings) -> Iterator[DatabaseSettings]:
    """A database of its own, dropped afterwards."""
    name = f"fxbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin.conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield DatabaseSettings(
            host=admin.host, port=admin.port, name=name, user=admin.user, password=admin.password
        )
    finally:
        with psycopg.connect(admin.conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_schema(conninfo: str) -> None:
    """An empty rates table as `fxcortex bootstrap` makes it, checkpointed."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS fxcortex CASCADE")
        connection.execute("DROP PUBLICATION IF EXISTS fxcortex_rates")
        migrate(connection)
        connection.execute("CHECKPOINT")


def timed(work: Callable[[], Any]) -> float:
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def run_upsert(conninfo: str, quotes: list[Quote]) -> tuple[float, float]:
    fresh_schema(conninfo)
    store = PostgresRateStore(conninfo)
    try:
        first = timed(lambda: _expect(store.upsert(quotes).inserted, len(quotes)))
        again = timed(lambda: _expect(store.upsert(quotes).unchanged, len(quotes)))
    finally:
        store.close()
    return first, again


def run_upsert_beside(conninfo: str, quotes: list[Quote]) -> float:
    """A first load of a source into a table that holds rows: straight into the indexed table."""
    fresh_schema(conninfo)
    store = PostgresRateStore(conninfo)
    try:
        other = attrs.evolve(
            quotes[0], source="other", observed_at=datetime(2023, 1, 2, tzinfo=UTC)
        )
        store.upsert([other])
        return timed(lambda: _expect(store.upsert(quotes).inserted, len(quotes)))
    finally:
        store.close()


def run_upsert_staged(conninfo: str, quotes: list[Quote]) -> float:
    """A first load that must take the staging path: one quote of its span is already stored."""
    fresh_schema(conninfo)
    store = PostgresRateStore(conninfo)
    try:
        store.upsert(quotes[:1])
        return timed(lambda: _expect(store.upsert(quotes).inserted, len(quotes) - 1))
    finally:
        store.close()


def run_on_conflict(conninfo: str, quotes: list[Quote]) -> float:
    fresh_schema(conninfo)
    store = PostgresRateStore(conninfo)  # for its configured connection and staging table

    def load() -> None:
        with store.pool.connection() as connection:
            with connection.cursor() as cursor, cursor.copy(_COPY_STAGING) as copy:
                for chunk in copy_chunks(quotes):
                    copy.write(chunk)
            _expect(connection.execute(ON_CONFLICT).rowcount, len(quotes))

    try:
        return timed(load)
    finally:
        store.close()


def run_baseline(conninfo: str, quotes: list[Quote]) -> float:
    fresh_schema(conninfo)

    def load() -> None:
        with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
            cursor.executemany(BASELINE, list(quote_rows(quotes)))

    return timed(load)


def run_rowwise(conninfo: str, quotes: list[Quote]) -> float:
    """The baseline as psycopg 2 ran ``executemany``: one statement and round trip per row."""
    fresh_schema(conninfo)

    def load() -> None:
        with psycopg.connect(conninfo) as connection, connection.cursor() as cursor:
            for row in quote_rows(quotes):
                cursor.execute(BASELINE, row)

    return timed(load)


def run_ceiling(conninfo: str, quotes: list[Quote]) -> float:
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_ceiling")
        connection.execute(
            "CREATE UNLOGGED TABLE bench_ceiling (source text, base text, quote text,"
            " kind text, observed_at timestamptz, rate numeric)"
        )

    def load() -> None:
        with (
            psycopg.connect(conninfo) as connection,
            connection.cursor() as cursor,
            cursor.copy("COPY bench_ceiling FROM STDIN (FORMAT BINARY)") as copy,
        ):
            for chunk in copy_chunks(quotes):
                copy.write(chunk)

    try:
        return timed(load)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute("DROP TABLE IF EXISTS bench_ceiling")


def _expect(got: int, wanted: int) -> None:
    if got != wanted:
        raise AssertionError(f"expected {wanted:,} rows, got {got:,}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--baseline-rows", type=int, help="quotes for the executemany baseline (default: all)"
    )
    parser.add_argument(
        "--rowwise-rows", type=int, default=50_000, help="quotes for the per-row baseline"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is kept")
    args = parser.parse_args(argv)

    print(f"generating {args.rows:,} synthetic quotes …", file=sys.stderr)
    quotes = synthetic_quotes(args.rows)
    sample = quotes[: args.baseline_rows or args.rows]
    rowwise_sample = quotes[: args.rowwise_rows]
    best: dict[str, list[float]] = {}
    with server() as admin, scratch_database(admin) as database:
        conninfo = database.conninfo
        with psycopg.connect(conninfo) as connection:
            version = connection.execute("SHOW server_version").fetchone()
        print(
            f"PostgreSQL {version[0] if version else '?'} at {admin.host}:{admin.port}",
            file=sys.stderr,
        )
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}/{args.repeat} …", file=sys.stderr)
            best.setdefault("ceiling", []).append(run_ceiling(conninfo, quotes))
            first, again = run_upsert(conninfo, quotes)
            best.setdefault("upsert", []).append(first)
            best.setdefault("reload", []).append(again)
            best.setdefault("beside", []).append(run_upsert_beside(conninfo, quotes))
            best.setdefault("staged", []).append(run_upsert_staged(conninfo, quotes))
            best.setdefault("on-conflict", []).append(run_on_conflict(conninfo, quotes))
            best.setdefault("baseline", []).append(run_baseline(conninfo, sample))
            best.setdefault("rowwise", []).append(run_rowwise(conninfo, rowwise_sample))

    rows = {
        "ceiling": args.rows,
        "upsert": args.rows,
        "reload": args.rows,
        "beside": args.rows,
        "staged": args.rows,
        "on-conflict": args.rows,
        "baseline": len(sample),
        "rowwise": len(rowwise_sample),
    }
    rate = {name: rows[name] / min(times) for name, times in best.items()}
    labels = {
        "upsert": "COPY upsert, first load, empty table (the store)",
        "beside": "COPY upsert, first load beside other rows",
        "reload": "COPY upsert, unchanged reload (the store)",
        "staged": "COPY upsert via staging, 1 row overlapping",
        "on-conflict": "COPY + one INSERT … ON CONFLICT",
        "baseline": "executemany INSERT … ON CONFLICT (baseline)",
        "rowwise": "one execute per row, INSERT … ON CONFLICT",
        "ceiling": "bare binary COPY, UNLOGGED, no index (ceiling)",
    }
    print(f"\n{'method':<48}{'rows':>11}{'best s':>9}{'median s':>10}{'rows/s':>11}")
    for name in (
        "upsert",
        "beside",
        "staged",
        "reload",
        "on-conflict",
        "baseline",
        "rowwise",
        "ceiling",
    ):
        times = best[name]
        print(
            f"{labels[name]:<48}{rows[name]:>11,}{min(times):>9.2f}"
            f"{statistics.median(times):>10.2f}{rate[name]:>11,.0f}"
        )
    speedup = rate["upsert"] / rate["baseline"]
    share = rate["upsert"] / rate["ceiling"]
    checks = [
        (f"{rate['upsert']:,.0f} rows/s", "≥ 100,000 rows/s", rate["upsert"] >= 100_000),
        (f"{speedup:.1f}× the baseline", "≥ 10×", speedup >= 10),
        (f"{share:.0%} of the ceiling", "≥ 40 %", share >= 0.40),
    ]
    print()
    for measured, target, met in checks:
        print(f"upsert: {measured:<28} target {target:<18} {'met' if met else 'MISSED'}")
    print(
        f"beside other rows (key indexed row by row): {rate['beside'] / rate['baseline']:.1f}×"
        f" the baseline, {rate['beside'] / rate['ceiling']:.0%} of the ceiling"
    )
    reachable = rate["ceiling"] / rate["baseline"]
    print(
        f"ceiling: {reachable:.1f}× the baseline — no load into this server can beat a bare COPY"
        " into an unindexed, unlogged table, so a speedup target above this figure is out of"
        " reach here"
    )
    print(
        f"(executemany ran on {len(sample):,} quotes, one execute per row on"
        f" {len(rowwise_sample):,}, each into an empty table; psycopg 3's executemany pipelines"
        f" its statements: {rate['baseline'] / rate['rowwise']:.1f}× the one-round-trip-per-row"
        f" pace; best of {args.repeat} rounds)"
    )
    return 0  # a benchmark reports; it does not fail a build


if __name__ == "__main__":
    sys.exit(main())
