"""The analyzer loop: read the change feed, run every analyzer, write, then commit.

Order per batch: analyzers compute rows and state from the batch; the rows are written to the
analytics store (idempotent: versioned by feed position); the analyzers' state is committed to the
cache; last, the feed position is committed. Stopping at any point between these steps and running
again re-reads the uncommitted batch and writes the same rows with the same versions, so the tables
end up the same as after an uninterrupted run.

An analyzer that raises on a batch gets it again (`RejectPolicy.attempts`); if it still fails and
the feed can dead-letter (Kafka), the changes it rejects are found by bisection and set aside with
the reason, and the rest of the batch goes on. A feed that offers ``flush_before_revoke``
(Kafka) gets the same apply-and-commit step, to run on the changes in hand before a rebalance
takes partitions away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import attrs
import pluggy

if TYPE_CHECKING:
    from fxcortex.runtime.metrics import AnalyzerMetrics  # prometheus-client: distributed extra

from fxcortex.core import (
    AnalyticsStore,
    Analyzer,
    Cache,
    ChangeFeed,
    FxCortexError,
    RateChange,
    StoreError,
    TableWrite,
)
from fxcortex.core.batch import ChangeRows, collection_paused, to_micros
from fxcortex.core.state import BatchContext, BufferedState

log = logging.getLogger(__name__)


class AnalyzerError(FxCortexError):
    """An analyzer failed on a batch; nothing of the batch was committed."""

    def __init__(self, analyzer: str, first: int, last: int, reason: str) -> None:
        self.analyzer = analyzer
        self.reason = reason
        self.first_position = first
        self.last_position = last
        super().__init__(f"analyzer {analyzer!r} failed on changes {first}..{last}: {reason}")


@attrs.define
class AnalyzeResult:
    """What a run of the analyzer did."""

    changes: int = 0
    batches: int = 0
    position: int = 0
    rejected: int = 0  # changes an analyzer rejected, set aside to the dead letters
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
        except StoreError:
            raise  # the cache failed, not the analyzer: retried by the caller, never rejected
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


@attrs.frozen(kw_only=True)
class StoreRetry:
    """How long the analyzer insists when the analytics store refuses a write.

    Waits ``first`` seconds after the first failure, doubling up to ``longest``; gives up after
    ``attempts`` writes (None: never, as the service does) or as soon as ``stop`` says so. The
    feed position is committed only after a write succeeded, so giving up loses nothing: the
    batch is delivered again next time.
    """

    attempts: int | None = 5
    first: float = 0.5
    longest: float = 30.0
    stop: Callable[[], bool] = attrs.field(default=lambda: False)
    sleep: Callable[[float], object] = attrs.field(default=time.sleep)
    on_failure: Callable[[StoreError], object] = attrs.field(default=lambda _: None)

    def write(self, store: AnalyticsStore, writes: Sequence[TableWrite]) -> None:
        """Write, retrying a `StoreError` with capped exponential backoff."""
        delay = self.first
        attempt = 1
        while True:
            try:
                store.write(writes)
                return
            except StoreError as error:
                self.on_failure(error)
                if (self.attempts is not None and attempt >= self.attempts) or self.stop():
                    raise
                log.error(
                    "analytics store write failed (attempt %d), retrying in %.1fs: %s",
                    attempt,
                    delay,
                    error,
                )
            self.sleep(delay)
            delay = min(delay * 2, self.longest)
            attempt += 1


@attrs.frozen(kw_only=True)
class RejectPolicy:
    """What happens when an analyzer raises on a batch.

    The batch is analyzed up to ``attempts`` times. Then, if the feed has ``dead_letter``, the
    first change whose prefix of the batch fails is found by bisection, set aside, and the rest
    analyzed again — at most ``most_per_batch`` changes per batch, beyond which the error stands
    (a broken analyzer should stop the service, not empty the stream into the dead letters).
    """

    attempts: int = 3
    most_per_batch: int = 100


def analyze_rejecting(
    changes: Sequence[RateChange],
    analyzers: Sequence[Analyzer],
    *,
    cache: Cache,
    intervals: Mapping[str, timedelta],
    feed: ChangeFeed,
    policy: RejectPolicy,
) -> tuple[list[TableWrite], dict[str, bytes], set[str], int]:
    """`analyze_batch`, with the retries and dead-lettering of `RejectPolicy`; also the rejects."""

    def analyze(part: Sequence[RateChange]) -> tuple[list[TableWrite], dict[str, bytes], set[str]]:
        if not part:
            return [], {}, set()
        return analyze_batch(part, analyzers, cache=cache, intervals=intervals)

    failure: AnalyzerError | None = None
    for attempt in range(1, policy.attempts + 1):
        try:
            return (*analyze(changes), 0)
        except AnalyzerError as error:
            failure = error
            log.warning("attempt %d of %d: %s", attempt, policy.attempts, error)
    dead_letter = getattr(feed, "dead_letter", None)
    if dead_letter is None or failure is None:
        raise failure or AnalyzerError("?", 0, 0, "no attempt made")
    remaining = changes
    rejected = 0
    while True:
        try:
            return (*analyze(remaining), rejected)
        except AnalyzerError as error:
            if rejected >= policy.most_per_batch:
                raise
            index, culprit = _first_rejected(remaining, error, analyze)
            change = remaining[index]
            log.error("dead-lettering change %d: %s", change.position, culprit)
            dead_letter(change, culprit.reason, analyzer=culprit.analyzer)
            remaining = _without(remaining, index)
            rejected += 1


def _first_rejected(
    changes: Sequence[RateChange],
    whole: AnalyzerError,
    analyze: Callable[[Sequence[RateChange]], object],
) -> tuple[int, AnalyzerError]:
    """The index of the change that makes the shortest failing prefix fail, and that failure.

    Analyzing a prefix commits nothing (state is buffered), so bisecting costs only compute.
    """
    low, high, failure = 1, len(changes), whole  # the prefix of length ``high`` fails
    while low < high:
        middle = (low + high) // 2
        try:
            analyze(changes[:middle])
        except AnalyzerError as error:
            high, failure = middle, error
        else:
            low = middle + 1
    return high - 1, failure


def _without(changes: Sequence[RateChange], index: int) -> Sequence[RateChange]:
    if isinstance(changes, ChangeRows):  # keep the columnar form the analyzers read fast
        return ChangeRows([*changes.rows[:index], *changes.rows[index + 1 :]])
    return [*changes[:index], *changes[index + 1 :]]


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
    retry: StoreRetry | None = None,
    metrics: AnalyzerMetrics | None = None,
    reject: RejectPolicy | None = None,
) -> AnalyzeResult:
    """Process the feed until it is caught up (or ``max_batches`` ran); ``on_batch`` gets sizes.

    A store that refuses a write is retried as ``retry`` says (default `StoreRetry()`); nothing
    of the batch (state, feed position) is committed before its rows are written. An analyzer
    that raises is handled as ``reject`` says (default `RejectPolicy()`).
    """
    retry = retry or StoreRetry()
    reject = reject or RejectPolicy()
    if metrics is not None:
        count_failure = metrics.store_failures.inc
        retry = attrs.evolve(retry, on_failure=lambda _: count_failure())
    result = AnalyzeResult()

    def apply(changes: Sequence[RateChange]) -> None:
        try:
            writes, puts, deletes, rejected = analyze_rejecting(
                changes, analyzers, cache=cache, intervals=intervals, feed=feed, policy=reject
            )
            started = time.perf_counter()
            retry.write(store, writes)
            written_at, insert_seconds = time.time(), time.perf_counter() - started
            cache.commit(puts, deletes)
            position = changes[-1].position
            feed.commit(position)
        except BaseException:
            # The batch is not done: a feed that can forget what it polled (optional, like the
            # SQLite change log) hands it out again to the next call in this process.
            rewind = getattr(feed, "rewind", None)
            if rewind is not None:
                rewind()
            raise

        rows = {write.table: len(write) for write in writes}
        for table, count in rows.items():
            result.rows_written[table] = result.rows_written.get(table, 0) + count
        if metrics is not None:
            metrics.batch(_committed_micros(changes), written_at, insert_seconds)
            metrics.feed_state(feed.pending(), getattr(feed, "dead_lettered", 0))
        result.changes += len(changes)
        result.rejected += rejected
        result.batches += 1
        result.position = position
        if hooks is not None:
            hooks.fxcortex_batch_analyzed(
                changes=len(changes), position=position, rows_written=rows
            )
        if on_batch is not None:
            on_batch(len(changes))

    register_flush = getattr(feed, "flush_before_revoke", None)
    if register_flush is not None:
        register_flush(apply)
    # Optional on both sides: an analyzer that combines pairs says so (`combines_pairs`), and a
    # feed of partitions warns when it holds only some of them.
    register_pairs = getattr(feed, "require_every_partition", None)
    combining = [a.name for a in analyzers if getattr(a, "combines_pairs", False)]
    if register_pairs is not None and combining:
        register_pairs(combining)
    while max_batches is None or result.batches < max_batches:
        # A batch's rows, decoded and analyzed, live until it is committed: collecting while
        # they pile up only re-traverses them (see `collection_paused`).
        with collection_paused():
            changes = feed.poll(batch_size)
            if not changes:
                break
            apply(changes)
    return result


def _committed_micros(changes: Sequence[RateChange]) -> list[int]:
    """When each change was committed in the rate store, µs since the epoch."""
    rows = getattr(changes, "rows", None)
    if rows is not None:  # feed rows carry it as a column: no objects built
        return [row[2] for row in rows]
    return [to_micros(change.committed_at) for change in changes]
