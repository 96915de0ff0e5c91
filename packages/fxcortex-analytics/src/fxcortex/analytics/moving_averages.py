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
observation on) and are a recursive filter over the whole series, which a long series resumes
from the EMAs stored for its last untouched observation; each SMA sums its own window, so a value
depends only on the observations in it, as the series framework requires.

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
    window_sums,
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
    """Mean of each full window ending at each position (each window's own sum: causal)."""
    result: Floats = window_sums(values, window) / window
    return result


def ema(values: Floats, window: int, prior: float | None = None) -> Floats:
    """E_0 = S_0, E_i = α S_i + (1 − α) E_{i-1} with α = 2 / (window + 1).

    With ``prior`` (the E of the observation before ``values[0]``) the recursion goes on from it:
    the filter's state is ``(1 − α) · E`` either way, so the values are the same bits.
    """
    if not len(values):
        return np.empty(0, np.float64)
    alpha = 2.0 / (window + 1)
    if prior is not None:
        result: Floats = lfilter([alpha], [1.0, alpha - 1.0], values, zi=[(1 - alpha) * prior])[0]
        return result
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
    """The formulas of the module docstring, on whole series or on their tail."""

    def compute(
        self, times: Micros, rates: Floats, interval: timedelta | None
    ) -> tuple[Micros, Floats]:
        """One row per observation (the EMAs are defined from the first one)."""
        return times, self._rows(rates, ema(rates, FAST), ema(rates, SLOW))

    def lookback(self, interval: timedelta | None) -> int | None:
        """The slow window, and the observation before it for the crossover."""
        return SLOW + 1

    def compute_tail(
        self, times: Micros, rates: Floats, interval: timedelta | None, prior: Floats | None
    ) -> tuple[Micros, Floats] | None:
        """The rows after ``times[0]``, the EMAs going on from the ones stored for it."""
        if prior is None:
            return None
        rest = rates[1:]
        fast = np.concatenate(([prior[0]], ema(rest, FAST, float(prior[0]))))
        slow = np.concatenate(([prior[1]], ema(rest, SLOW, float(prior[1]))))
        return times, self._rows(rates, fast, slow)

    @staticmethod
    def _rows(rates: Floats, ema_fast: Floats, ema_slow: Floats) -> Floats:
        fast, slow = sma(rates, FAST), sma(rates, SLOW)
        return np.column_stack((ema_fast, ema_slow, fast, slow, crossovers(fast, slow))).reshape(
            len(rates), len(OUTPUTS)
        )


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
