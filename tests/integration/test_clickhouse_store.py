"""The ClickHouse-server analytics store, on a real ClickHouse HTTP server.

Every registered analytic writes through it the same tables it writes to the embedded chDB store;
re-written rows change nothing and deleted ones disappear; a server that goes away mid-run is
waited for, and nothing is lost or doubled.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fxcortex.core import FetchWindow, Quote, Registry, StoreError, TableWrite, make_plugin_manager
from fxcortex.core.testing import quote
from fxcortex.runtime.adapters.clickhouse import ClickHouseServerStore
from fxcortex.runtime.adapters.sqlite import SqliteCache, SqliteChangeFeed, SqliteRateStore
from fxcortex.runtime.analyzer import StoreRetry
from fxcortex.runtime.config import ClickHouseSettings, Settings
from fxcortex.runtime.pipeline import Pipeline
from fxcortex.runtime.profiles import Stores


@pytest.fixture
def server_settings(clickhouse: Any) -> Iterator[ClickHouseSettings]:
    """A database of its own on the session's server, dropped afterwards."""
    settings = ClickHouseSettings(
        host=clickhouse.host,
        port=clickhouse.port,
        user=clickhouse.user,
        password=clickhouse.password,
        database=f"fxtest_{uuid.uuid4().hex[:10]}",
    )
    yield settings
    clickhouse.ensure_running()
    store = ClickHouseServerStore(settings)
    store._run(f"DROP DATABASE IF EXISTS {settings.database}")
    store.close()


def history() -> list[Quote]:
    """Real ECB fixes since mid-2024, a second source quoting EUR/USD, and intraday ticks."""
    registry = Registry.collect(make_plugin_manager())
    ecb = [
        q
        for q in registry.sources["ecb"].configure(location="bundled").fetch(FetchWindow())
        if q.observed_at >= datetime(2024, 6, 1, tzinfo=UTC)
    ]
    other = [
        quote(pair="EUR/USD", rate=str(q.rate * Decimal("1.002")), observed_at=q.observed_at)
        for q in ecb
        if q.pair.quote.code == "USD"
    ]
    ticks = registry.sources["synthetic"].configure(
        pairs="EUR/USD=1.08,USD/IRR=1050000", rate="1", count="1500", seed="7"
    )
    quotes = [*ecb, *other, *ticks.fetch(FetchWindow())]
    return sorted(quotes, key=lambda q: (q.observed_at, q.key))  # oldest first, as the ETL loads


def open_pipeline(home: Path, analytics: Any) -> Pipeline:
    settings = Settings(home=home)
    path = settings.rates_path
    home.mkdir(parents=True, exist_ok=True)
    stores = Stores(
        rates=SqliteRateStore(path),
        feed=SqliteChangeFeed(path),
        cache=SqliteCache(path),
        analytics=analytics,
    )
    return Pipeline(settings, make_plugin_manager(), stores)


def all_tables(pipeline: Pipeline) -> dict[str, list[tuple[Any, ...]]]:
    names = [spec.name for a in pipeline.registry.analyzers.values() for spec in a.tables]
    return {name: pipeline.query(f"SELECT * FROM {name} ORDER BY ALL").rows for name in names}


def test_every_analytic_writes_the_same_tables_to_the_server_as_to_chdb(
    server_settings: ClickHouseSettings, tmp_path: Path
) -> None:
    quotes = history()
    with open_pipeline(tmp_path / "server", ClickHouseServerStore(server_settings)) as served:
        served.rates.upsert(quotes)
        served.rates.upsert([quote(pair="EUR/USD", rate="1.5", observed_at=quotes[-1].observed_at)])
        served.analyze(batch_size=5_000)
        on_server = all_tables(served)
    with Pipeline.open(Settings(home=tmp_path / "embedded")) as embedded:
        embedded.rates.upsert(quotes)
        embedded.rates.upsert(
            [quote(pair="EUR/USD", rate="1.5", observed_at=quotes[-1].observed_at)]
        )
        embedded.analyze(batch_size=5_000)
        in_chdb = all_tables(embedded)

    assert set(on_server) == set(in_chdb)
    written = [name for name, rows in in_chdb.items() if rows]
    # every analytic has rows here but triangulation (one source quotes each cross)
    assert len(written) >= len(in_chdb) - 1, sorted(set(in_chdb) - set(written))
    for name in in_chdb:
        assert on_server[name] == in_chdb[name], name


def _bar(version: int, close: str, deleted: bool = False) -> TableWrite:
    moment = datetime(2024, 3, 4, tzinfo=UTC)
    return TableWrite(
        table="bars",
        columns={
            "pair": ["EUR/USD"],
            "day": [moment],
            "close": [Decimal(close)],
            "change": [float("nan")],
        },
        versions=[version],
        deleted=[deleted],
    )


