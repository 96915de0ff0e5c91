"""Naive returns and volatility: one event at a time in plain Python, the same formulas.

Per series it keeps the observations in a dict and, for an observation appended after the latest,
updates the last rate, a deque of the last 20 log returns and the EWMA variance; anything else (a
revision, a delete, an arrival out of order) recomputes the series from its first observation.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import timedelta

from fxcortex.core import RateChange

WINDOW = 20
LAMBDA = 0.94


def _annualiser(interval: timedelta | None) -> float:
    if interval is None or interval >= timedelta(days=1):
        return 252 * (timedelta(days=1) / (interval or timedelta(days=1)))
    return timedelta(days=365.25) / interval


def _stdev(values: deque[float]) -> float:
    """Sample standard deviation, two passes (statistics.stdev is exact and far slower)."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


class _Series:
    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.rates: dict[object, float] = {}
        self.last_time: object = None
        self.last_rate = 0.0
        self.window: deque[float] = deque(maxlen=WINDOW)
        self.variance: float | None = None
        self.rows: dict[object, tuple[float, float, float | None, float]] = {}

    def append(self, when: object, rate: float) -> None:
        if self.last_time is not None:
            log_return = math.log(rate / self.last_rate)
            self.window.append(log_return)
            squared = log_return * log_return
            if self.variance is None:
                self.variance = squared
            else:
                self.variance = LAMBDA * self.variance + (1 - LAMBDA) * squared
            volatility = (
                _stdev(self.window) * math.sqrt(self.scale) if len(self.window) == WINDOW else None
            )
            self.rows[when] = (
                rate / self.last_rate - 1,
                log_return,
                volatility,
                math.sqrt(self.scale * self.variance),
            )
        self.last_time, self.last_rate = when, rate

    def rebuild(self) -> None:
        observations = sorted(self.rates.items(), key=lambda item: item[0])  # type: ignore[arg-type,return-value]
        self.last_time, self.window, self.variance, self.rows = None, deque(maxlen=WINDOW), None, {}
        for when, rate in observations:
            self.append(when, rate)


def run(changes: Sequence[RateChange], intervals: Mapping[str, timedelta]) -> int:
    """Process ``changes`` one by one; the number of return rows at the end."""
    series: dict[tuple[object, ...], _Series] = {}
    for change in changes:
        if change.before is not None:
            before = change.before
            state = series.get(before.series)
            if state is not None and state.rates.pop(before.observed_at, None) is not None:
                state.rebuild()
        if change.after is not None:
            after = change.after
            state = series.get(after.series)
            if state is None:
                state = series[after.series] = _Series(_annualiser(intervals.get(after.source)))
            rate = float(after.rate)
            fresh = after.observed_at not in state.rates
            state.rates[after.observed_at] = rate
            if fresh and (state.last_time is None or after.observed_at > state.last_time):  # type: ignore[operator]
                state.append(after.observed_at, rate)
            else:
                state.rebuild()
    return sum(len(s.rows) for s in series.values())
