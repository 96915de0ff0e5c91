"""Per-series analytics keep a bounded head: long series archive, and still stream equal to batch.

Every series analytic runs here with a head of a few observations, so its series move to archive
segments after a handful of batches, and the properties revise, delete and insert both in the head
(the fast path, resuming from stored outputs) and behind it (the slow path, the whole series).
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fxcortex.analytics import anomalies, gaps, moving_averages, returns
from fxcortex.analytics.series import SeriesAnalyzer, SeriesState, window_sums
from fxcortex.core.state import BatchContext, BufferedState, MemoryCache
from fxcortex.core.strategies import Operation, build_log, deliveries, operations, recompute
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

FIRST = date(2024, 1, 22)
ANALYTICS = {
    "returns": returns.analyzer,
    "moving_averages": moving_averages.analyzer,
    "anomalies": anomalies.analyzer,
    "gaps": gaps.analyzer,
}


def history(length: int, intraday: bool, seed: int = 3) -> list[Operation]:
    """Upserts of EUR/USD at most of the first ``length`` instants `operations` draws from."""
    generator = random.Random(seed)
    start = datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=UTC)
    step = timedelta(minutes=15) if intraday else timedelta(days=1)
    first = timedelta(0) if intraday else timedelta(hours=13, minutes=15)
    rate = 1.1
    ops: list[Operation] = []
    for index in range(length):
        rate *= 1 + generator.gauss(0, 0.004)
        if generator.random() < 0.15:
            continue  # a missing observation: gaps and silences to find
        when = start + first + index * step
        ops.append(("upsert", ("EUR/USD", Decimal(f"{rate:.4f}"), when, "test")))
    return ops


def small_head(name: str) -> SeriesAnalyzer:
    return attrs.evolve(ANALYTICS[name](), head_size=2)


@pytest.mark.parametrize("name", sorted(ANALYTICS))
@given(data=st.data(), intraday=st.booleans())
@settings(max_examples=40, deadline=None)
def test_a_long_series_with_a_small_head_streams_equal_to_batch(
    name: str, data: st.DataObject, intraday: bool
) -> None:
    length = 150  # beyond twice every look-back (anomalies: 62 observations)
    days = 2 if intraday else length
    base = history(length, intraday)
    changes_ops = data.draw(
        operations(("EUR/USD",), intraday=intraday, days=days, first=FIRST, max_size=20)
    )
    log = build_log([*base, *changes_ops])
    intervals = {"test": timedelta(seconds=1) if intraday else timedelta(days=1)}
    streamed = AnalyzerHarness(small_head(name), intervals=intervals)
    history_count = len(base)
    # The history in batches of 10 (so the head fills and archives), then any delivery of the rest.
    for start in range(0, history_count, 10):
        streamed.feed(log.changes[start : min(start + 10, history_count)])
    for batch, commit in data.draw(deliveries(log.changes[history_count:])):
        streamed.feed(batch, commit_state=commit)
    table = ANALYTICS[name]().table.name
    assert streamed.rows(table) == recompute(ANALYTICS[name](), log, intervals).rows(table)


def _stream(analyzer: SeriesAnalyzer, log: ChangeLog, batch: int) -> MemoryCache:
    cache = MemoryCache()
    for start in range(0, len(log.changes), batch):
        state = BufferedState(cache, analyzer.name)
        analyzer.process(log.changes[start : start + batch], BatchContext(state, _DAILY))
        state.commit()
    return cache


_DAILY = {"test": timedelta(days=1)}


def _head(cache: MemoryCache, name: str) -> SeriesState:
    return SeriesState.decode(
        cache.get_many([f"{name}:test|EUR|USD|mid"])[f"{name}:test|EUR|USD|mid"]
    )


def test_the_head_stays_bounded_as_the_series_grows() -> None:
    log = build_log(history(3_000, intraday=False))
    analyzer = attrs.evolve(returns.analyzer(), head_size=100)
    head = _head(_stream(analyzer, log, 50), "returns")
    assert 100 <= len(head.times) <= 200  # between head_size and twice it
    assert head.segments >= 10
    assert head.outputs.shape[0] <= len(head.times)


def test_archive_segments_together_with_the_head_hold_every_observation() -> None:
    log = build_log(history(1_000, intraday=False))
    analyzer = attrs.evolve(gaps.analyzer(), head_size=50)
    cache = _stream(analyzer, log, 40)
    head = _head(cache, "gaps")
    from fxcortex.analytics.series import decode_segment

    keys = [f"gaps:test|EUR|USD|mid#{number}" for number in range(head.segments)]
    stored = cache.get_many(keys)
    times = np.concatenate([decode_segment(stored[k])[0] for k in keys] + [head.times])
    expected = sorted(int(q.observed_at.timestamp() * 1_000_000) for q in log.rows.values())
    assert times.tolist() == expected


def test_a_revision_behind_the_head_rewrites_the_rows_it_feeds_and_re_archives() -> None:
    log = build_log(history(600, intraday=False))
    analyzer = attrs.evolve(returns.analyzer(), head_size=40)
    streamed = AnalyzerHarness(analyzer, intervals=_DAILY)
    for start in range(0, len(log.changes), 25):
        streamed.feed(log.changes[start : start + 25])
    old = sorted(log.rows.values(), key=lambda q: q.observed_at)[10]
    revised = log.upsert(quote(rate="2.5", observed_at=old.observed_at))
    assert revised is not None
    writes = streamed.feed([revised])
    moments = {when for write in writes for when in write.columns["observed_at"]}
    # The revised fix's return and the next one change, and every EWMA after them.
    assert len(moments) > 400
    assert streamed.rows("returns") == recompute(returns.analyzer(), log, _DAILY).rows("returns")


@pytest.mark.parametrize("name", sorted(ANALYTICS))
def test_a_head_kept_larger_by_an_earlier_version_shrinks_and_stays_equal_to_batch(
    name: str,
) -> None:
    # Earlier versions kept heads of 4,096–8,192 observations; a state they wrote must go on
    # under a smaller head: archived down to it on the next batch, outputs unchanged.
    log = build_log(history(700, intraday=False))
    earlier = attrs.evolve(ANALYTICS[name](), head_size=400)
    now = attrs.evolve(ANALYTICS[name](), head_size=60)
    first_part = 500
    streamed = AnalyzerHarness(earlier, intervals=_DAILY)
    streamed.feed(log.changes[:first_part])
    lookback = now.formula.lookback(timedelta(days=1))
    assert lookback is not None
    bound = 2 * max(60, lookback + 1)  # a head archives when it grows beyond twice its length
    assert len(_head(streamed.cache, name).times) > bound
    streamed.analyzer = now
    for start in range(first_part, len(log.changes), 30):
        streamed.feed(log.changes[start : start + 30])
    assert len(_head(streamed.cache, name).times) <= bound
    table = now.table.name
    assert streamed.rows(table) == recompute(ANALYTICS[name](), log, _DAILY).rows(table)


def test_window_sums_do_not_depend_on_where_the_array_starts() -> None:
    values = np.random.default_rng(5).normal(size=500)
    whole = window_sums(values, 20)
    for start in (1, 7, 133):
        np.testing.assert_array_equal(window_sums(values[start:], 20)[19:], whole[start + 19 :])


def test_a_stored_head_of_the_first_format_is_still_read() -> None:
    state = SeriesState(
        4,
        np.array([1, 2], np.int64),
        np.array([1.0, 2.0]),
        np.array([2], np.int64),
        np.ones((1, 3)),
    )
    first_format = state.encode()[12:]  # no magic, no segment count
    back = SeriesState.decode(first_format)
    assert back.last_position == 4 and back.segments == 0
    assert back.times.tolist() == [1, 2]


def test_a_series_kept_by_an_earlier_formula_version_is_rewritten_whole() -> None:
    log = build_log(history(60, intraday=False))
    cache = _stream(returns.analyzer(), log, 60)
    key = "returns:test|EUR|USD|mid"
    head = SeriesState.decode(cache.get_many([key])[key])
    # the first version of returns kept four output columns (no hidden EWMA variance)
    head.outputs = head.outputs[:, :4]
    cache.commit({key: head.encode()}, set())
    streamed = AnalyzerHarness(returns.analyzer(), intervals=_DAILY, cache=cache)
    last = sorted(log.rows.values(), key=lambda q: q.observed_at)[-1]
    change = log.upsert(quote(rate="1.5", observed_at=last.observed_at))
    assert change is not None
    writes = streamed.feed([change])
    assert sum(len(w) for w in writes) == len(log.rows) - 1  # every return row, written again
    state = SeriesState.decode(cache.get_many([key])[key])
    assert state.outputs.shape[1] == 5
