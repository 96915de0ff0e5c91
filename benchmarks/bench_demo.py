"""Benchmark: the demo end to end, beside the bare floor of the same work, in one run.

Measures, on the full bundled ECB history:

1. ``demo``: ``fxcortex demo`` in a fresh FXCORTEX_HOME, as a child process, so its wall time and
   peak RSS are the user's (interpreter start and imports included).
2. ``floor``: the least any loader must do with the same file in this process: unzip, split the
   CSV, build one Decimal per cell, and insert the rows into a SQLite table with no index, trigger
   or analytics. The ratio demo/floor says what the pipeline costs on top of touching the data.
3. ``phases``: the demo's steps through the Python API, to show where the time goes.

Targets (issue "Foundation"): demo ≤ 10 s wall and ≤ 1.5 GB peak RSS on a 2-core machine.
Run: ``nox -s bench`` or ``python benchmarks/bench_demo.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from decimal import Decimal
from pathlib import Path

from fxcortex.core import FetchWindow
from fxcortex.runtime import Pipeline, Settings
from fxcortex.runtime.etl import in_time_order
from fxcortex.sources.ecb import bundled_history

WALL_TARGET_SECONDS = 10.0
RSS_TARGET_BYTES = 1.5 * 1024**3


def run_demo_process(home: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one ``fxcortex demo`` in a fresh home."""
    shutil.rmtree(home, ignore_errors=True)
    command = [sys.executable, "-m", "fxcortex.runtime.cli", "--home", str(home), "demo"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib < before:  # pragma: no cover - ru_maxrss is the max over all children so far
        peak_kib = before
    return wall, peak_kib * 1024


def floor(path: Path) -> tuple[float, int]:
    """Seconds for the bare minimum with the same file, and the observations it found."""
    started = time.perf_counter()
    with zipfile.ZipFile(path) as archive:
        text = archive.read("eurofxref-hist.csv").decode()
    reader = csv.reader(io.StringIO(text))
    codes = [code for code in next(reader)[1:] if code]
    rows = []
    for cells in reader:
        day = cells[0]
        for code, cell in zip(codes, cells[1:], strict=False):
            if cell and cell != "N/A":
                rows.append((day, code, str(Decimal(cell))))
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE rates (day TEXT, code TEXT, rate TEXT)")
    connection.executemany("INSERT INTO rates VALUES (?, ?, ?)", rows)
    connection.commit()
    return time.perf_counter() - started, len(rows)


def phases(home: Path) -> dict[str, float]:
    """Seconds per demo step through the Python API, in this process."""
    shutil.rmtree(home, ignore_errors=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    with Pipeline.open(Settings(home=home)) as pipeline:
        timings["open (plugins, stores, chDB)"] = time.perf_counter() - started
        mark = time.perf_counter()
        source = pipeline.source("ecb", {"location": "bundled"})
        quotes = in_time_order(list(source.fetch(FetchWindow())))  # as the ETL loads them
        timings["parse ECB zip into quotes"] = time.perf_counter() - mark
        mark = time.perf_counter()
        pipeline.rates.upsert(quotes)
        timings["upsert into SQLite (+ change log)"] = time.perf_counter() - mark
        mark = time.perf_counter()
        pipeline.analyze()
        timings["feed -> analytics -> chDB"] = time.perf_counter() - mark
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="demo runs (best and worst shown)")
    arguments = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="fxcortex-bench-"))
    try:
        floor_seconds, observations = floor(bundled_history())
        runs = [run_demo_process(workdir / f"demo-{i}") for i in range(arguments.repeat)]
        steps = phases(workdir / "phases")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    walls = sorted(wall for wall, _ in runs)
    peak = max(rss for _, rss in runs)
    best = walls[0]
    print(f"ECB history: {observations:,} observations ({os.cpu_count()} cores)")
    print(
        f"floor (unzip, CSV, Decimal, bare SQLite insert): {floor_seconds:6.2f} s"
        f"  {observations / floor_seconds:>10,.0f} obs/s"
    )
    print(
        f"demo end to end, best of {len(walls)}:               {best:6.2f} s"
        f"  {observations / best:>10,.0f} obs/s   (worst {walls[-1]:.2f} s)"
    )
    print(f"demo / floor: {best / floor_seconds:.1f}x")
    print(f"demo peak RSS: {peak / 1024**2:,.0f} MiB")
    print("phases (in-process):")
    for name, seconds in steps.items():
        print(f"  {name:<36} {seconds:6.2f} s")
    ok = best <= WALL_TARGET_SECONDS and peak <= RSS_TARGET_BYTES
    print(f"target (<= {WALL_TARGET_SECONDS:.0f} s, <= 1.5 GB): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
