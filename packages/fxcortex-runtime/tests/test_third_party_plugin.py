"""A third-party source, installed with pip into a fresh environment, is found and runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "fxcortex-example-pegs"


def _install(environment: Path, *requirements: str) -> Path:
    """A new virtual environment with ``requirements``; returns its bin folder."""
    uv = shutil.which("uv")
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(environment)], check=True)
        python = environment / "bin" / "python"
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(python), *requirements], check=True
        )
    else:  # plain pip: slower, same result
        venv.create(environment, with_pip=True)
        python = environment / "bin" / "python"
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    return environment / "bin"


def test_an_example_plugin_installed_with_pip_shows_up_and_fetches(tmp_path: Path) -> None:
    bin_folder = _install(
        tmp_path / "env",
        "-e", str(REPO / "packages" / "fxcortex-core"),
        "-e", str(REPO / "packages" / "fxcortex-runtime"),
        "-e", str(EXAMPLE),
    )  # fmt: skip
    fxcortex = str(bin_folder / "fxcortex")
    environ = {**os.environ, "FXCORTEX_HOME": str(tmp_path / "home")}

    def run(*args: str) -> str:
        done = subprocess.run([fxcortex, *args], capture_output=True, text=True, env=environ)
        assert done.returncode == 0, done.stderr
        return done.stdout

    plugins = run("plugins")
    assert "pegs" in plugins and "fxcortex-example-pegs" in plugins and "source pegs" in plugins
    assert "ecb" not in plugins  # only what this environment installed
    assert "Official USD pegs" in run("sources")
    fetched = run("fetch", "pegs", "--since", "2026-11-02", "--until", "2026-11-08")
    assert "30 quotes, 30 new" in fetched  # six pegs on five working days
    assert "USD/AED" in run(
        "fetch", "pegs", "--since", "2026-11-02", "--until", "2026-11-02", "--dry-run"
    )
