"""Robust anomaly scores: the day of a jump, pegs, and streaming equals batch."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics import anomalies
from fxcortex.core import FetchWindow
from fxcortex.core.strategies import build_log, deliveries, operations, recompute
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

DAILY = {"test": timedelta(days=1)}
FIRST = datetime(2024, 1, 1, 14, tzinfo=UTC)


def feed(rates: list[float], pair: str = "EUR/USD") -> AnalyzerHarness:
    log = ChangeLog()
    for day, rate in enumerate(rates):
        log.upsert(quote(pair=pair, rate=f"{rate:.8f}", observed_at=FIRST + timedelta(days=day)))
    harness = AnalyzerHarness(anomalies.analyzer(), intervals=DAILY)
    harness.feed(log.changes)
    return harness


def by_day(harness: AnalyzerHarness) -> dict[int, dict[str, object]]:
    return {(key[4] - FIRST).days: row for key, row in harness.rows("anomalies").items()}


def calm(days: int, seed: int = 3) -> list[float]:
    steps = np.random.default_rng(seed).normal(0, 0.003, days)
    return list(1.1 * np.exp(np.cumsum(steps)))


def test_a_devaluation_scores_severity_three_on_its_day_only() -> None:
    rates = calm(100)
    rates[80:] = [r * 1.2 for r in rates[80:]]  # a 20 % jump on day 80, then calm again
    rows = by_day(feed(rates))
    assert rows[80]["severity"] == 3.0
    assert all(rows[d]["severity"] == 0.0 for d in range(81, 90))
    assert all(row["severity"] <= 1.0 for d, row in rows.items() if d != 80)  # type: ignore[operator]


def test_rows_start_once_a_full_window_of_returns_precedes_them() -> None:
    rows = by_day(feed(calm(70)))
    assert min(rows) == anomalies.WINDOW + 1 and max(rows) == 69


def test_the_score_uses_the_previous_returns_median_and_mad() -> None:
    rates = calm(80)
    rows = by_day(feed(rates))
    returns = np.diff(np.log(np.array([float(f"{r:.8f}") for r in rates])))
    window = returns[75 - 1 - anomalies.WINDOW : 75 - 1]
    median = float(np.median(window))
    mad = float(np.median(np.abs(window - median)))
    assert rows[75]["median"] == pytest.approx(median)
    assert rows[75]["z_score"] == pytest.approx((returns[74] - median) / (1.4826 * mad))


def test_a_peg_that_breaks_is_severe_and_a_peg_that_holds_is_not() -> None:
    peg = [3.75] * 70 + [3.90] + [3.90] * 5
    rows = by_day(feed(peg, pair="USD/SAR"))
    assert rows[69]["z_score"] == 0.0 and rows[69]["severity"] == 0.0
    assert rows[70]["z_score"] is None and rows[70]["severity"] == 3.0
    assert rows[70]["log_return"] == pytest.approx(math.log(3.90 / 3.75))


@given(data=st.data())
def test_streamed_scores_equal_scores_recomputed_from_the_final_observations(
    data: st.DataObject,
) -> None:
    # Few distinct days and a short window would rarely produce rows; fill the first 70 days
    # and let the operations revise, delete and extend them.
    ops: list[tuple[str, object]] = [
        ("upsert", ("EUR/USD", f"{1 + 0.001 * ((i * 5) % 7)}", FIRST + timedelta(days=i), "test"))
        for i in range(70)
    ]
    ops += data.draw(operations(("EUR/USD",), first=FIRST.date(), days=80, max_size=40))
    log = build_log(ops)
    streamed = AnalyzerHarness(anomalies.analyzer(), intervals=DAILY)
    for batch, commit in data.draw(deliveries(log.changes)):
        streamed.feed(batch, commit_state=commit)
    expected = recompute(anomalies.analyzer(), log, DAILY).rows("anomalies")
    assert streamed.rows("anomalies") == expected


def test_the_real_ecb_history_flags_the_franc_floor_removal() -> None:
    from fxcortex.sources.ecb import EcbSource

    chf = sorted(
        (
            q
            for q in EcbSource().configure(location="bundled").fetch(FetchWindow())
            if q.pair.quote.code == "CHF"
        ),
        key=lambda q: q.observed_at,
    )
    log = ChangeLog()
    for q in chf:
        log.upsert(q)
    harness = AnalyzerHarness(anomalies.analyzer(), intervals={"ecb": timedelta(days=1)})
    for start in range(0, len(log.changes), 1_500):
        harness.feed(log.changes[start : start + 1_500])
    rows = harness.rows("anomalies")
    # 15 January 2015: the Swiss National Bank dropped the EUR/CHF floor of 1.20.
    floor_day = next(k for k in rows if k[4].date() == datetime(2015, 1, 15).date())
    assert rows[floor_day]["severity"] == 3.0

    series = pd.Series([float(q.rate) for q in chf], index=[q.observed_at for q in chf])
    logs = np.log(series / series.shift(1)).dropna()
    median = logs.shift(1).rolling(anomalies.WINDOW).median()
    moment = logs.index[5_000]
    assert rows[("ecb", "EUR", "CHF", "mid", moment)]["median"] == pytest.approx(median[moment])


# returns with many ties (rounded, repeated, zero) as well as spread ones: the order statistics
# of deviations are where ties bite
window_returns = st.lists(
    st.one_of(
        st.sampled_from([0.0, 1e-3, -1e-3, 2e-3, 5e-4]),
        st.floats(-0.2, 0.2, allow_nan=False, allow_subnormal=False),
    ),
    min_size=anomalies.WINDOW,
    max_size=anomalies.WINDOW + 40,
)


@given(window_returns)
def test_median_and_mad_are_the_bits_np_median_gives(returns: list[float]) -> None:
    windows = np.lib.stride_tricks.sliding_window_view(np.array(returns), anomalies.WINDOW)

    median, mad = anomalies.median_and_mad(windows)

    expected_median = np.median(windows, axis=1)
    expected_mad = np.median(np.abs(windows - expected_median[:, None]), axis=1)
    assert np.array_equal(median, expected_median)
    assert np.array_equal(mad, expected_mad)


def test_median_and_mad_of_an_odd_window_take_the_plain_way() -> None:
    windows = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 5.0]])
    median, mad = anomalies.median_and_mad(windows)
    assert median.tolist() == [2.0, 1.0]
    assert mad.tolist() == [1.0, 0.0]
