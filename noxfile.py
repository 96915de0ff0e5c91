"""Developer tasks: ``nox -l`` lists them; ``nox`` runs tests, lint and typecheck."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck"]

PACKAGES = [
    "packages/fxcortex-core",
    "packages/fxcortex-sources",
    "packages/fxcortex-analytics",
    "packages/fxcortex-runtime",
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
    """Benchmarks, each beside its baseline or ceiling measured in the same run."""
    install_workspace(session)
    session.run("python", "benchmarks/bench_demo.py", *session.posargs)
