"""Returns and volatility of every series, observation to observation.

For a series with rates ``S_0, S_1, …`` in time order, each observation ``i ≥ 1`` gets::

    simple_return  R_i = S_i / S_{i-1} − 1
    log_return     r_i = ln(S_i / S_{i-1})

    volatility     σ_i = sqrt(P) · stdev(r_{i-W+1}, …, r_i)        (sample stdev, W = 20 returns,
                                                                   defined from i = W on)
    ewma_volatility
                   v_1 = r_1²,   v_i = λ · v_{i-1} + (1 − λ) · r_i²  (RiskMetrics, λ = 0.94)
                   σ^EWMA_i = sqrt(P · v_i)

Both volatilities are annualised with ``P`` observations per year, taken from the source's declared
observation interval ``Δ``:

- ``Δ ≥ 1 day`` (fixes published on business days): ``P = 252 · (1 day / Δ)``, the trading-day
  convention, so a daily fix gets 252;
- ``Δ < 1 day`` (markets quoting around the clock): ``P = 365.25 days / Δ``;
- a source that is not installed: ``Δ`` is the median spacing of the series' own observations.

A return spans whatever lies between two consecutive observations (a weekend, a holiday): the
series is never interpolated; see the ``gaps`` analytic for the calendar view.

Streaming equals batch through `fxcortex.analytics.series`: a revised or deleted past fix rewrites
every return and volatility it feeds. Each row keeps ``v_i`` as a hidden column, so a long series
resumes its EWMA from the last stored value instead of from its first observation.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from scipy.signal import lfilter  # type: ignore[import-untyped]  # scipy ships no stubs

from fxcortex.analytics.series import (
    Floats,
    Micros,
    RegisterAnalyzer,
    SeriesAnalyzer,
    SeriesFormula,
    float_column,
    series_table,
    window_sums,
)
from fxcortex.core import hookimpl

NAME = "returns"
WINDOW = 20
LAMBDA = 0.94
TRADING_DAYS = 252
_DAY = timedelta(days=1)
_YEAR = timedelta(days=365.25)

TABLE = series_table(
    NAME,
    "Simple and log returns per observation, with rolling and EWMA volatility (annualised).",
    (
        float_column("simple_return", "S_i / S_{i-1} - 1"),
        float_column("log_return", "ln(S_i / S_{i-1})"),
        float_column("volatility", f"annualised stdev of the last {WINDOW} log returns"),
        float_column("ewma_volatility", f"annualised RiskMetrics EWMA volatility, λ={LAMBDA}"),
    ),
)


def periods_per_year(interval: timedelta | None, times: Micros) -> float:
    """Observations per year for annualising (see the module docstring)."""
    if interval is None:
        if len(times) < 2:
            return float(TRADING_DAYS)
        interval = timedelta(microseconds=float(np.median(np.diff(times))))
    if interval <= timedelta(0):
        return float(TRADING_DAYS)
    if interval >= _DAY:
        return TRADING_DAYS * (_DAY / interval)
    return _YEAR / interval


def log_returns(rates: Floats) -> Floats:
    """r_i = ln(S_i / S_{i-1}) for i ≥ 1 (one shorter than ``rates``)."""
    result: Floats = np.diff(np.log(rates))
    return result


def rolling_stdev(values: Floats, window: int) -> Floats:
    """Sample stdev of each full window ending at each position; NaN before the first.

    From each window's own sums of the values and of their squares (`window_sums`), so a value
    depends on its window only. Returns have a mean far below their spread, so the subtraction
    loses nothing material.
    """
    total = window_sums(values, window)
    total_squares = window_sums(values * values, window)
    variance = (total_squares - total * total / window) / (window - 1)
    with np.errstate(invalid="ignore"):  # NaN before the first full window stays NaN
        return np.sqrt(np.maximum(variance, 0.0))


def ewma_variance(returns: Floats, decay: float = LAMBDA, prior: float | None = None) -> Floats:
    """v_1 = r_1², v_i = λ v_{i-1} + (1 − λ) r_i² over ``returns`` (a linear recursive filter).

    With ``prior``, the recursion goes on from an earlier v instead of starting afresh: the
    filter's state is ``λ · v`` either way, so the values are the same bits as one pass.
    """
    if not len(returns):
        return np.empty(0, np.float64)
    squared = returns * returns
    if prior is not None:
        result: Floats = lfilter([1.0 - decay], [1.0, -decay], squared, zi=[decay * prior])[0]
        return result
    out = np.empty(len(returns))
    out[0] = squared[0]
    if len(returns) > 1:
        rest, _ = lfilter([1.0 - decay], [1.0, -decay], squared[1:], zi=[decay * squared[0]])
        out[1:] = rest
    return out


class ReturnsFormula(SeriesFormula):
    """The formulas of the module docstring, on whole series or on their tail."""

    hidden_columns = 1  # v_i, the EWMA variance, to resume the recursion from

    def compute(
        self, times: Micros, rates: Floats, interval: timedelta | None
    ) -> tuple[Micros, Floats]:
        """One row per observation; the first observation of a series has no return (no row)."""
        return times, self._rows(rates, periods_per_year(interval, times), None)

    def lookback(self, interval: timedelta | None) -> int | None:
        """The rolling window's returns, and the rate before them; none without an interval.

        Without a declared interval the annualisation comes from the whole series' spacing.
        """
        return None if interval is None else WINDOW + 1

    def compute_tail(
        self, times: Micros, rates: Floats, interval: timedelta | None, prior: Floats | None
    ) -> tuple[Micros, Floats] | None:
        """The rows after ``times[0]``, the EWMA going on from the variance stored for it."""
        if prior is None or np.isnan(prior[4]):
            return None
        return times, self._rows(rates, periods_per_year(interval, times), float(prior[4]))

    @staticmethod
    def _rows(rates: Floats, scale: float, prior: float | None) -> Floats:
        outputs = np.full((len(rates), 5), np.nan)
        if len(rates) >= 2:
            logs = log_returns(rates)
            variance = ewma_variance(logs, prior=prior)
            outputs[1:, 0] = rates[1:] / rates[:-1] - 1.0
            outputs[1:, 1] = logs
            outputs[1:, 2] = rolling_stdev(logs, WINDOW) * np.sqrt(scale)
            outputs[1:, 3] = np.sqrt(variance * scale)
            outputs[1:, 4] = variance
        return outputs


def analyzer() -> SeriesAnalyzer:
    """The returns-and-volatility analytic."""
    return SeriesAnalyzer(
        name=NAME,
        description="Simple/log returns, rolling and EWMA (λ=0.94) volatility, annualised",
        table=TABLE,
        formula=ReturnsFormula(),
        outputs=("simple_return", "log_return", "volatility", "ewma_volatility"),
    )


@hookimpl
def fxcortex_register_analyzers(register: RegisterAnalyzer) -> None:
    """Register the returns analytic."""
    register(analyzer())
