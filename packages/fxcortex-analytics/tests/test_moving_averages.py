"""Moving averages and crossovers: formulas, signals, and streaming equals batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics import moving_averages as ma
from fxcortex.core import FetchWindow
from fxcortex.core.strategies import build_log, deliveries, operations, recompute
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

DAILY = {"test": timedelta(days=1)}
FIRST = datetime(2024, 1, 1, 14, tzinfo=UTC)


def fixes(rates: list[float]) -> ChangeLog:
    log = ChangeLog()
    for day, rate in enumerate(rates):
        log.upsert(quote(rate=f"{rate:.6f}", observed_at=FIRST + timedelta(days=day)))
    return log


def column(harness: AnalyzerHarness, name: str) -> list[object]:
    rows = harness.rows("moving_averages")
    return [rows[key][name] for key in sorted(rows, key=lambda k: k[4])]


def test_the_fast_sma_is_the_mean_of_the_last_twenty_rates() -> None:
    rates = [1.0 + 0.01 * i for i in range(25)]
    harness = AnalyzerHarness(ma.analyzer(), intervals=DAILY)
    harness.feed(fixes(rates).changes)
    smas = column(harness, "sma_fast")
    assert smas[:19] == [None] * 19
    assert smas[19] == pytest.approx(sum(rates[:20]) / 20)
    assert smas[24] == pytest.approx(sum(rates[5:25]) / 20)
    assert column(harness, "sma_slow") == [None] * 25  # fewer than 50 observations


def test_the_ema_starts_at_the_first_rate_and_follows_its_recursion() -> None:
    rates = [1.0, 2.0, 3.0, 2.5]
    harness = AnalyzerHarness(ma.analyzer(), intervals=DAILY)
    harness.feed(fixes(rates).changes)
    alpha = 2 / 21
    expected = [1.0]
    for rate in rates[1:]:
        expected.append(alpha * rate + (1 - alpha) * expected[-1])
    assert column(harness, "ema_fast") == pytest.approx(expected)


def test_a_trend_reversal_gives_one_crossover_each_way() -> None:
    # 60 days down, 60 days up, 60 days down: the fast average crosses the slow one
    # upwards once and downwards once, on the days it happens.
    down = [2.0 - 0.01 * i for i in range(60)]
    up = [down[-1] + 0.01 * (i + 1) for i in range(60)]
    again = [up[-1] - 0.01 * (i + 1) for i in range(60)]
    harness = AnalyzerHarness(ma.analyzer(), intervals=DAILY)
    harness.feed(fixes(down + up + again).changes)
    signals = column(harness, "crossover")
    assert signals.count(1.0) == 1 and signals.count(-1.0) == 1
    fast, slow = column(harness, "sma_fast"), column(harness, "sma_slow")
    rise = signals.index(1.0)
    assert fast[rise - 1] <= slow[rise - 1] and fast[rise] > slow[rise]  # type: ignore[operator]
    assert 60 < rise < signals.index(-1.0)


@given(data=st.data(), intraday=st.booleans())
def test_streamed_averages_equal_averages_recomputed_from_the_final_observations(
    data: st.DataObject, intraday: bool
) -> None:
    ops = data.draw(
        operations(("EUR/USD", "USD/IRR"), intraday=intraday, days=1 if intraday else 30)
    )
    log = build_log(ops)
    streamed = AnalyzerHarness(ma.analyzer(), intervals=DAILY)
    for batch, commit in data.draw(deliveries(log.changes)):
        streamed.feed(batch, commit_state=commit)
    assert streamed.rows("moving_averages") == recompute(ma.analyzer(), log, DAILY).rows(
        "moving_averages"
    )


def test_values_on_the_real_ecb_history_match_pandas() -> None:
    from fxcortex.sources.ecb import EcbSource

    jpy = sorted(
        (
            q
            for q in EcbSource().configure(location="bundled").fetch(FetchWindow())
            if q.pair.quote.code == "JPY"
        ),
        key=lambda q: q.observed_at,
    )
    log = ChangeLog()
    for q in jpy:
        log.upsert(q)
    harness = AnalyzerHarness(ma.analyzer(), intervals={"ecb": timedelta(days=1)})
    for start in range(0, len(log.changes), 700):
        harness.feed(log.changes[start : start + 700])
    rows = harness.rows("moving_averages")
    series = pd.Series([float(q.rate) for q in jpy], index=[q.observed_at for q in jpy])
    sma50 = series.rolling(50).mean()
    ema20 = series.ewm(alpha=2 / 21, adjust=False).mean()
    fast, slow = series.rolling(20).mean(), series.rolling(50).mean()
    above = np.sign(fast - slow)
    crossings = int(((above > 0) & (above.shift(1) <= 0)).sum())
    for moment in (series.index[60], series.index[4_000], series.index[-1]):
        row = rows[("ecb", "EUR", "JPY", "mid", moment)]
        assert row["sma_slow"] == pytest.approx(sma50[moment], rel=1e-9)
        assert row["ema_fast"] == pytest.approx(ema20[moment], rel=1e-12)
    assert sum(1 for row in rows.values() if row["crossover"] == 1.0) == crossings
