"""The online forecaster: it learns, it closes its predictions, and it is deterministic."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fxcortex.analytics.forecast import MODEL_VERSION, analyzer
from fxcortex.core.strategies import build_log, deliveries, operations
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

START = datetime(2024, 1, 1, tzinfo=UTC)


def ar1_log(count: int, phi: float = 0.6, seed: int = 5) -> ChangeLog:
    """Rates whose log returns follow r_t = phi * r_{t-1} + noise."""
    rng = np.random.default_rng(seed)
    log, rate, previous = ChangeLog(), 1.1, 0.0
    for i in range(count):
        previous = phi * previous + rng.normal(0, 0.001)
        rate *= math.exp(previous)
        log.upsert(quote(rate=f"{rate:.10f}", observed_at=START + timedelta(minutes=i)))
    return log


def test_each_prediction_is_closed_by_the_next_observation() -> None:
    harness = AnalyzerHarness(analyzer())
    harness.feed(ar1_log(12).changes)
    rows = [harness.rows("forecast")[k] for k in sorted(harness.rows("forecast"))]
    assert len(rows) == 12 - 5  # the first prediction needs five returns: the sixth rate
    assert all(r["model_version"] == MODEL_VERSION and r["horizon"] == 1 for r in rows)
    assert all(r["realised"] is not None for r in rows[:-1])
    assert rows[-1]["realised"] is None and rows[-1]["error"] is None  # still open
    first = rows[0]
    assert first["error"] == first["realised"] - first["predicted"]


def test_the_forecaster_learns_an_autoregressive_series() -> None:
    harness = AnalyzerHarness(analyzer())
    harness.feed(ar1_log(3_000).changes)
    rows = [harness.rows("forecast")[k] for k in sorted(harness.rows("forecast"))]
    closed = [r for r in rows if r["realised"] is not None][-1_000:]
    predicted = np.array([r["predicted"] for r in closed])
    realised = np.array([r["realised"] for r in closed])
    # It beats predicting "no change" clearly, and its forecasts track the returns.
    assert np.abs(realised - predicted).mean() < 0.9 * np.abs(realised).mean()
    assert np.corrcoef(predicted, realised)[0, 1] > 0.4


def test_white_noise_teaches_it_nothing_to_track() -> None:
    harness = AnalyzerHarness(analyzer())
    harness.feed(ar1_log(2_000, phi=0.0).changes)
    closed = [r for r in harness.rows("forecast").values() if r["realised"] is not None]
    predicted = np.array([r["predicted"] for r in closed][-1_000:])
    realised = np.array([r["realised"] for r in closed][-1_000:])
    assert abs(np.corrcoef(predicted, realised)[0, 1]) < 0.2


@settings(max_examples=40)
@given(data=st.data())
def test_the_same_stream_gives_the_same_predictions_whatever_the_batch_split(
    data: st.DataObject,
) -> None:
    ops = data.draw(operations(("EUR/USD", "USD/IRR"), intraday=True, days=1, max_size=80))
    log = build_log(ops)
    once = AnalyzerHarness(analyzer())
    once.feed(log.changes)
    streamed = AnalyzerHarness(analyzer())
    for batch, commit in data.draw(deliveries(log.changes)):
        streamed.feed(batch, commit_state=commit)
    assert streamed.rows("forecast") == once.rows("forecast")


def test_a_restarted_analyzer_continues_from_its_stored_model() -> None:
    log = ar1_log(400)
    continuous = AnalyzerHarness(analyzer())
    continuous.feed(log.changes)
    restarted = AnalyzerHarness(analyzer())
    restarted.feed(log.changes[:200])
    again = AnalyzerHarness(analyzer(), cache=restarted.cache)  # a new process, same cache
    again.versions = restarted.versions
    again.feed(log.changes[200:])
    assert again.rows("forecast") == continuous.rows("forecast")
