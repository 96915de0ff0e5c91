"""Distributed ingestion on the real PostgreSQL and Redis: no mocks.

Each test gets a database of its own (created from the ``postgres`` service, dropped afterwards)
and a Redis database number of its own, flushed first. Change events are read the way Debezium
reads them, from a logical replication slot (``test_decoding`` here, so they can be counted as
text): a re-fetch of unchanged data must produce none, a revision exactly one UPDATE.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
import redis as redis_lib

from fxcortex.core import (
    FetchContext,
    FetchWindow,
    Quote,
    Schedule,
    SourceError,
    StoreError,
    hookimpl,
)
from fxcortex.core.testing import quote
from fxcortex.runtime.adapters.postgres import PUBLICATION, PostgresRateStore, migrate
from fxcortex.runtime.adapters.redis import RedisLock
from fxcortex.runtime.config import DatabaseSettings, RedisSettings, Settings
from fxcortex.runtime.ingest import Ingestor, bootstrap
from fxcortex.runtime.metrics import IngestMetrics
from fxcortex.runtime.scheduler import Job, SchedulerService

REPO = Path(__file__).resolve().parents[2]
_redis_dbs = itertools.cycle(range(1, 16))


# --------------------------------------------------------------------------- a scripted source
@attrs.define(eq=False)
class ScriptedSource:
    """A source whose quotes, failures and pace the test decides."""

    name: str = "scripted"
    description: str = "quotes set by the test"
    schedule: Schedule = Schedule(cron="0 0 1 1 *")  # far away: tests start runs themselves
    currencies: tuple[str, ...] = ()
    history_since: date | None = None
    observation_interval: timedelta = timedelta(days=1)
    quotes: list[Quote] = attrs.Factory(list)
    fail_on: date | None = None
    gate: threading.Event | None = None
    started: threading.Event = attrs.Factory(threading.Event)
    windows: list[FetchWindow] = attrs.Factory(list)

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> list[Quote]:
        self.windows.append(window)
        self.started.set()
        if self.gate is not None and not self.gate.wait(60):
            raise SourceError(self.name, "the test never opened the gate")
        if self.fail_on is not None and window.contains(self.fail_on):
            raise SourceError(self.name, f"publisher down for {self.fail_on}")
        if context is not None:
            context.remember(f"http:{self.name}:etag", b'"v1"')
        return [q for q in self.quotes if window.contains(q.observed_at.date())]

    def configure(self, **options: str) -> ScriptedSource:
        return self


@attrs.define
class Plugin:
    source: ScriptedSource

    @hookimpl
    def fxcortex_register_sources(self, register: Callable[[ScriptedSource], None]) -> None:
        register(self.source)


def daily(
    days: int, *, first: date = date(2024, 1, 1), pairs: Iterable[str] = ("EUR/USD",)
) -> list[Quote]:
    """One scripted quote per pair per day."""
    return [
        quote(
            pair=pair,
            rate=f"1.{day:04d}",
            observed_at=datetime(first.year, first.month, first.day, 14, tzinfo=UTC)
            + timedelta(days=day),
            source="scripted",
        )
        for day in range(days)
        for pair in pairs
    ]


# --------------------------------------------------------------------------- fixtures
@pytest.fixture
def database(postgres: Any) -> Iterator[DatabaseSettings]:
    """A fresh database on the PostgreSQL service, dropped (with its slots) afterwards."""
    name = f"fxit_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield DatabaseSettings(
        host=postgres.host,
        port=postgres.port,
        name=name,
        user=postgres.user,
        password=postgres.password,
    )
    with psycopg.connect(postgres.conninfo, autocommit=True) as admin:
        for (slot,) in admin.execute(
            "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)
        ).fetchall():
            admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_settings(redis: Any) -> RedisSettings:
    """A Redis database number of this test's own, empty."""
    settings = RedisSettings(host=redis.host, port=redis.port, db=next(_redis_dbs))
    client = redis_lib.Redis(host=redis.host, port=redis.port, db=settings.db)
    client.flushdb()
    client.close()
    return settings


@pytest.fixture
def settings(database: DatabaseSettings, redis_settings: RedisSettings, tmp_path: Path) -> Settings:
    """The distributed profile on this test's database and Redis, bootstrapped."""
    settings = Settings(
        profile="distributed", home=tmp_path / "home", database=database, redis=redis_settings
    )
    bootstrap(settings)
    return settings


