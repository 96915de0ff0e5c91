"""Naive gaps: one event at a time in plain Python, the same rules.

Per series it keeps the observations by time; an observation appended after the latest adds the
missing days (or the silence) between the two with date arithmetic; anything else (a revision, a
delete, an arrival out of order) re-derives the series' gaps from all its observations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from fxcortex.core import RateChange

LOOKBACK_DAYS = 7
SILENCE_INTERVALS = 10


class _Series:
    def __init__(self, interval: timedelta | None) -> None:
        self.daily = interval is None or interval >= timedelta(days=1)
        self.interval = interval or timedelta(days=1)
        self.rates: dict[datetime, float] = {}
        self.rows: dict[object, tuple[float, float | None, int]] = {}
        self.last: datetime | None = None

    def append(self, moment: datetime, rate: float) -> None:
        last = self.last
        if last is not None and self.daily:
            before: date = last.date()
            missing = before + timedelta(days=1)
            while missing < moment.date():
                age = (missing - before).days
                carried = self.rates[last] if age <= LOOKBACK_DAYS else None
                self.rows[missing] = (age, carried, 1 if missing.weekday() >= 5 else 2)
                missing += timedelta(days=1)
        elif last is not None and moment - last > SILENCE_INTERVALS * self.interval:
            self.rows[moment] = ((moment - last) / timedelta(days=1), self.rates[last], 3)
        self.rates[moment] = rate
        self.last = moment

    def rebuild(self) -> None:
        observations = sorted(self.rates.items())
        self.rates, self.rows, self.last = {}, {}, None
        for moment, rate in observations:
            self.append(moment, rate)


def run(changes: Sequence[RateChange], intervals: Mapping[str, timedelta]) -> int:
    """Process ``changes`` one by one; the number of gap rows at the end."""
    series: dict[tuple[object, ...], _Series] = {}
    for change in changes:
        if change.before is not None and change.op.value != "c":
            state = series.get(change.before.series)
            if state is not None and state.rates.pop(change.before.observed_at, None) is not None:
                state.rebuild()
        if change.after is not None:
            after = change.after
            state = series.setdefault(after.series, _Series(intervals.get(after.source)))
            if after.observed_at not in state.rates and (
                state.last is None or after.observed_at > state.last
            ):
                state.append(after.observed_at, float(after.rate))
            else:
                state.rates[after.observed_at] = float(after.rate)
                state.rebuild()
    return sum(len(s.rows) for s in series.values())
