"""The analyzer loop: read the change feed, run every analyzer, write, then commit.

Order per batch: analyzers compute rows and state from the batch; the rows are written to the
analytics store (idempotent: versioned by feed position); the analyzers' state is committed to the
cache; last, the feed position is committed. Stopping at any point between these steps and running
again re-reads the uncommitted batch and writes the same rows with the same versions, so the tables
end up the same as after an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

import attrs
import pluggy

from fxcortex.core import (
    AnalyticsStore,
    Analyzer,
    Cache,
    ChangeFeed,
    FxCortexError,
    RateChange,
    TableWrite,
)
from fxcortex.core.state import BatchContext, BufferedState


class AnalyzerError(FxCortexError):
    """An analyzer failed on a batch; nothing of the batch was committed."""

    def __init__(self, analyzer: str, first: int, last: int, reason: str) -> None:
        self.analyzer = analyzer
        self.first_position = first
        self.last_position = last
        super().__init__(f"analyzer {analyzer!r} failed on changes {first}..{last}: {reason}")


@attrs.define
class AnalyzeResult:
    """What a run of the analyzer did."""

    changes: int = 0
    batches: int = 0
    position: int = 0
    rows_written: dict[str, int] = attrs.Factory(dict)


def analyze_batch(
    changes: Sequence[RateChange],
    analyzers: Sequence[Analyzer],
    *,
    cache: Cache,
    intervals: Mapping[str, timedelta],
) -> tuple[list[TableWrite], dict[str, bytes], set[str]]:
    """Run every analyzer on one batch: the rows to write and the state to commit."""
    writes: list[TableWrite] = []
    puts: dict[str, bytes] = {}
    deletes: set[str] = set()
    for analyzer in analyzers:
        state = BufferedState(cache, analyzer.name)
        owned = {spec.name for spec in analyzer.tables}
        try:
            produced = analyzer.process(changes, BatchContext(state, intervals))
        except FxCortexError:
            raise
        except Exception as error:
            raise AnalyzerError(
                analyzer.name,
                changes[0].position,
                changes[-1].position,
                f"{type(error).__name__}: {error}",
            ) from error
        for write in produced:
            if write.table not in owned:
                raise AnalyzerError(
                    analyzer.name,
                    changes[0].position,
                    changes[-1].position,
                    f"wrote to table {write.table!r}, which it did not declare",
                )
        writes.extend(produced)
        puts.update(state.puts)
        deletes |= state.deletes
    return TableWrite.merge(writes), puts, deletes


def run_analyzer(
    feed: ChangeFeed,
    analyzers: Sequence[Analyzer],
    *,
    store: AnalyticsStore,
    cache: Cache,
    intervals: Mapping[str, timedelta],
    batch_size: int,
    hooks: pluggy.HookRelay | None = None,
    on_batch: Callable[[int], None] | None = None,
    max_batches: int | None = None,
) -> AnalyzeResult:
    """Process the feed until it is caught up (or ``max_batches`` ran); ``on_batch`` gets sizes."""
    result = AnalyzeResult()
    while max_batches is None or result.batches < max_batches:
        changes = feed.poll(batch_size)
        if not changes:
            break
        writes, puts, deletes = analyze_batch(changes, analyzers, cache=cache, intervals=intervals)
        store.write(writes)
        cache.commit(puts, deletes)
        position = changes[-1].position
        feed.commit(position)

        rows = {write.table: len(write) for write in writes}
        for table, count in rows.items():
            result.rows_written[table] = result.rows_written.get(table, 0) + count
        result.changes += len(changes)
        result.batches += 1
        result.position = position
        if hooks is not None:
            hooks.fxcortex_batch_analyzed(
                changes=len(changes), position=position, rows_written=rows
            )
        if on_batch is not None:
            on_batch(len(changes))
    return result
