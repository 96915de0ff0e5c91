"""The fxcortex command: what a user types and what they read back."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from fxcortex.runtime.cli import main


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., tuple[int, str]]:
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(main, ["--home", str(tmp_path / "home"), *args])
        return result.exit_code, result.output

    return invoke


def test_plugins_lists_the_built_in_source_and_analytic_with_their_packages(
    run: Callable[..., tuple[int, str]],
) -> None:
    code, output = run("plugins")
    assert code == 0
    assert "ecb" in output and "fxcortex-sources" in output and "source ecb" in output
    assert "ohlc" in output and "fxcortex-analytics" in output and "analyzer ohlc" in output


def test_fetch_then_analyze_then_query_in_every_format(
    run: Callable[..., tuple[int, str]], ecb_extract: Callable[[int], Path]
) -> None:
    path = str(ecb_extract(45))
    code, output = run("fetch", "ecb", "-o", f"location={path}")
    assert code == 0 and "new" in output
    code, output = run("analyze")
    assert code == 0 and "ohlc:" in output
    sql = (
        "SELECT resolution, count() AS bars FROM ohlc WHERE quote = 'USD'"
        " GROUP BY resolution ORDER BY resolution"
    )
    code, table = run("query", sql)
    assert code == 0
    assert table.splitlines()[0].split() == ["resolution", "bars"]
    assert table.rstrip().endswith("(2 rows)")
    code, text = run("query", sql, "--format", "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["resolution", "bars"] and [r[0] for r in rows[1:]] == ["month", "week"]
    code, text = run(
        "query", "SELECT close FROM ohlc WHERE quote = 'USD' LIMIT 1", "--format", "json"
    )
    close = json.loads(text)[0]["close"]
    assert isinstance(close, str) and float(close) > 0  # decimals travel as text, never floats


def test_a_dry_run_shows_quotes_and_loads_nothing(
    run: Callable[..., tuple[int, str]], ecb_extract: Callable[[int], Path]
) -> None:
    code, output = run("fetch", "ecb", "-o", f"location={ecb_extract(3)}", "--dry-run")
    assert code == 0 and "quotes would be loaded" in output and "EUR/USD" in output
    code, output = run("analyze")
    assert "0 changes" in output


def test_errors_are_one_clear_line_not_a_traceback(
    run: Callable[..., tuple[int, str]], tmp_path: Path
) -> None:
    code, output = run("fetch", "ecb", "-o", f"location={tmp_path / 'nowhere.zip'}")
    assert code == 1 and "Error: source 'ecb'" in output and "nowhere.zip" in output
    code, output = run("fetch", "nosuch")
    assert code == 1 and "no source named 'nosuch'; registered: " in output and "ecb" in output
    code, output = run("query", "SELECT nonsense FROM ohlc")
    assert code == 1 and "UNKNOWN_IDENTIFIER" in output
    code, output = run("fetch", "ecb", "-o", "location")
    assert code == 2 and "KEY=VALUE" in output


def test_the_demo_loads_the_full_history_and_a_second_run_changes_nothing(
    run: Callable[..., tuple[int, str]],
) -> None:
    code, first = run("demo")
    assert code == 0, first
    loaded = _figure(first, "observations loaded")
    assert loaded > 200_000
    assert _figure(first, "change events processed") == loaded
    bars = _figure(first, "rows in ohlc")
    code, second = run("demo")
    assert code == 0
    assert _figure(second, "observations loaded") == 0
    assert _figure(second, "change events processed") == 0
    assert _figure(second, "rows in ohlc") == bars


def _figure(output: str, label: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith(label))
    return int(line[len(label) :].split()[0].replace(",", ""))
