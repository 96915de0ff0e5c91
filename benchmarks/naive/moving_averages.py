"""Naive moving averages: one event at a time in plain Python, the same formulas.

Per series it keeps the rates by time; an observation appended after the latest updates two
deques, their sums, two EMAs and the crossover state; anything else (a revision, a delete, an
arrival out of order) replays the series from its first observation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from datetime import timedelta

from fxcortex.core import RateChange

FAST, SLOW = 20, 50


class _Series:
    def __init__(self) -> None:
        self.rates: dict[object, float] = {}
        self.reset()

    def reset(self) -> None:
        self.last: object = None
        self.fast: deque[float] = deque(maxlen=FAST)
        self.slow: deque[float] = deque(maxlen=SLOW)
        self.ema_fast = self.ema_slow = 0.0
        self.side: float | None = None
        self.rows: dict[object, tuple[float, float, float | None, float | None, float | None]] = {}

    def append(self, when: object, rate: float) -> None:
        if self.last is None:
            self.ema_fast = self.ema_slow = rate
        else:
            self.ema_fast += 2 / (FAST + 1) * (rate - self.ema_fast)
            self.ema_slow += 2 / (SLOW + 1) * (rate - self.ema_slow)
        self.fast.append(rate)
        self.slow.append(rate)
        fast = sum(self.fast) / FAST if len(self.fast) == FAST else None
        slow = sum(self.slow) / SLOW if len(self.slow) == SLOW else None
        signal = None
        if fast is not None and slow is not None:
            side = (fast > slow) - (fast < slow)
            signal = 0.0
            if self.side is not None and side > 0 >= self.side:
                signal = 1.0
            elif self.side is not None and side < 0 <= self.side:
                signal = -1.0
            self.side = side
        self.rows[when] = (self.ema_fast, self.ema_slow, fast, slow, signal)
        self.last = when

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
