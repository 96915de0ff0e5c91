"""Moving averages of every series and the crossover signals between a fast and a slow one.

For a series with rates ``S_0, S_1, …`` in time order, each observation ``i`` gets::

    sma_fast  = mean(S_{i-F+1} … S_i)                 defined from i = F − 1 on   (F = 20)
    sma_slow  = mean(S_{i-L+1} … S_i)                 defined from i = L − 1 on   (L = 50)
    ema_fast  E_0 = S_0,  E_i = α_F · S_i + (1 − α_F) · E_{i-1},   α_F = 2 / (F + 1)
    ema_slow  the same with α_L = 2 / (L + 1)
    crossover +1 on the observation where sma_fast moves from at or below sma_slow to above it,
              −1 where it moves from at or above to below, 0 otherwise (and on the first
              observation where both are defined: a crossing needs a before)

Windows count observations, not calendar days: a daily fix's 20 observations are four weeks of
business days. The EMAs are seeded with the first rate (so they are defined from the first
observation on) and are a recursive filter over the whole series; the SMAs come from running sums,
so each value depends only on the observations up to it, as the series framework requires.

Streaming equals batch through `fxcortex.analytics.series`: a revised or deleted past rate
rewrites every average and signal it feeds.
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
)
from fxcortex.core import hookimpl

NAME = "moving_averages"
FAST = 20
SLOW = 50
OUTPUTS = ("ema_fast", "ema_slow", "sma_fast", "sma_slow", "crossover")

TABLE = series_table(
    NAME,
    "Simple and exponential moving averages per observation, with fast/slow crossover signals.",
    (
        float_column("ema_fast", f"EMA over {FAST} observations, alpha = 2/({FAST}+1)"),
        float_column("ema_slow", f"EMA over {SLOW} observations, alpha = 2/({SLOW}+1)"),
        float_column("sma_fast", f"mean of the last {FAST} rates"),
        float_column("sma_slow", f"mean of the last {SLOW} rates"),
        float_column("crossover", "+1 fast SMA crosses above slow, -1 below, 0 otherwise"),
    ),
)


def sma(values: Floats, window: int) -> Floats:
    """Mean of each full window ending at each position (running sums: O(n), causal)."""
    out = np.full(len(values), np.nan)
    if len(values) >= window:
        sums = np.concatenate(([0.0], np.cumsum(values)))
        out[window - 1 :] = (sums[window:] - sums[:-window]) / window
    return out


def ema(values: Floats, window: int) -> Floats:
    """E_0 = S_0, E_i = α S_i + (1 − α) E_{i-1} with α = 2 / (window + 1)."""
    if not len(values):
        return np.empty(0, np.float64)
    alpha = 2.0 / (window + 1)
    out = np.empty(len(values))
    out[0] = values[0]
    if len(values) > 1:
        rest, _ = lfilter([alpha], [1.0, alpha - 1.0], values[1:], zi=[(1 - alpha) * values[0]])
        out[1:] = rest
    return out


def crossovers(fast: Floats, slow: Floats) -> Floats:
    """+1 where fast moves above slow, −1 where it moves below, 0 otherwise (NaN undefined)."""
    out = np.full(len(fast), np.nan)
    defined = ~(np.isnan(fast) | np.isnan(slow))
    side = np.sign(fast - slow)  # +1 above, −1 below, 0 equal
    out[defined] = 0.0
    both = defined[1:] & defined[:-1]
    current, before = side[1:], side[:-1]
    up = both & (current > 0) & (before <= 0)
    down = both & (current < 0) & (before >= 0)
    out[1:][up] = 1.0
    out[1:][down] = -1.0
    return out


class MovingAveragesFormula(SeriesFormula):
    """The formulas of the module docstring, on whole series."""

    def compute(
        self, times: Micros, rates: Floats, interval: timedelta | None
    ) -> tuple[Micros, Floats]:
        """One row per observation (the EMAs are defined from the first one)."""
        fast, slow = sma(rates, FAST), sma(rates, SLOW)
        outputs = np.column_stack(
            (ema(rates, FAST), ema(rates, SLOW), fast, slow, crossovers(fast, slow))
        ).reshape(len(times), len(OUTPUTS))
        return times, outputs


def analyzer() -> SeriesAnalyzer:
    """The moving-averages analytic."""
    return SeriesAnalyzer(
        name=NAME,
        description=f"SMA and EMA over {FAST} and {SLOW} observations, with crossover signals",
        table=TABLE,
        formula=MovingAveragesFormula(),
        outputs=OUTPUTS,
    )


@hookimpl
def fxcortex_register_analyzers(register: RegisterAnalyzer) -> None:
    """Register the moving-averages analytic."""
    register(analyzer())
