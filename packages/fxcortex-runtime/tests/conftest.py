"""Fixtures of the runtime tests: embedded pipelines in temporary folders, real ECB extracts."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fxcortex.runtime import Pipeline, Settings
from fxcortex.sources.ecb import bundled_history


def history_lines() -> list[str]:
    """The lines of the real bundled ECB history CSV (header first, newest day next)."""
    with zipfile.ZipFile(bundled_history()) as archive:
        return archive.read("eurofxref-hist.csv").decode().splitlines()


def write_history_zip(path: Path, lines: list[str]) -> Path:
    """A zip like ``eurofxref-hist.zip`` holding these CSV lines."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("eurofxref-hist.csv", "\n".join(lines) + "\n")
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def ecb_lines() -> list[str]:
    """The real ECB history CSV lines: header first, then the newest day."""
    return history_lines()


@pytest.fixture
def zip_history(tmp_path: Path) -> Callable[[str, list[str]], Path]:
    """``make(name, lines)``: a history zip under ``tmp_path`` holding these CSV lines."""
    return lambda name, lines: write_history_zip(tmp_path / name, lines)


@pytest.fixture
def ecb_extract(tmp_path: Path) -> Callable[[int], Path]:
    """``make(days)``: a zip of the newest ``days`` rows of the real ECB history."""

    def make(days: int) -> Path:
        lines = history_lines()
        return write_history_zip(tmp_path / f"ecb-{days}.zip", lines[: days + 1])

    return make


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    """An embedded pipeline with the installed plugins, under ``tmp_path``."""
    with Pipeline.open(Settings(home=tmp_path / "home")) as opened:
        yield opened
