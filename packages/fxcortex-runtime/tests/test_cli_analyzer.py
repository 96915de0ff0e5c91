"""``fxcortex analytics setup`` and the analyzer service loop, on the embedded profile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from fxcortex.core.testing import quote
from fxcortex.runtime.cli import main
from fxcortex.runtime.cli_analyzer import run_service
from fxcortex.runtime.config import Settings
from fxcortex.runtime.pipeline import Pipeline


def test_analytics_setup_creates_every_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FXCORTEX_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["analytics", "setup"])
    assert result.exit_code == 0, result.output
    assert "ohlc" in result.output
    with Pipeline.open(Settings(home=tmp_path)) as pipeline:
        assert pipeline.query("SELECT count() FROM ohlc").rows == [(0,)]


def test_the_service_analyzes_until_stopped(tmp_path: Path) -> None:
    with Pipeline.open(Settings(home=tmp_path)) as pipeline:
        pipeline.rates.upsert([quote(rate="1.1"), quote(pair="EUR/GBP", rate="0.85")])
        stop = threading.Event()
        threading.Timer(1.5, stop.set).start()
        changes, batches = run_service(pipeline, stop)
        assert (changes, batches) == (2, 1)
        assert pipeline.pending() == 0


def test_sigterm_stops_the_service_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "FXCORTEX_HOME": str(tmp_path), "FXCORTEX_PROFILE": "embedded"}
    process = subprocess.Popen(
        [sys.executable, "-m", "fxcortex.runtime.cli", "analyzer"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "analyzer running" in line
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    assert "SIGTERM" in rest and "analyzer stopped after 0 changes" in rest