@pytest.fixture
def sql(database: DatabaseSettings) -> Callable[..., list[tuple[Any, ...]]]:
    """``sql(query, *params)``: rows of a query on this test's database (autocommit).

    A connection per query: the tests that kill PostgreSQL must not break their own probe.
    """

    def run(query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(database.conninfo, autocommit=True) as connection:
            cursor = connection.execute(query, params or None)
            return cursor.fetchall() if cursor.description else []

    return run


@pytest.fixture
def changes(
    settings: Settings, sql: Callable[..., list[tuple[Any, ...]]]
) -> Callable[[], list[str]]:
    """``changes()``: the row changes of fxcortex.rates decoded since the last call.

    A logical replication slot on this test's database, read like Debezium reads the WAL.
    """
    sql("SELECT pg_create_logical_replication_slot('fxit_changes', 'test_decoding')")

    def take() -> list[str]:
        rows = sql(
            "SELECT data FROM pg_logical_slot_get_changes('fxit_changes', NULL, NULL,"
            " 'skip-empty-xacts', '1', 'include-xids', '0')"
        )
        return [data for (data,) in rows if data.startswith("table fxcortex.rates:")]

    return take


@pytest.fixture
def ingestor_factory(settings: Settings) -> Iterator[Callable[..., Ingestor]]:
    """``make(source, **kwargs)``: an ingestor (a scheduler replica of its own) with ``source``."""
    made: list[Ingestor] = []

    def make(source: ScriptedSource, **kwargs: Any) -> Ingestor:
        ingestor = Ingestor.open(
            settings, plugins=[(f"scripted-{len(made)}", Plugin(source))], **kwargs
        )
        made.append(ingestor)
        return ingestor

    yield make
    for ingestor in made:
        ingestor.close()


# --------------------------------------------------------------------------- bootstrap
def test_bootstrap_is_idempotent_and_prepares_the_table_for_debezium(
    settings: Settings, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    assert bootstrap(settings) == []  # the fixture bootstrapped once already
    with psycopg.connect(settings.database.conninfo) as connection:
        assert migrate(connection) == []
    assert sql("SELECT version FROM fxcortex.schema_migrations ORDER BY version") == [(1,), (2,)]
    assert sql("SELECT relreplident FROM pg_class WHERE oid = 'fxcortex.rates'::regclass") == [
        ("f",)
    ]
    assert sql(
        "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s"
        " ORDER BY tablename",
        PUBLICATION,
    ) == [("fxcortex", "debezium_heartbeat"), ("fxcortex", "rates")]
    types = dict(
        sql(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'fxcortex' AND table_name = 'rates'"
        )
    )
    assert types["rate"] == "numeric" and types["observed_at"] == "timestamp with time zone"


# --------------------------------------------------------------------------- the rate store
def test_reloading_the_same_quotes_writes_nothing_and_emits_no_change(
    settings: Settings,
    sql: Callable[..., list[tuple[Any, ...]]],
    changes: Callable[[], list[str]],
) -> None:
    store = PostgresRateStore(settings.database.conninfo)
    try:
        loaded = [
            quote(pair="EUR/USD", rate="1.10"),
            quote(pair="EUR/JPY", rate="160.50"),
            quote(pair="USD/IRR", rate="1045000", kind="sell"),
        ]
        first = store.upsert(loaded)
        assert (first.inserted, first.revised) == (3, 0)
        inserts = changes()
        assert len(inserts) == 3 and all(": INSERT:" in event for event in inserts)
        same_numbers = [
            quote(pair="EUR/USD", rate="1.1"),
            quote(pair="EUR/JPY", rate="160.5000"),
            quote(pair="USD/IRR", rate="1045000.0", kind="sell"),
        ]
        for batch in (loaded, same_numbers, loaded):
            again = store.upsert(batch)
            assert (again.inserted, again.revised, again.unchanged) == (0, 0, 3)
        assert changes() == []
        # not even locked: an ON CONFLICT … DO UPDATE WHERE would have stamped xmax on each row
        assert sql("SELECT count(*) FROM fxcortex.rates WHERE xmax <> '0'::xid") == [(0,)]
        assert sorted(store.quotes(), key=repr) == sorted(loaded, key=repr)
        assert [str(q.rate) for q in store.quotes(source="test")] == ["160.5", "1.1", "1045000"]
    finally:
        store.close()


def test_a_revision_is_exactly_one_update_with_its_before_image(
    settings: Settings, changes: Callable[[], list[str]]
) -> None:
    store = PostgresRateStore(settings.database.conninfo)
    try:
        store.upsert([quote(pair=p, rate="1.10") for p in ("EUR/USD", "EUR/GBP", "EUR/CHF")])
        changes()  # the three inserts
        result = store.upsert(
            [
                quote(pair="EUR/USD", rate="1.12"),
                quote(pair="EUR/GBP", rate="1.1"),
                quote(pair="EUR/CHF", rate="1.100"),
                quote(pair="EUR/JPY", rate="161"),
            ]
        )
        assert (result.inserted, result.revised, result.unchanged) == (1, 1, 2)
        events = changes()
        updates = [e for e in events if ": UPDATE:" in e]
        assert len(updates) == 1 and len(events) == 2
        (update,) = updates
        # REPLICA IDENTITY FULL: the old row travels with the new one
        assert "old-key:" in update and "rate[numeric]:1.1 " in update + " "
        assert "new-tuple:" in update and "rate[numeric]:1.12" in update
        assert "quote[text]:'USD'" in update
    finally:
        store.close()


@pytest.mark.parametrize("path", ["into the table", "through staging"])
def test_every_digit_and_microsecond_reaches_the_table_as_sent(
    settings: Settings, sql: Callable[..., list[tuple[Any, ...]]], path: str
) -> None:
    """The store writes its own binary COPY rows (`fxcortex.runtime.adapters.pgcopy`)."""
    rates = [
        "0.000000000123456789",
        "123456789012345678901234567890.123456789012345678901",  # more than 28 digits
        "1000000000000000000000000000000",
        "1.10",
        "1045000.0",
        "9999.9999",
        "10000.0001",
        "0.5",
    ]
    moments = [
        datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # before PostgreSQL's epoch
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 29, 12, 0, 0, 1, tzinfo=UTC),
    ]
    currencies = ("IRR", "GBP", "CHF", "SEK", "NOK", "PLN", "CZK", "HUF")  # a series per rate
    series = [
        (f"{base}/{code}", kind)
        for code in currencies
        for base, kind in (("USD", "sell"), ("EUR", "mid"))
    ]
    cases = [
        (pair, kind, when, rate)
        for (pair, kind), rate in zip(series, rates * 2, strict=True)
        for when in moments
    ]
    loaded = [
        quote(pair=pair, rate=rate, observed_at=when, source="ایران", kind=kind)
        for pair, kind, when, rate in cases
    ]
    store = PostgresRateStore(settings.database.conninfo)
    try:
        if path == "through staging":  # a stored row in the span sends the load through staging
            store.upsert([quote(pair="EUR/JPY", observed_at=moments[1], source="ایران")])
        assert store.upsert(loaded).inserted == len(loaded)
        stored = sql(
            "SELECT source, base, quote, kind, observed_at, rate::text FROM fxcortex.rates"
            " WHERE quote <> 'JPY'"
        )
        trimmed = {"1.10": "1.1", "1045000.0": "1045000"}  # one text per number
        assert sorted(stored) == sorted(
            ("ایران", *pair.split("/"), kind, when, trimmed.get(rate, rate))
            for pair, kind, when, rate in cases
        )
    finally:
        store.close()


@pytest.mark.parametrize("path", ["into the table", "through staging"])
def test_a_load_the_database_refuses_stores_nothing_of_itself(
    settings: Settings,
    sql: Callable[..., list[tuple[Any, ...]]],
    changes: Callable[[], list[str]],
    path: str,
) -> None:
    store = PostgresRateStore(settings.database.conninfo)
    try:
        if path == "through staging":  # a stored row in the span sends the load through staging
            store.upsert([quote(pair="EUR/USD", rate="1.1")])
        before = store.count()
        changes()
        sql("ALTER TABLE fxcortex.rates ADD CONSTRAINT no_jpy_here CHECK (quote <> 'JPY')")
        batch = [quote(pair="EUR/USD", rate="1.2"), quote(pair="EUR/GBP"), quote(pair="EUR/JPY")]
        with pytest.raises(StoreError, match="no_jpy_here"):
            store.upsert(batch)
        assert store.count() == before
        assert changes() == []
        assert [q.rate for q in store.quotes() if q.pair.quote.code == "USD"] == (
            [quote().rate] if before else []
        )
    finally:
        store.close()


# --------------------------------------------------------------------------- a first load in bulk
_KEY_INDEX = (
    "SELECT conindid, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE conrelid = 'fxcortex.rates'::regclass AND contype = 'p'"
)


def test_a_large_first_load_builds_the_key_after_its_rows(
    settings: Settings,
    sql: Callable[..., list[tuple[Any, ...]]],
    changes: Callable[[], list[str]],
) -> None:
    (migrated,) = sql(_KEY_INDEX)
    store = PostgresRateStore(settings.database.conninfo, bulk_load_rows=100)
    try:
        first = daily(60, pairs=("EUR/USD", "EUR/JPY", "USD/IRR"))
        assert store.upsert(first).inserted == 180
        (rebuilt,) = sql(_KEY_INDEX)
        # a new index (the bulk path was taken) with the definition the migration gave it
        assert rebuilt[0] != migrated[0] and rebuilt[1] == migrated[1]
        # the change events' before images do not depend on the key
        assert sql("SELECT relreplident FROM pg_class WHERE oid = 'fxcortex.rates'::regclass") == [
            ("f",)
        ]
        assert sorted(store.quotes(), key=repr) == sorted(first, key=repr)
        inserts = changes()
        assert len(inserts) == 180 and all(": INSERT:" in event for event in inserts)

        # into a table with rows: the usual way, the key's index untouched
        later = daily(60, first=date(2024, 3, 1), pairs=("EUR/USD", "EUR/JPY", "USD/IRR"))
        assert store.upsert(later).inserted == 180
        assert sql(_KEY_INDEX) == [rebuilt]
        again = store.upsert(first + later)
        assert (again.inserted, again.revised, again.unchanged) == (0, 0, 360)
        assert len(changes()) == 180
    finally:
        store.close()


def test_a_bulk_load_with_a_key_twice_keeps_the_last_and_the_key(
    settings: Settings, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    store = PostgresRateStore(settings.database.conninfo, bulk_load_rows=10)
    try:
        quotes = daily(20)
        revised = quote(pair="EUR/USD", rate="2.5", observed_at=quotes[3].observed_at)
        twice = [*quotes, attrs.evolve(revised, source="scripted")]
        assert store.upsert(twice).inserted == 20
        assert sql(
            "SELECT rate::text FROM fxcortex.rates WHERE observed_at = %s", quotes[3].observed_at
        ) == [("2.5",)]
        assert len(sql(_KEY_INDEX)) == 1
        with pytest.raises(psycopg.errors.UniqueViolation):
            sql("INSERT INTO fxcortex.rates SELECT * FROM fxcortex.rates LIMIT 1")
    finally:
        store.close()


def test_a_refused_bulk_load_leaves_the_table_and_its_key_as_they_were(
    settings: Settings, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    (migrated,) = sql(_KEY_INDEX)
    sql("ALTER TABLE fxcortex.rates ADD CONSTRAINT no_jpy_here CHECK (quote <> 'JPY')")
    store = PostgresRateStore(settings.database.conninfo, bulk_load_rows=10)
    try:
        with pytest.raises(StoreError, match="no_jpy_here"):
            store.upsert(daily(20, pairs=("EUR/USD", "EUR/JPY")))
        assert sql("SELECT count(*) FROM fxcortex.rates") == [(0,)]
        assert sql(_KEY_INDEX) == [migrated]
    finally:
        store.close()


def test_a_first_load_goes_the_usual_way_when_another_session_holds_the_table(
    settings: Settings, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    (migrated,) = sql(_KEY_INDEX)
    store = PostgresRateStore(settings.database.conninfo, bulk_load_rows=10)
    with psycopg.connect(settings.database.conninfo) as reader:
        reader.execute("SELECT count(*) FROM fxcortex.rates")  # a share lock, held until commit
        try:
            began = time.monotonic()
            assert store.upsert(daily(20)).inserted == 20
            assert time.monotonic() - began < 10  # not waiting for the reader
        finally:
            store.close()
        reader.commit()
    assert sql(_KEY_INDEX) == [migrated]
    assert sql("SELECT count(*) FROM fxcortex.rates") == [(20,)]


def test_two_first_loads_at_once_both_land(
    settings: Settings, sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    """Two loads that both find the table empty: neither waits for the other's lock."""
    stores = [PostgresRateStore(settings.database.conninfo, bulk_load_rows=10) for _ in range(2)]
    loads = [
        [attrs.evolve(q, source=f"source-{n}") for q in daily(300, pairs=("EUR/USD", "EUR/GBP"))]
        for n in range(2)
    ]
    errors: list[BaseException] = []

    def load(n: int) -> None:
        try:
            stores[n].upsert(loads[n])
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    try:
        threads = [threading.Thread(target=load, args=(n,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for store in stores:
            store.close()
    assert errors == []
    assert sql("SELECT source, count(*) FROM fxcortex.rates GROUP BY source ORDER BY source") == [
        ("source-0", 600),
        ("source-1", 600),
    ]
    assert len(sql(_KEY_INDEX)) == 1


def test_a_failing_fetch_leaves_no_rows_and_is_recorded_as_failed(
    ingestor_factory: Callable[..., Ingestor],
    sql: Callable[..., list[tuple[Any, ...]]],
    changes: Callable[[], list[str]],
) -> None:
    source = ScriptedSource(quotes=daily(10), fail_on=date(2024, 1, 5))
    ingestor = ingestor_factory(source)
    outcome = ingestor.run("scripted", FetchWindow(since=date(2024, 1, 1)))
    assert outcome.status == "failed" and "publisher down" in str(outcome.error)
    assert sql("SELECT count(*) FROM fxcortex.rates") == [(0,)]
    assert changes() == []
    assert sql("SELECT status, error FROM fxcortex.ingest_runs") == [
        ("failed", "source 'scripted': publisher down for 2024-01-05")
    ]
    # the source's staged HTTP validator was not kept: the next fetch asks for everything again
    assert ingestor.stores.cache.get_many(["http:scripted:etag"]) == {}


# --------------------------------------------------------------------------- runs and metadata
def test_a_run_records_itself_and_the_sources_metadata_in_redis(
    ingestor_factory: Callable[..., Ingestor],
    sql: Callable[..., list[tuple[Any, ...]]],
    redis_settings: RedisSettings,
) -> None:
    source = ScriptedSource(quotes=daily(20))
    metrics = IngestMetrics()
    ingestor = ingestor_factory(source, metrics=metrics, lookback=timedelta(days=3))
    first = ingestor.run("scripted", trigger="scheduled")  # never loaded: the default window
    assert first.window == FetchWindow() and first.result is not None
    assert first.result.inserted == 20
    client = redis_lib.Redis(
        host=redis_settings.host, port=redis_settings.port, db=redis_settings.db
    )
    try:
        assert client.get("fxcortex:etl:scripted:watermark") == b"2024-01-20T14:00:00+00:00"
        assert client.get("fxcortex:http:scripted:etag") == b'"v1"'
        assert b'"inserted": 20' in client.get("fxcortex:etl:scripted:last_run")
    finally:
        client.close()
    second = ingestor.run("scripted", trigger="scheduled")  # from the watermark less 3 days
    assert second.window == FetchWindow(since=date(2024, 1, 17))
    assert second.result is not None and second.result.unchanged == 4
    assert sql(
        "SELECT trigger, status, rows_received, rows_inserted, rows_revised, window_since"
        " FROM fxcortex.ingest_runs ORDER BY id"
    ) == [
        ("scheduled", "succeeded", 20, 20, 0, None),
        ("scheduled", "succeeded", 4, 0, 0, date(2024, 1, 17)),
    ]
    assert (
        metrics.registry.get_sample_value("fxcortex_rows_loaded_total", {"source": "scripted"})
        == 20
    )
    assert (
        metrics.registry.get_sample_value(
            "fxcortex_fetch_duration_seconds_count", {"source": "scripted"}
        )
        == 2
    )


def test_a_dead_holders_lock_expires(redis_settings: RedisSettings) -> None:
    client = redis_lib.Redis(
        host=redis_settings.host, port=redis_settings.port, db=redis_settings.db
    )
    try:
        crashed = RedisLock(client, "source:ecb", "replica-a", ttl=1.0)
        other = RedisLock(client, "source:ecb", "replica-b", ttl=1.0)
        assert crashed.acquire()
        assert not other.acquire() and other.owner() == "replica-a"
        assert not other.release() and crashed.owner() == "replica-a"  # not its lock to release
        time.sleep(1.3)  # replica a died without releasing
        assert other.acquire() and other.owner() == "replica-b"
        assert not crashed.renew()
    finally:
        client.close()


def test_two_schedulers_contend_for_one_source_and_only_one_runs(
    ingestor_factory: Callable[..., Ingestor], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    gate = threading.Event()
    source = ScriptedSource(quotes=daily(5), gate=gate)
    replicas = [ingestor_factory(source, metrics=IngestMetrics()) for _ in range(2)]
    assert replicas[0].holder != replicas[1].holder
    job = Job(source="scripted", schedule=Schedule(cron="0 0 1 1 *"))  # only the run-now firing
    services = [SchedulerService(r, [job], jitter=0) for r in replicas]
    try:
        for service in services:
            service.start(run_now=True)
        assert source.started.wait(30), "no scheduler started the source"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(s.outcomes for s in services):
            time.sleep(0.05)  # the loser gives up at once; the winner waits at the gate
        gate.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(len(s.outcomes) for s in services) < 2:
            time.sleep(0.05)
    finally:
        gate.set()
        for service in services:
            service.shutdown(wait=True)
    statuses = sorted(o.status for s in services for o in s.outcomes)
    assert statuses == ["skipped", "succeeded"]
    assert len(source.windows) == 1  # fetched once
    assert sql("SELECT count(*), min(holder) IS NOT NULL FROM fxcortex.ingest_runs") == [(1, True)]
    skipped = [
        r.metrics.registry.get_sample_value(
            "fxcortex_runs_skipped_total", {"source": "scripted", "reason": "locked"}
        )
        for r in replicas
        if r.metrics is not None
    ]
    assert sorted(v or 0 for v in skipped) == [0, 1]


# --------------------------------------------------------------------------- outages
@pytest.mark.process_control
def test_redis_stopped_mid_run_and_restarted_loses_nothing(
    redis: Any,
    ingestor_factory: Callable[..., Ingestor],
    sql: Callable[..., list[tuple[Any, ...]]],
    redis_settings: RedisSettings,
) -> None:
    gate = threading.Event()
    source = ScriptedSource(quotes=daily(10), gate=gate)
    ingestor = ingestor_factory(source)
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(ingestor.run("scripted")))
    worker.start()
    try:
        assert source.started.wait(30)
        redis.kill()  # mid-run: the lock is held and the metadata not yet written
        gate.set()
        worker.join(60)
        assert outcome and outcome[0].status == "succeeded", outcome
        assert sql("SELECT count(*) FROM fxcortex.rates") == [(10,)]
        cache = ingestor.stores.cache
        assert not cache.available and cache.pending >= 3  # watermark, last run, ETag queued
        # while Redis is away a run still goes on, locked by PostgreSQL instead
        source.quotes += daily(2, first=date(2024, 1, 11))
        assert ingestor.run("scripted").status == "succeeded"
        assert sql("SELECT count(*) FROM fxcortex.rates") == [(12,)]
    finally:
        gate.set()
        redis.restart()
    assert ingestor.stores.cache.catch_up()
    client = redis_lib.Redis(
        host=redis_settings.host, port=redis_settings.port, db=redis_settings.db
    )
    try:
        assert client.get("fxcortex:etl:scripted:watermark") == b"2024-01-12T14:00:00+00:00"
        assert client.get("fxcortex:http:scripted:etag") == b'"v1"'
    finally:
        client.close()
    after = ingestor.run("scripted")
    assert after.status == "succeeded" and after.window.since == date(2024, 1, 5)
    assert sql(
        "SELECT count(*), count(*) FILTER (WHERE status = 'succeeded') FROM fxcortex.ingest_runs"
    ) == [(3, 3)]


@pytest.mark.process_control
def test_postgres_restarted_between_runs_recovers(
    postgres: Any,
    ingestor_factory: Callable[..., Ingestor],
    sql: Callable[..., list[tuple[Any, ...]]],
) -> None:
    source = ScriptedSource(quotes=daily(5))
    ingestor = ingestor_factory(source)
    assert ingestor.run("scripted").status == "succeeded"
    postgres.kill()  # a crash: every pooled connection is now broken
    down = ingestor.run("scripted")
    assert down.status == "failed"  # and says so, rather than hanging or crashing the scheduler
    postgres.restart()
    source.quotes += daily(3, first=date(2024, 1, 6))
    again = ingestor.run("scripted")
    assert again.status == "succeeded", again.error
    assert again.result is not None and again.result.inserted == 3
    assert sql("SELECT count(*) FROM fxcortex.rates") == [(8,)]


# --------------------------------------------------------------------------- backfill
def test_a_backfill_interrupted_by_a_failure_resumes_after_its_last_finished_chunk(
    ingestor_factory: Callable[..., Ingestor], sql: Callable[..., list[tuple[Any, ...]]]
) -> None:
    source = ScriptedSource(quotes=daily(30), fail_on=date(2024, 1, 17))
    ingestor = ingestor_factory(source)
    first = ingestor.backfill("scripted", date(2024, 1, 1), date(2024, 1, 30), chunk_days=7)
    assert first.status == "failed"
    assert first.record.done_until == date(2024, 1, 14)
    assert sql("SELECT count(*) FROM fxcortex.rates") == [(14,)]
    source.fail_on = None
    source.windows.clear()
    second = ingestor.backfill("scripted", date(2024, 1, 1), date(2024, 1, 30), chunk_days=7)
    assert second.status == "finished" and second.resumed_from == date(2024, 1, 15)
    assert [w.since for w in source.windows] == [date(2024, 1, d) for d in (15, 22, 29)]
    assert sql("SELECT count(*) FROM fxcortex.rates") == [(30,)]
    assert sql("SELECT status, done_until FROM fxcortex.backfills") == [
        ("finished", date(2024, 1, 30))
    ]
    again = ingestor.backfill("scripted", date(2024, 1, 1), date(2024, 1, 30), chunk_days=7)
    assert again.status == "already finished"


# --------------------------------------------------------------------------- the command
def _ecb_extract(path: Path, days: int) -> Path:
    from fxcortex.sources.ecb import bundled_history

    with zipfile.ZipFile(bundled_history()) as archive:
        lines = archive.read("eurofxref-hist.csv").decode().splitlines()[: days + 1]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("eurofxref-hist.csv", "\n".join(lines) + "\n")
    path.write_bytes(buffer.getvalue())
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_scheduler_command_loads_serves_metrics_and_stops_gracefully_on_sigterm(
    settings: Settings, sql: Callable[..., list[tuple[Any, ...]]], tmp_path: Path
) -> None:
    extract = _ecb_extract(tmp_path / "ecb.zip", 30)
    port = _free_port()
    db, rd = settings.database, settings.redis
    environ = {
        **os.environ,
        "FXCORTEX_PROFILE": "distributed",
        "FXCORTEX_HOME": str(settings.home),
        "DB_HOST": db.host,
        "DB_PORT": str(db.port),
        "DB_NAME": db.name,
        "DB_USER": db.user,
        "DB_PASSWORD": db.password,
        "REDIS_HOST": rd.host,
        "REDIS_PORT": str(rd.port),
        "REDIS_DB": str(rd.db),
    }
    fxcortex = str(Path(sys.executable).parent / "fxcortex")
    process = subprocess.Popen(
        [
            fxcortex, "scheduler", "--source", "ecb", "-o", f"ecb:location={extract}",
            "--run-now", "--metrics-port", str(port), "--metrics-address", "127.0.0.1",
        ],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if sql("SELECT count(*) FROM fxcortex.ingest_runs WHERE status <> 'running'") != [(0,)]:
                break
            assert process.poll() is None, process.communicate()[0]
            time.sleep(0.2)
        ((status, inserted),) = sql("SELECT status, rows_inserted FROM fxcortex.ingest_runs")
        assert status == "succeeded" and inserted > 30 * 20  # 30 days of 20-odd currencies
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        loaded = re.search(r'^fxcortex_rows_loaded_total\{source="ecb"\} (\S+)$', text, re.M)
        assert loaded and float(loaded.group(1)) == sql("SELECT count(*) FROM fxcortex.rates")[0][0]
        assert re.search(r'^fxcortex_last_success_timestamp_seconds\{source="ecb"\} \d', text, re.M)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "SIGTERM received" in output and "stopped" in output
