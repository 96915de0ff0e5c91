"""The README's full system, command by command, on the real services and real ECB data.

``fxcortex bootstrap`` → ``connector register`` → ``analytics setup`` → ``fetch ecb`` → the
``analyzer`` service until it has caught up, stopped with SIGTERM → ``query``: each a process of
its own, configured only through the environment, as a user runs them. The analytics land on the
ClickHouse server and equal those the embedded profile computes from the same fetch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import fresh_database

from fxcortex.runtime.adapters.clickhouse import ClickHouseServerStore
from fxcortex.runtime.config import ClickHouseSettings, Settings
from fxcortex.runtime.pipeline import Pipeline

SINCE = "2025-06-01"
COMPARED = (
    "SELECT * FROM ohlc ORDER BY ALL",
    "SELECT * FROM returns ORDER BY ALL",
    "SELECT * FROM cross_rates ORDER BY ALL",
    "SELECT * FROM rates_mirror ORDER BY ALL",
)


def fxcortex(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "fxcortex.runtime.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"fxcortex {' '.join(args)}: {done.stderr}"
    return done


@pytest.fixture
def environment(
    postgres: Any, redis: Any, kafka: Any, kafka_connect: Any, clickhouse: Any, tmp_path: Path
) -> Iterator[dict[str, str]]:
    """The services' variables, an empty database and a ClickHouse database of the test's own."""
    with fresh_database(postgres, "fxfull", migrated=False) as database:
        env = {
            **os.environ,
            **postgres.env,
            **redis.env,
            **kafka.env,
            **kafka_connect.env,
            **clickhouse.env,
            "DB_NAME": database.name,
            "CLICKHOUSE_DATABASE": database.name,
            "FXCORTEX_PROFILE": "distributed",
            "FXCORTEX_HOME": str(tmp_path / "home"),
            "FXCORTEX_ANALYZER_GROUP": database.name.replace("_", "-"),
            # The ML models' outputs depend on the batch stream only through their order; left
            # out to keep the test short.
            "FXCORTEX_DISABLED_PLUGINS": "forecast,online_anomaly",
        }
        yield env
        with contextlib.suppress(Exception):  # before the database goes: its slot is released
            fxcortex(env, "connector", "delete", "--name", env["FXCORTEX_ANALYZER_GROUP"])


def test_the_readme_full_system_runs_end_to_end_on_real_data(
    environment: dict[str, str], clickhouse: Any, tmp_path: Path
) -> None:
    env = environment
    connector = env["FXCORTEX_ANALYZER_GROUP"]
    fxcortex(env, "bootstrap")
    again = fxcortex(env, "bootstrap")  # idempotent
    assert "schema up to date" in again.stdout + again.stderr
    fxcortex(env, "connector", "register", "--name", connector)
    assert "tables ready: " in fxcortex(env, "analytics", "setup").stdout
    fetched = fxcortex(env, "fetch", "ecb", "-o", "location=bundled", "--since", SINCE).stdout
    loaded = int(fetched.split(":")[1].split()[0].replace(",", ""))
    assert loaded > 5_000, fetched

    analyzer = subprocess.Popen(
        [sys.executable, "-m", "fxcortex.runtime.cli", "analyzer"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    settings = ClickHouseSettings(
        host=clickhouse.host, port=clickhouse.port, database=env["CLICKHOUSE_DATABASE"]
    )
    store = ClickHouseServerStore(settings)
    try:
        deadline = time.monotonic() + 180
        mirrored = 0
        while time.monotonic() < deadline and mirrored < loaded:
            time.sleep(1)
            mirrored = store.query("SELECT count() FROM rates_mirror").rows[0][0]
        assert mirrored == loaded
    finally:
        analyzer.send_signal(signal.SIGTERM)
        _out, err = analyzer.communicate(timeout=60)
    assert analyzer.returncode == 0, err
    assert f"analyzer stopped after {loaded} changes" in err

    shown = fxcortex(env, "query", "SELECT count() AS bars FROM ohlc").stdout
    assert "bars" in shown
    try:
        on_server = [store.query(sql).rows for sql in COMPARED]
    finally:
        store.close()

    # The same fetch in the embedded profile: SQLite and chDB under a home of its own.
    embedded_env = {key: value for key, value in env.items() if not key.startswith("CLICKHOUSE_")}
    embedded_env["FXCORTEX_PROFILE"] = "embedded"
    embedded_env["FXCORTEX_HOME"] = str(tmp_path / "embedded")
    fxcortex(embedded_env, "fetch", "ecb", "-o", "location=bundled", "--since", SINCE)
    fxcortex(embedded_env, "analyze")
    with Pipeline.open(Settings(home=tmp_path / "embedded")) as embedded:
        in_chdb = [embedded.query(sql).rows for sql in COMPARED]
    for sql, server_rows, chdb_rows in zip(COMPARED, on_server, in_chdb, strict=True):
        assert server_rows, sql
        assert server_rows == chdb_rows, sql
