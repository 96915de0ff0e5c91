"""Naive robust anomaly scores: one event at a time in plain Python, the same formulas.

Per series it keeps the rates by time and a deque of the last 61 log returns; an appended
observation sorts its window of 60 previous returns for the median and again for the MAD; anything
else (a revision, a delete, an arrival out of order) replays the series from its first observation.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import timedelta

from fxcortex.core import RateChange

WINDOW = 60
THRESHOLDS = (3.5, 6.0, 10.0)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


class _Series:
    def __init__(self) -> None:
        self.rates: dict[object, float] = {}
        self.reset()

    def reset(self) -> None:
        self.last: object = None
        self.last_rate = 0.0
        self.returns: deque[float] = deque(maxlen=WINDOW + 1)
        self.rows: dict[object, tuple[float, float | None, int]] = {}

    def append(self, when: object, rate: float) -> None:
        if self.last is not None:
            self.returns.append(math.log(rate / self.last_rate))
            if len(self.returns) == WINDOW + 1:
                window = list(self.returns)[:-1]
                current = self.returns[-1]
                median = _median(window)
                mad = _median([abs(r - median) for r in window])
                if mad > 0:
                    z: float | None = (current - median) / (1.4826 * mad)
                    severity = sum(abs(z) >= t for t in THRESHOLDS)  # type: ignore[arg-type]
                else:
                    z = 0.0 if current == median else None
                    severity = 0 if z == 0.0 else 3
                self.rows[when] = (current, z, severity)
        self.last, self.last_rate = when, rate

    def rebuild(self) -> None:
        self.reset()
        for when in sorted(self.rates):  # type: ignore[type-var]
            self.append(when, self.rates[when])


def run(changes: Sequence[RateChange], intervals: Mapping[str, timedelta]) -> int:
    """Process ``changes`` one by one; the number of rows at the end."""
    series: dict[tuple[object, ...], _Series] = {}
    for change in changes:
        if change.before is not None:
            state = series.get(change.before.series)
            if state is not None and state.rates.pop(change.before.observed_at, None) is not None:
                state.rebuild()
        if change.after is not None:
            after = change.after
            state = series.setdefault(after.series, _Series())
            fresh = after.observed_at not in state.rates
            state.rates[after.observed_at] = float(after.rate)
            if fresh and (state.last is None or after.observed_at > state.last):  # type: ignore[operator]
                state.append(after.observed_at, float(after.rate))
            else:
                state.rebuild()
    return sum(len(s.rows) for s in series.values())
