"""Benchmark: every registered analytic beside a naive per-event version of its formula.

Two datasets, each streamed through each analytic in batches of 50,000 changes (the analyzer's
default), with in-memory state committed after every batch as the analyzer loop does:

- ``ecb``: the full bundled ECB history (about 221,700 creates, one daily fix per currency);
- ``ticks``: 1,000,000 synthetic ticks (four pairs of 250,000 one-second ticks each).

Timed: ``process`` plus the state commit; not timed: building the change rows (the feed does that
before any analytic runs). The analytics get the change rows the feeds deliver (`ChangeRows`); the
naive versions get the same changes as `RateChange` objects built beforehand, so neither side pays
for conversions the other skips.

The naive version of analytic ``name`` is ``benchmarks/naive/<name>.py``: plain Python, one event at
a time, same formula. It runs on the first ``--naive-limit`` events of a dataset (default 100,000)
when the dataset is longer — per-event cost does not fall with size, so its rate on a prefix is a
generous baseline — and the table says so.

Beside them, per dataset, the *reading floor* (`read_only`): the same batches read into
per-series arrays and nothing else, the first step of every per-series analytic (the ones that
combine pairs group the same rows by instant or day instead). Where ten times an analytic's naive
rate is above that floor, the verdict says so: for a per-series analytic the ratio target then
asks for more than reading its rows allows.

Targets (issue "Analytics library"): non-ML analytics ≥ 200,000 events/s and ≥ 10x their naive
version; ML analytics ≥ 20,000 events/s.
Run: ``nox -s bench -- analytics`` or ``python benchmarks/bench_analytics.py [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fxcortex.analytics.series import grouped_images
from fxcortex.core import FetchWindow, Quote, RateChange, Registry, make_plugin_manager
from fxcortex.core.batch import ChangeRows, collection_paused, to_micros
from fxcortex.core.ports import Analyzer
from fxcortex.core.state import BatchContext, BufferedState, MemoryCache

BATCH = 50_000
TICKS_PER_PAIR = 250_000
TICK_PAIRS = "EUR/USD=1.08,USD/JPY=150,GBP/USD=1.27,USD/IRR=1050000"
ML_ANALYTICS = frozenset({"forecast", "online_anomaly"})
TARGET_EVENTS_PER_SECOND = 200_000
TARGET_ML_EVENTS_PER_SECOND = 20_000
TARGET_RATIO = 10.0
NAIVE_FOLDER = Path(__file__).resolve().parent / "naive"

Naive = Callable[[Sequence[RateChange], Mapping[str, timedelta]], int]


def creates(quotes: list[Quote]) -> ChangeRows:
    """The change rows a feed would deliver for loading these quotes into an empty store."""
    committed = to_micros(datetime(2026, 1, 1, tzinfo=UTC))
    rows = []
    for position, q in enumerate(quotes, start=1):
        after = (q.source, q.pair.base.code, q.pair.quote.code, q.kind.value)
        before = (None,) * 6
        rows.append(
            (position, "c", committed, *before, *after, to_micros(q.observed_at), str(q.rate))
        )
    return ChangeRows(rows)


def ecb_history(registry: Registry) -> ChangeRows:
    source = registry.sources["ecb"].configure(location="bundled")
    quotes = sorted(source.fetch(FetchWindow()), key=lambda q: (q.observed_at, q.key))
    return creates(quotes)  # in time order, as a live feed would deliver the history


def synthetic_ticks(registry: Registry) -> ChangeRows:
    source = registry.sources["synthetic"].configure(
        pairs=TICK_PAIRS, rate="1", count=str(TICKS_PER_PAIR), seed="7"
    )
    quotes = sorted(source.fetch(FetchWindow()), key=lambda q: q.observed_at)
    return creates(quotes)


def stream(analyzer: Analyzer, changes: ChangeRows, intervals: Mapping[str, timedelta]) -> int:
    """Feed ``changes`` in batches with committed state, as the analyzer does; the rows written.

    Like the analyzer (`fxcortex.runtime.analyzer.run_analyzer`), each batch runs with the
    cyclic garbage collector paused (`collection_paused`); so does the naive version.
    """
    cache = MemoryCache()
    written = 0
    for start in range(0, len(changes), BATCH):
        state = BufferedState(cache, analyzer.name)
        with collection_paused():
            writes = analyzer.process(
                changes[start : start + BATCH], BatchContext(state, intervals)
            )
        state.commit()
        written += sum(len(write) for write in writes)
    return written


def read_only(changes: ChangeRows) -> int:
    """The reading floor: each batch's images split into per-series arrays, nothing else.

    What every series analytic (and, column by column, ohlc) reads before it computes anything
    (`fxcortex.analytics.series.grouped_images`), on fresh batches as `stream` gives them; no
    formula, state or rows. An analytic cannot beat it by more than what it skips of it.
    """
    images = 0
    for start in range(0, len(changes), BATCH):
        with collection_paused():
            grouped = grouped_images(changes[start : start + BATCH])
        images += sum(len(times) for times, _rates, _positions in grouped.values())
    return images


def load_naive(name: str) -> Naive | None:
    path = NAIVE_FOLDER / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"naive_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run: Naive = module.run
    return run


def timed(work: Callable[..., Any], *args: Any) -> float:
    """Seconds ``work(*args)`` takes."""
    started = time.perf_counter()
    work(*args)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="analytics to run (default all)")
    parser.add_argument("--naive-limit", type=int, default=100_000)
    parser.add_argument("--datasets", nargs="*", default=["ecb", "ticks"])
    args = parser.parse_args(argv)

    registry = Registry.collect(make_plugin_manager())
    intervals = {name: s.observation_interval for name, s in registry.sources.items()}
    analyzers = {
        name: analyzer
        for name, analyzer in sorted(registry.analyzers.items())
        if args.only is None or name in args.only
    }
    builders = {"ecb": ecb_history, "ticks": synthetic_ticks}
    failures: list[str] = []
    print(
        f"{'analytic':<16}{'data':<7}{'events':>10}{'seconds':>9}{'events/s':>12}"
        f"{'naive ev/s':>12}{'naive on':>10}{'ratio':>8}  verdict"
    )
    for dataset in args.datasets:
        print(f"building {dataset} ...", file=sys.stderr, flush=True)
        changes = builders[dataset](registry)
        naive_events = list(changes[: args.naive_limit])
        floor = len(changes) / min(timed(read_only, changes) for _ in range(3))
        print(
            f"{'(reading floor)':<16}{dataset:<7}{len(changes):>10,}{len(changes) / floor:>9.2f}"
            f"{floor:>12,.0f}",
            flush=True,
        )
        for name, analyzer in analyzers.items():
            seconds = timed(stream, analyzer, changes, intervals)
            rate = len(changes) / seconds
            naive = load_naive(name)
            naive_rate = ratio = None
            if naive is not None:
                with collection_paused():
                    naive_seconds = timed(naive, naive_events, intervals)
                naive_rate = len(naive_events) / naive_seconds
                ratio = rate / naive_rate
            ml = name in ML_ANALYTICS
            target = TARGET_ML_EVENTS_PER_SECOND if ml else TARGET_EVENTS_PER_SECOND
            verdict_parts = [f"{'ok' if rate >= target else 'SLOW'} (>= {target:,}/s)"]
            if not ml:
                if ratio is None:
                    verdict_parts.append("no naive version")
                else:
                    verdict_parts.append(
                        f"{'ok' if ratio >= TARGET_RATIO else 'LOW'} (>= {TARGET_RATIO:.0f}x)"
                    )
                    if ratio < TARGET_RATIO and naive_rate and TARGET_RATIO * naive_rate > floor:
                        verdict_parts.append("10x naive is above the reading floor")
            verdict = ", ".join(verdict_parts)
            if "SLOW" in verdict or "LOW" in verdict or "no naive" in verdict:
                failures.append(f"{name}/{dataset}")
            print(
                f"{name:<16}{dataset:<7}{len(changes):>10,}{seconds:>9.2f}{rate:>12,.0f}"
                f"{naive_rate or 0:>12,.0f}{len(naive_events):>10,}"
                f"{(f'{ratio:.1f}x' if ratio else '-'):>8}  {verdict}",
                flush=True,
            )
    if failures:
        print(f"below target: {', '.join(failures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
