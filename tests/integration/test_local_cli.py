"""The command line of services/local.py: up, status, env and down on a folder of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

LOCAL_PY = Path(__file__).resolve().parents[2] / "services" / "local.py"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LOCAL_PY), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def env_lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fxcortex-cli-"))
    path.chmod(0o755)  # PostgreSQL runs as another user when we are root
    yield path
    cli("down", "--dir", str(path))  # whatever the test left running
    shutil.rmtree(path, ignore_errors=True)


def test_up_status_env_down(folder: Path) -> None:
    up = cli("up", "--dir", str(folder), "--only", "postgres,redis")
    assert up.returncode == 0, up.stderr
    env = env_lines(up.stdout)
    assert set(env) == {
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_USER",
        "DB_PASSWORD",
        "REDIS_HOST",
        "REDIS_PORT",
    }
    assert env["DB_HOST"] == env["REDIS_HOST"] == "127.0.0.1"
    conninfo = (
        f"host={env['DB_HOST']} port={env['DB_PORT']} dbname={env['DB_NAME']} "
        f"user={env['DB_USER']} password={env['DB_PASSWORD']}"
    )
    with psycopg.connect(conninfo) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)

    status = cli("status", "--dir", str(folder))
    assert status.returncode == 0, status.stdout + status.stderr
    assert "# postgres: ready" in status.stdout
    assert "# redis: ready" in status.stdout
    assert env_lines(cli("env", "--dir", str(folder)).stdout) == env

    down = cli("down", "--dir", str(folder))
    assert down.returncode == 0, down.stderr
    status = cli("status", "--dir", str(folder))
    assert status.returncode == 1
    assert "# postgres: stopped" in status.stdout

    # up again: same ports, same data
    again = cli("up", "--dir", str(folder), "--only", "postgres,redis")
    assert again.returncode == 0, again.stderr
    assert env_lines(again.stdout) == env
    assert os.path.isfile(folder / "postgres" / "postgres.log")
    cli("down", "--dir", str(folder), "--purge")
    assert not folder.exists()
