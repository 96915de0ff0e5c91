"""Developer tasks: ``nox -l`` lists them; ``nox`` runs tests, lint and typecheck."""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck"]

# Every package with every optional extra: tests and type checks cover all of it.
PACKAGES = [
    "packages/fxcortex-core",
    "packages/fxcortex-sources[synthetic,parquet,binance-ws]",
    "packages/fxcortex-analytics",
    "packages/fxcortex-runtime[distributed]",
]
TEST_TOOLS = ["pytest>=8", "hypothesis>=6.100"]


def install_workspace(session: nox.Session, *extra: str) -> None:
    """Install every workspace package (editable) plus ``extra`` requirements.

    Bytecode is compiled at install time: where PYTHONDONTWRITEBYTECODE is set, every start of
    ``fxcortex`` would otherwise recompile numpy, pandas and chDB's Python side.
    """
    editable = [arg for package in PACKAGES for arg in ("-e", package)]
    session.install(*editable, *extra, env={"UV_COMPILE_BYTECODE": "1"})


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests of every package (Hypothesis profile from HYPOTHESIS_PROFILE, default dev)."""
    install_workspace(session, *TEST_TOOLS)
    default_profile = "ci" if os.environ.get("CI") else "dev"
    env = {"HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", default_profile)}
    session.run("pytest", *(session.posargs or ["packages"]), env=env)


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        probe = subprocess.run([docker, "info"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@nox.session
def integration(session: nox.Session) -> None:
    """Integration tests on real PostgreSQL, Redis, Kafka, Kafka Connect + Debezium, ClickHouse.

    The backend: FXCORTEX_SERVICES=local|testcontainers|external, else testcontainers when a
    Docker engine answers, else local processes, provisioned first by services/provision.sh
    (Debian packages and Maven Central jars; idempotent, a second run fetches nothing).
    """
    install_workspace(session, "-r", "tests/integration/requirements.txt")
    backend = os.environ.get("FXCORTEX_SERVICES") or (
        "testcontainers" if _docker_answers() else "local"
    )
    if backend == "local":
        session.run(
            "bash", "services/provision.sh", env={"FXCORTEX_PROVISION_PYTHON": "0"}, external=True
        )
    default_profile = "ci" if os.environ.get("CI") else "dev"
    env = {
        "FXCORTEX_SERVICES": backend,
        "HYPOTHESIS_PROFILE": os.environ.get("HYPOTHESIS_PROFILE", default_profile),
    }
    session.run("pytest", *(session.posargs or ["tests/integration"]), env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy (strict) over every package's sources and the benchmarks."""
    install_workspace(session, "mypy>=1.11", *TEST_TOOLS, "pandas-stubs", "pyarrow-stubs")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """The whole flow offline on the real ECB history (files in FXCORTEX_HOME)."""
    install_workspace(session)
    session.run("fxcortex", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks, each beside its baseline or ceiling measured in the same run.

    ``nox -s bench -- demo``, ``-- pg``, ``-- analytics``, ``-- analyzer`` or ``-- latency`` runs
    one. The service ones start what they need through services/local.py (run
    services/provision.sh first): ``pg`` PostgreSQL (unless DB_HOST is set), ``analyzer`` Kafka
    (the analyzer's throughput beside a bare consumer and a naive one), ``latency`` all four
    services (commit → analytics row at 1,000 rows/s). ``analytics`` times every analytic beside
    its naive per-event version.
    """
    install_workspace(session)
    chosen = set(session.posargs) or {"demo", "pg", "analytics", "analyzer", "latency"}
    if "demo" in chosen:
        session.run("python", "benchmarks/bench_demo.py")
    if "pg" in chosen:
        session.run("python", "benchmarks/bench_pg_load.py")
    if "analytics" in chosen:
        session.run("python", "benchmarks/bench_analytics.py")
    if "analyzer" in chosen:
        session.run("python", "benchmarks/bench_analyzer.py")
    if "latency" in chosen:
        session.run("python", "benchmarks/bench_cdc_latency.py")
