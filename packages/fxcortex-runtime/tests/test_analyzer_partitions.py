"""Analytics that combine pairs tell a feed of partitions so, and it can warn when split."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from fxcortex.core import Registry, make_plugin_manager
from fxcortex.core.batch import ChangeRows
from fxcortex.core.state import MemoryCache
from fxcortex.runtime.adapters.chdb import ChdbAnalyticsStore
from fxcortex.runtime.analyzer import run_analyzer


class PartitionedFeed:
    """A feed with nothing pending that records what the analyzer asks of its partitions."""

    def __init__(self) -> None:
        self.required: list[Sequence[str]] = []

    def poll(self, max_changes: int) -> ChangeRows:
        return ChangeRows([])

    def commit(self, position: int) -> None:
        raise AssertionError("nothing was polled")

    def pending(self) -> int:
        return 0

    def require_every_partition(self, analyzers: Sequence[str]) -> None:
        self.required.append(tuple(analyzers))


def test_the_analytics_that_combine_pairs_are_named_to_the_feed(tmp_path: Path) -> None:
    registry = Registry.collect(make_plugin_manager())
    analyzers = list(registry.analyzers.values())
    feed = PartitionedFeed()
    store = ChdbAnalyticsStore(tmp_path / "analytics")
    try:
        run_analyzer(
            feed,
            analyzers,
            store=store,
            cache=MemoryCache(),
            intervals={"ecb": timedelta(days=1)},
            batch_size=10,
        )
    finally:
        store.close()
    assert [sorted(names) for names in feed.required] == [
        ["cross_rates", "spread", "triangulation"]
    ]


def test_analytics_of_one_series_at_a_time_ask_nothing(tmp_path: Path) -> None:
    registry = Registry.collect(make_plugin_manager())
    per_series = [a for name, a in registry.analyzers.items() if name in {"ohlc", "returns"}]
    feed = PartitionedFeed()
    store = ChdbAnalyticsStore(tmp_path / "analytics")
    try:
        run_analyzer(
            feed, per_series, store=store, cache=MemoryCache(), intervals={}, batch_size=10
        )
    finally:
        store.close()
    assert feed.required == []