def test_rewrites_change_nothing_and_newer_versions_and_deletes_win(
    server_settings: ClickHouseSettings,
) -> None:
    from fxcortex.core import Column, TableSpec

    spec = TableSpec(
        name="bars",
        description="a test table",
        columns=(
            Column(name="pair", type="LowCardinality(String)", description="pair"),
            Column(name="day", type="DateTime64(6, 'UTC')", description="day"),
            Column(name="close", type="Decimal(38, 18)", description="close"),
            Column(name="change", type="Nullable(Float64)", description="change"),
        ),
        key=("pair", "day"),
    )
    store = ClickHouseServerStore(server_settings)
    try:
        store.ensure_tables([spec])
        store.ensure_tables([spec])  # idempotent
        store.write([_bar(5, "1.123456789012345678")])
        store.write([_bar(5, "1.123456789012345678")])  # a re-delivered batch
        rows = store.query("SELECT * FROM bars").rows
        assert rows == [
            ("EUR/USD", datetime(2024, 3, 4, tzinfo=UTC), Decimal("1.123456789012345678"), None)
        ]
        store.write([_bar(4, "9")])  # an older version loses
        store.write([_bar(6, "1.2")])
        assert store.query("SELECT close FROM bars").rows == [(Decimal("1.2"),)]
        store.write([_bar(7, "0", deleted=True)])
        assert store.query("SELECT count() FROM bars").rows == [(0,)]
        with pytest.raises(StoreError, match="unknown table"):
            store.write(
                [TableWrite(table="nope", columns={"a": [1]}, versions=[1], deleted=[False])]
            )
        with pytest.raises(StoreError, match=server_settings.database):
            store.query("SELECT * FROM no_such_table")
    finally:
        store.close()


@pytest.mark.process_control
def test_a_server_down_mid_run_is_waited_for_and_nothing_is_lost_or_doubled(
    clickhouse: Any, server_settings: ClickHouseSettings, tmp_path: Path
) -> None:
    quotes = history()
    failures: list[StoreError] = []
    restarted = threading.Event()

    def bring_back() -> None:
        clickhouse.restart()
        restarted.set()

    def on_failure(error: StoreError) -> None:
        failures.append(error)
        if len(failures) == 2:  # down for at least two attempts, then back
            threading.Thread(target=bring_back, daemon=True).start()

    batches: list[int] = []

    def on_batch(size: int) -> None:
        batches.append(size)
        if len(batches) == 2:
            clickhouse.kill()  # SIGKILL between two batches: the third write fails

    with open_pipeline(tmp_path / "server", ClickHouseServerStore(server_settings)) as served:
        served.rates.upsert(quotes)
        served.analyze(
            batch_size=3_000,
            on_batch=on_batch,
            retry=StoreRetry(attempts=None, first=0.2, longest=1.0, on_failure=on_failure),
        )
        assert restarted.wait(60)
        on_server = all_tables(served)
    with Pipeline.open(Settings(home=tmp_path / "embedded")) as embedded:
        embedded.rates.upsert(quotes)
        embedded.analyze(batch_size=3_000)
        in_chdb = all_tables(embedded)

    assert len(failures) >= 2
    assert "Connection refused" in str(failures[0]) or "connect" in str(failures[0]).lower()
    assert on_server["rates_mirror"] and len(on_server["rates_mirror"]) == len(quotes)
    for name in in_chdb:
        assert on_server[name] == in_chdb[name], name


def test_analytics_setup_creates_every_table_on_the_server(
    clickhouse: Any,
    postgres: Any,
    redis: Any,
    kafka: Any,
    server_settings: ClickHouseSettings,
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        **postgres.env,
        **redis.env,
        **kafka.env,
        **clickhouse.env,
        "CLICKHOUSE_DATABASE": server_settings.database,
        "FXCORTEX_PROFILE": "distributed",
        "FXCORTEX_HOME": str(tmp_path / "home"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "fxcortex.runtime.cli", "analytics", "setup"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    registry = Registry.collect(make_plugin_manager())
    expected = {spec.name for a in registry.analyzers.values() for spec in a.tables}
    store = ClickHouseServerStore(server_settings)
    try:
        names = {
            row[0]
            for row in store.query(
                f"SELECT name FROM system.tables WHERE database = '{server_settings.database}'"
            ).rows
        }
    finally:
        store.close()
    assert expected and names == expected | {f"{name}_versions" for name in expected}
    assert not (tmp_path / "home" / "analytics").exists()  # nothing went to an embedded chDB
