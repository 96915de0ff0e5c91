"""Returns and volatility: formulas, annualisation, and streaming equals batch."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics import returns
from fxcortex.analytics.series import SeriesState
from fxcortex.core import FetchWindow
from fxcortex.core.batch import from_micros
from fxcortex.core.state import BatchContext, BufferedState, MemoryCache
from fxcortex.core.strategies import build_log, deliveries, operations, recompute
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

DAILY = {"test": timedelta(days=1)}


def fixes(rates: list[str], first: datetime = datetime(2024, 1, 1, 14, tzinfo=UTC)) -> ChangeLog:
    log = ChangeLog()
    for day, rate in enumerate(rates):
        log.upsert(quote(rate=rate, observed_at=first + timedelta(days=day)))
    return log


def row_at(harness: AnalyzerHarness, moment: datetime) -> dict[str, object]:
    return harness.rows("returns")[("test", "EUR", "USD", "mid", moment)]


def test_each_fix_after_the_first_gets_its_simple_and_log_return() -> None:
    harness = AnalyzerHarness(returns.analyzer(), intervals=DAILY)
    harness.feed(fixes(["1.00", "1.10", "0.99"]).changes)
    rows = harness.rows("returns")
    assert len(rows) == 2  # the first fix has nothing to return against
    second = row_at(harness, datetime(2024, 1, 2, 14, tzinfo=UTC))
    third = row_at(harness, datetime(2024, 1, 3, 14, tzinfo=UTC))
    assert second["simple_return"] == pytest.approx(0.10)
    assert second["log_return"] == pytest.approx(math.log(1.1))
    assert third["simple_return"] == pytest.approx(0.99 / 1.10 - 1)
    assert second["volatility"] is None  # fewer than WINDOW returns so far


def test_ewma_volatility_follows_the_riskmetrics_recursion() -> None:
    rates = ["1.0", "1.01", "0.995", "1.02", "1.0"]
    harness = AnalyzerHarness(returns.analyzer(), intervals=DAILY)
    harness.feed(fixes(rates).changes)
    logs = [math.log(float(b) / float(a)) for a, b in itertools.pairwise(rates)]
    variance = logs[0] ** 2
    expected = [variance]
    for r in logs[1:]:
        variance = 0.94 * variance + 0.06 * r * r
        expected.append(variance)
    got = [
        row_at(harness, datetime(2024, 1, 2 + i, 14, tzinfo=UTC))["ewma_volatility"]
        for i in range(len(logs))
    ]
    assert got == pytest.approx([math.sqrt(252 * v) for v in expected])


def test_annualisation_follows_the_observation_interval() -> None:
    empty = np.empty(0, np.int64)
    assert returns.periods_per_year(timedelta(days=1), empty) == 252
    assert returns.periods_per_year(timedelta(days=7), empty) == pytest.approx(36)
    assert returns.periods_per_year(timedelta(hours=1), empty) == pytest.approx(365.25 * 24)
    hourly = np.arange(10, dtype=np.int64) * 3_600_000_000
    assert returns.periods_per_year(None, hourly) == pytest.approx(365.25 * 24)


def test_revising_a_past_fix_rewrites_the_returns_on_both_sides_of_it() -> None:
    log = fixes(["1.00", "1.10", "1.21", "1.331"])
    harness = AnalyzerHarness(returns.analyzer(), intervals=DAILY)
    harness.feed(log.changes)
    revision = log.upsert(quote(rate="1.00", observed_at=datetime(2024, 1, 2, 14, tzinfo=UTC)))
    assert revision is not None
    writes = harness.feed([revision])
    written = {from_micros(t) for t in writes[0].columns["observed_at"].tolist()}
    assert written >= {
        datetime(2024, 1, 2, 14, tzinfo=UTC),
        datetime(2024, 1, 3, 14, tzinfo=UTC),
    }
    assert row_at(harness, datetime(2024, 1, 2, 14, tzinfo=UTC))["simple_return"] == 0.0
    assert row_at(harness, datetime(2024, 1, 3, 14, tzinfo=UTC))["simple_return"] == (
        pytest.approx(0.21)
    )


def test_deleting_the_second_fix_withdraws_its_row_and_bridges_the_gap() -> None:
    log = fixes(["1.00", "1.10", "1.21"])
    harness = AnalyzerHarness(returns.analyzer(), intervals=DAILY)
    harness.feed(log.changes)
    second = quote(rate="1.10", observed_at=datetime(2024, 1, 2, 14, tzinfo=UTC))
    deletion = log.delete(second.key)
    assert deletion is not None
    harness.feed([deletion])
    rows = harness.rows("returns")
    assert list(rows) == [("test", "EUR", "USD", "mid", datetime(2024, 1, 3, 14, tzinfo=UTC))]
    assert next(iter(rows.values()))["simple_return"] == pytest.approx(0.21)


def test_a_batch_that_changes_nothing_writes_nothing() -> None:
    log = fixes(["1.00", "1.10", "1.21"])
    harness = AnalyzerHarness(returns.analyzer(), intervals=DAILY)
    harness.feed(log.changes)
    assert harness.feed(log.changes) == []  # re-delivered: positions already applied


def test_series_state_round_trips_through_bytes() -> None:
    state = SeriesState(
        7,
        np.array([1, 2, 3], np.int64),
        np.array([1.5, 2.5, 3.5]),
        np.array([2, 3], np.int64),
        np.array([[0.1, np.nan], [0.2, 0.3]]),
    )
    back = SeriesState.decode(state.encode())
    assert back.last_position == 7
    assert back.times.tolist() == [1, 2, 3]
    assert back.rates.tolist() == [1.5, 2.5, 3.5]
    assert back.output_times.tolist() == [2, 3]
    np.testing.assert_array_equal(back.outputs, state.outputs)


@given(data=st.data(), intraday=st.booleans())
def test_streamed_returns_equal_returns_recomputed_from_the_final_observations(
    data: st.DataObject, intraday: bool
) -> None:
    ops = data.draw(
        operations(("EUR/USD", "USD/IRR"), intraday=intraday, days=1 if intraday else 20)
    )
    log = build_log(ops)
    intervals = {"test": timedelta(seconds=1) if intraday else timedelta(days=1)}
    streamed = AnalyzerHarness(returns.analyzer(), intervals=intervals)
    for batch, commit in data.draw(deliveries(log.changes)):
        streamed.feed(batch, commit_state=commit)
    expected = recompute(returns.analyzer(), log, intervals).rows("returns")
    assert streamed.rows("returns") == expected


def test_values_on_the_real_ecb_history_match_pandas() -> None:
    from fxcortex.sources.ecb import EcbSource

    quotes = list(EcbSource().configure(location="bundled").fetch(FetchWindow()))
    usd = sorted((q for q in quotes if q.pair.quote.code == "USD"), key=lambda q: q.observed_at)
    log = ChangeLog()
    for q in usd:
        log.upsert(q)
    harness = AnalyzerHarness(returns.analyzer(), intervals={"ecb": timedelta(days=1)})
    for start in range(0, len(log.changes), 1_000):  # a streamed history, in batches
        harness.feed(log.changes[start : start + 1_000])
    rows = harness.rows("returns")

    series = pd.Series([float(q.rate) for q in usd], index=[q.observed_at for q in usd])
    logs = np.log(series / series.shift(1)).dropna()
    rolling = logs.rolling(20).std(ddof=1) * math.sqrt(252)
    ewma = np.sqrt(252 * (logs**2).ewm(alpha=0.06, adjust=False).mean())
    for moment in (logs.index[100], logs.index[3_000], logs.index[-1]):
        row = rows[("ecb", "EUR", "USD", "mid", moment)]
        assert row["log_return"] == pytest.approx(logs[moment], rel=1e-12)
        assert row["volatility"] == pytest.approx(rolling[moment], rel=1e-9)
        assert row["ewma_volatility"] == pytest.approx(ewma[moment], rel=1e-9)


def test_state_is_kept_per_series() -> None:
    cache = MemoryCache()
    state = BufferedState(cache, "returns")
    log = fixes(["1.0", "1.1"])
    log.upsert(quote(pair="EUR/JPY", rate="160", observed_at="2024-01-01T14:00:00+00:00"))
    returns.analyzer().process(log.changes, BatchContext(state, DAILY))
    assert set(state.puts) == {"returns:test|EUR|USD|mid", "returns:test|EUR|JPY|mid"}
