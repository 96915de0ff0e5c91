"""Robust anomaly scores of every series' returns: rolling median and MAD z-score, with severity.

For each log return ``r_i = ln(S_i / S_{i-1})`` with ``W = 60`` returns before it::

    m_i    = median(r_{i-W} … r_{i-1})                      the previous W returns, not r_i
    MAD_i  = median(|r_{i-W} − m_i| … |r_{i-1} − m_i|)
    z_i    = (r_i − m_i) / (1.4826 · MAD_i)                 1.4826 · MAD estimates σ for normal data
    severity_i = 0 if |z| < 3.5, 1 if < 6, 2 if < 10, else 3

Median and MAD ignore the outliers they are meant to find, so one bad print or a devaluation
does not hide itself by inflating the scale the way a standard deviation would, and the day it
happens gets the score (a z over the previous returns only, never including the return itself).
A window whose returns are all equal (a peg) has MAD 0: a return that differs from them has no
finite score (``z_score`` is NULL) and severity 3 — a peg that breaks is the strongest signal —
and one that does not scores 0. Rows start at the ``W + 1``-th return.

Each score looks back a bounded ``W + 1`` observations, so after an append only the new tail is
computed; streaming equals batch through `fxcortex.analytics.series`.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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

NAME = "anomalies"
WINDOW = 60
SCALE = 1.4826
THRESHOLDS = (3.5, 6.0, 10.0)
OUTPUTS = ("log_return", "z_score", "median", "mad", "severity")

TABLE = series_table(
    NAME,
    "Robust z-score of each log return against the median and MAD of the previous returns.",
    (
        float_column("log_return", "ln(S_i / S_{i-1})"),
        float_column("z_score", f"(r - median) / ({SCALE} * MAD) over the previous {WINDOW}"),
        float_column("median", f"median of the previous {WINDOW} log returns"),
        float_column("mad", "median absolute deviation of those returns from their median"),
        float_column("severity", "0 normal, 1 |z|>=3.5, 2 |z|>=6, 3 |z|>=10"),
    ),
)


def median_and_mad(windows: Floats) -> tuple[Floats, Floats]:
    """Each row's median and median absolute deviation, the same bits as ``np.median`` gives.

    From each row sorted once, instead of two ``np.median`` calls (a partition each, on a copy):
    the median is the mean of the two middle values, and the ``k``-th smallest deviation is the
    least, over every ``k`` neighbours in sorted order, of the larger deviation at their two
    ends — the ``k`` values nearest the median are neighbours, and ``|x − m|`` is largest at an
    end of any run of them. The deviations compared are the ones ``np.median`` sorts (``x − m``
    and ``m − x`` round alike), so the results are identical: 25 ms instead of 75 for 50,000
    windows of 60.
    """
    width = windows.shape[1]
    if width % 2 or np.isnan(windows).any():  # not the shape this is written for: the plain way
        median = np.median(windows, axis=1)
        return median, np.median(np.abs(windows - median[:, None]), axis=1)
    ordered = np.sort(np.ascontiguousarray(windows), axis=1)  # sorting a strided view is slow
    half = width // 2
    median = (ordered[:, half - 1] + ordered[:, half]) / 2
    deviations = ordered  # sorted values are not needed again: reuse their memory
    np.subtract(ordered, median[:, None], out=deviations)
    np.abs(deviations, out=deviations)

    def smallest_deviation(k: int) -> Floats:
        ends = np.maximum(deviations[:, : width - k + 1], deviations[:, k - 1 :])
        least: Floats = ends.min(axis=1)
        return least

    return median, (smallest_deviation(half) + smallest_deviation(half + 1)) / 2


def scores(returns: Floats, first: int = WINDOW) -> Floats:
    """Rows (r, z, median, MAD, severity) for the returns from index ``first`` (≥ WINDOW) on."""
    count = len(returns) - first
    out = np.full((max(count, 0), len(OUTPUTS)), np.nan)
    if count <= 0:
        return out
    # the window of return i is returns[i - WINDOW : i]
    windows = sliding_window_view(returns[first - WINDOW : len(returns) - 1], WINDOW)
    median, mad = median_and_mad(windows)
    current = returns[first:]
    deviation = current - median
    flat = mad == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(flat, np.nan, deviation / (SCALE * mad))
    z[flat & (deviation == 0)] = 0.0
    severity = np.searchsorted(np.array(THRESHOLDS), np.abs(z), side="right").astype(np.float64)
    severity[flat & (deviation != 0)] = len(THRESHOLDS)  # any move off a flat window
    out[:, 0] = current
    out[:, 1] = z
    out[:, 2] = median
    out[:, 3] = mad
    out[:, 4] = severity
    return out


class AnomaliesFormula(SeriesFormula):
    """The formulas of the module docstring, on whole series or on their new tail."""

    def compute(
        self, times: Micros, rates: Floats, interval: timedelta | None
    ) -> tuple[Micros, Floats]:
        """One row per return that has WINDOW returns before it."""
        return self._rows(times, rates, 0)

    def compute_since(
        self, times: Micros, rates: Floats, interval: timedelta | None, settled: int
    ) -> tuple[Micros, Floats]:
        """Only the rows after ``settled``, from the WINDOW + 1 observations before them."""
        return self._rows(times, rates, int(np.searchsorted(times, settled, side="right")))

    def lookback(self, interval: timedelta | None) -> int | None:
        """The window's returns and the rate before them: nothing older changes a row."""
        return WINDOW + 1

    @staticmethod
    def _rows(times: Micros, rates: Floats, first_observation: int) -> tuple[Micros, Floats]:
        # Observation j (j ≥ WINDOW + 1) has return index j − 1 and a row.
        first = max(first_observation, WINDOW + 1)
        if first >= len(times):
            return times[:0], np.empty((0, len(OUTPUTS)))
        start = first - WINDOW - 1  # the first rate the rows need
        returns = np.diff(np.log(rates[start:]))
        return times[first:], scores(returns, WINDOW)


def analyzer() -> SeriesAnalyzer:
    """The robust anomaly analytic."""
    return SeriesAnalyzer(
        name=NAME,
        description=f"Median/MAD z-score of each log return over the previous {WINDOW}",
        table=TABLE,
        formula=AnomaliesFormula(),
        outputs=OUTPUTS,
    )


@hookimpl
def fxcortex_register_analyzers(register: RegisterAnalyzer) -> None:
    """Register the robust anomaly analytic."""
    register(analyzer())
