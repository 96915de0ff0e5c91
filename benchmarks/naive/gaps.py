"""Naive gaps: one event at a time in plain Python, the same rules.

Per series it keeps the observations by time; every change re-derives the series' missing days
(or silences) from its observed days with date arithmetic, as a straightforward implementation
would after each event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta

from fxcortex.core import RateChange

LOOKBACK_DAYS = 7
SILENCE_INTERVALS = 10


def _daily(observations: dict[datetime, float]) -> int:
    by_day: dict[date, float] = {}
    for moment in sorted(observations):
        by_day[moment.date()] = observations[moment]
    if len(by_day) < 2:
        return 0
    days = sorted(by_day)
    rows = 0
    for previous, following in zip(days, days[1:], strict=False):
        missing = previous + timedelta(days=1)
        while missing < following:
            age = (missing - previous).days
            _row = (age, by_day[previous] if age <= LOOKBACK_DAYS else None, missing.weekday() >= 5)
            rows += 1
            missing += timedelta(days=1)
    return rows


def _silences(observations: dict[datetime, float], interval: timedelta) -> int:
    moments = sorted(observations)
    return sum(
        1
        for before, after in zip(moments, moments[1:], strict=False)
        if after - before > SILENCE_INTERVALS * interval
    )


def run(changes: Sequence[RateChange], intervals: Mapping[str, timedelta]) -> int:
    """Process ``changes`` one by one; the number of gap rows at the end."""
    series: dict[tuple[object, ...], dict[datetime, float]] = {}
    rows: dict[tuple[object, ...], int] = {}
    for change in changes:
        touched = []
        if change.before is not None and change.op.value != "c":
            observations = series.setdefault(change.before.series, {})
            observations.pop(change.before.observed_at, None)
            touched.append((change.before.series, change.before.source))
        if change.after is not None:
            observations = series.setdefault(change.after.series, {})
            observations[change.after.observed_at] = float(change.after.rate)
            touched.append((change.after.series, change.after.source))
        for key, source in touched:
            interval = intervals.get(source)
            if interval is None or interval >= timedelta(days=1):
                rows[key] = _daily(series[key])
            else:
                rows[key] = _silences(series[key], interval)
    return sum(rows.values())
