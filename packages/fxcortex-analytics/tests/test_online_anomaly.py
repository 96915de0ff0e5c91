"""The online anomaly model: it flags the unusual once warm, and it is deterministic."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fxcortex.analytics import online_anomaly
from fxcortex.core.strategies import build_log, deliveries, operations
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

START = datetime(2024, 1, 1, tzinfo=UTC)


def calm_with_jump(count: int, jump_at: int, seed: int = 11) -> ChangeLog:
    rng = np.random.default_rng(seed)
    log, rate = ChangeLog(), 1.1
    for i in range(count):
        rate *= math.exp(rng.normal(0, 0.002) + (0.08 if i == jump_at else 0.0))
        log.upsert(quote(rate=f"{rate:.10f}", observed_at=START + timedelta(hours=i)))
    return log


def test_a_jump_in_a_calm_series_scores_above_everything_around_it() -> None:
    harness = AnalyzerHarness(online_anomaly.analyzer())
    harness.feed(calm_with_jump(800, jump_at=600).changes)
    rows = {key[4]: row for key, row in harness.rows("online_anomaly").items()}
    jump = rows[START + timedelta(hours=600)]
    others = [
        r["score"] for t, r in rows.items() if t != jump["observed_at"] and not r["warming_up"]
    ]
    assert jump["flag"] == 1 and jump["warming_up"] == 0
    assert jump["score"] > max(others)
    assert sum(r["flag"] for r in rows.values()) < 10  # calm days rarely flag


def test_the_first_window_is_marked_as_warming_up() -> None:
    harness = AnalyzerHarness(online_anomaly.analyzer())
    harness.feed(calm_with_jump(300, jump_at=-1).changes)
    warming = [r["warming_up"] for _, r in sorted(harness.rows("online_anomaly").items())]
    assert warming == [1] * online_anomaly.WINDOW + [0] * (299 - online_anomaly.WINDOW)


@settings(max_examples=40)
@given(data=st.data())
def test_the_same_stream_gives_the_same_scores_whatever_the_batch_split(
    data: st.DataObject,
) -> None:
    ops = data.draw(operations(("EUR/USD", "USD/IRR"), intraday=True, days=1, max_size=80))
    log = build_log(ops)
    once = AnalyzerHarness(online_anomaly.analyzer())
    once.feed(log.changes)
    streamed = AnalyzerHarness(online_anomaly.analyzer())
    for batch, commit in data.draw(deliveries(log.changes)):
        streamed.feed(batch, commit_state=commit)
    assert streamed.rows("online_anomaly") == once.rows("online_anomaly")


def test_a_restarted_analyzer_continues_from_its_stored_model() -> None:
    log = calm_with_jump(500, jump_at=450)
    continuous = AnalyzerHarness(online_anomaly.analyzer())
    continuous.feed(log.changes)
    first = AnalyzerHarness(online_anomaly.analyzer())
    first.feed(log.changes[:260])
    again = AnalyzerHarness(online_anomaly.analyzer(), cache=first.cache, versions=first.versions)
    again.feed(log.changes[260:])
    assert again.rows("online_anomaly") == continuous.rows("online_anomaly")
