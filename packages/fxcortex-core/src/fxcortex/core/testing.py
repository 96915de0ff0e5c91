"""Test helpers and pytest fixtures for plugin authors (a ``pytest11`` plugin, on by default).

Fixtures:

- ``fxcortex_plugin_manager(*plugins)``: a plugin manager with the installed plugins and yours.
- ``fxcortex_registry(*plugins)``: the registry those plugins build.
- ``fxcortex_pipeline(*plugins)``: an embedded pipeline in a temporary folder with your plugins
  registered (needs ``fxcortex-runtime``), to run a source or analytic end to end.

Helpers for unit tests of analytics, without any store: `AnalyzerHarness` feeds batches to an
analyzer with in-memory state and keeps its tables as a ClickHouse ReplacingMergeTree would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

from fxcortex.core.batch import from_micros
from fxcortex.core.models import ChangeOp, Pair, Quote, QuoteKind, RateChange, to_utc
from fxcortex.core.plugins import PluginManager, Registry, make_plugin_manager
from fxcortex.core.ports import Analyzer
from fxcortex.core.state import BatchContext, BufferedState, MemoryCache
from fxcortex.core.tables import TableWrite

if TYPE_CHECKING:
    from fxcortex.runtime import Pipeline


def quote(
    pair: str = "EUR/USD",
    rate: str = "1.1",
    observed_at: datetime | str = "2024-01-02T13:15:00+00:00",
    source: str = "test",
    kind: QuoteKind | str = QuoteKind.MID,
) -> Quote:
    """A quote with defaults for everything a test does not care about."""
    when = datetime.fromisoformat(observed_at) if isinstance(observed_at, str) else observed_at
    return Quote.of(pair, rate, to_utc(when), source, kind)


@attrs.define
class ChangeLog:
    """Builds a consistent change stream from creates, revisions and deletes, as a store would."""

    rows: dict[tuple[Any, ...], Quote] = attrs.Factory(dict)
    changes: list[RateChange] = attrs.Factory(list)
    committed_at: datetime = datetime(2024, 1, 1, tzinfo=UTC)

    def _emit(self, op: ChangeOp, before: Quote | None, after: Quote | None) -> RateChange:
        change = RateChange(
            op=op,
            position=len(self.changes) + 1,
            committed_at=self.committed_at,
            before=before,
            after=after,
        )
        self.changes.append(change)
        return change

    def upsert(self, new: Quote) -> RateChange | None:
        """Insert or revise; None when the stored rate is the same (no change, as in the stores)."""
        old = self.rows.get(new.key)
        if old is not None and old.rate == new.rate:
            return None
        self.rows[new.key] = new
        return self._emit(ChangeOp.CREATE if old is None else ChangeOp.UPDATE, old, new)

    def delete(self, key: tuple[Any, ...]) -> RateChange | None:
        """Delete the row with this key, if there is one."""
        old = self.rows.pop(key, None)
        return None if old is None else self._emit(ChangeOp.DELETE, old, None)


@attrs.define
class AnalyzerHarness:
    """Runs one analyzer over batches with in-memory state and versioned in-memory tables.

    Tables keep, per key, the row with the highest version (the later write on a tie) and hide
    deleted rows, like the analytics stores do.
    """

    analyzer: Analyzer
    intervals: Mapping[str, timedelta] = attrs.Factory(dict)
    cache: MemoryCache = attrs.Factory(MemoryCache)
    versions: dict[str, dict[tuple[Any, ...], tuple[int, bool, dict[str, Any]]]] = attrs.Factory(
        dict
    )

    def feed(self, changes: Sequence[RateChange], *, commit_state: bool = True) -> list[TableWrite]:
        """Process a batch; ``commit_state=False`` simulates a crash before the state commit."""
        if not changes:
            return []
        state = BufferedState(self.cache, self.analyzer.name)
        writes = self.analyzer.process(changes, BatchContext(state, self.intervals))
        specs = {spec.name: spec for spec in self.analyzer.tables}
        for write in writes:
            write.check_against(specs[write.table])
            table = self.versions.setdefault(write.table, {})
            key_columns = specs[write.table].key
            types = {column.name: column.type for column in specs[write.table].columns}
            for i, version in enumerate(write.versions):
                row = {
                    name: _plain_value(values[i], types[name])
                    for name, values in write.columns.items()
                }
                key = tuple(row[name] for name in key_columns)
                current = table.get(key)
                if current is None or version >= current[0]:
                    table[key] = (version, write.deleted[i], row)
        if commit_state:
            state.commit()
        return writes

    def rows(self, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The visible rows of a table, by key."""
        return {
            key: row
            for key, (_, deleted, row) in self.versions.get(table, {}).items()
            if not deleted
        }


def _plain_value(value: Any, column_type: str) -> Any:
    """A value as a store returns it: numpy scalars as Python ones, NaN as None, µs as times,
    texts of decimals as Decimals."""
    item = getattr(value, "item", None)
    if item is not None:
        value = item()
    if isinstance(value, float) and value != value:
        return None
    if column_type.startswith("DateTime64") and isinstance(value, int):
        return from_micros(value)
    if column_type.startswith("Decimal") and isinstance(value, str):
        return Decimal(value)  # a rate's text, which the store casts
    return value


@pytest.fixture
def fxcortex_plugin_manager() -> Callable[..., PluginManager]:
    """``make(*plugins)``: the installed plugins plus yours, each given as a module or object."""

    def make(*plugins: object) -> PluginManager:
        named = [(getattr(p, "__name__", f"test-plugin-{i}"), p) for i, p in enumerate(plugins)]
        return make_plugin_manager(plugins=named)

    return make


@pytest.fixture
def fxcortex_registry(
    fxcortex_plugin_manager: Callable[..., PluginManager],
) -> Callable[..., Registry]:
    """``make(*plugins)``: the registry the installed plugins and yours build."""

    def make(*plugins: object) -> Registry:
        return Registry.collect(fxcortex_plugin_manager(*plugins))

    return make


@pytest.fixture
def fxcortex_pipeline(tmp_path: Path) -> Iterator[Callable[..., Pipeline]]:
    """``make(*plugins)``: an embedded pipeline under ``tmp_path`` with your plugins registered."""
    try:
        from fxcortex.runtime import Pipeline, Settings
    except ImportError:  # pragma: no cover - depends on what the author installed
        pytest.fail(
            "the fxcortex_pipeline fixture needs fxcortex-runtime: pip install fxcortex-runtime"
        )
    opened: list[Pipeline] = []

    def make(*plugins: object) -> Pipeline:
        named = [(getattr(p, "__name__", f"test-plugin-{i}"), p) for i, p in enumerate(plugins)]
        home = tmp_path / f"fxcortex-{len(opened)}"
        pipeline = Pipeline.open(Settings(home=home), plugins=named)
        opened.append(pipeline)
        return pipeline

    yield make
    for pipeline in opened:
        pipeline.close()


__all__ = ["AnalyzerHarness", "ChangeLog", "Pair", "quote"]
