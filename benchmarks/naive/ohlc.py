"""Naive OHLC: one event at a time in plain Python, the same bars.

Per series, resolution and bucket it keeps the bucket's observations and its open, high, low and
close, updated in place when an observation arrives; a removal (revision or delete) rescans the
bucket. Buckets use calendar arithmetic on datetimes, as a straightforward implementation would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from fxcortex.core import RateChange

_RESOLUTIONS = (
    ("minute", timedelta(minutes=1)),
    ("hour", timedelta(hours=1)),
    ("day", timedelta(days=1)),
    ("week", timedelta(days=7)),
    ("month", timedelta(days=28)),
)


def _start(resolution: str, moment: datetime) -> datetime:
    if resolution == "minute":
        return moment.replace(second=0, microsecond=0)
    if resolution == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if resolution == "day":
        return day
    if resolution == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


class _Bar:
    def __init__(self) -> None:
        self.rates: dict[datetime, Decimal] = {}
        self.bar: tuple[Decimal, Decimal, Decimal, Decimal] | None = None
        self.first: datetime | None = None
        self.last: datetime | None = None

    def add(self, when: datetime, rate: Decimal) -> None:
        self.rates[when] = rate
        if self.bar is None or self.first is None or self.last is None:
            self.bar, self.first, self.last = (rate, rate, rate, rate), when, when
            return
        open_, high, low, close = self.bar
        if when < self.first:
            open_, self.first = rate, when
        if when >= self.last:
            close, self.last = rate, when
        self.bar = (open_, max(high, rate), min(low, rate), close)

    def remove(self, when: datetime) -> None:
        self.rates.pop(when, None)
        remaining = sorted(self.rates.items())
        self.rates, self.bar, self.first, self.last = {}, None, None, None
        for moment, rate in remaining:
            self.add(moment, rate)


def run(changes: Sequence[RateChange], intervals: Mapping[str, timedelta]) -> int:
    """Process ``changes`` one by one; the number of non-empty bars at the end."""
    bars: dict[tuple[object, ...], _Bar] = {}
    for change in changes:
        for quote, removing in ((change.before, True), (change.after, False)):
            if quote is None or (removing and change.op.value == "c"):
                continue
            interval = intervals.get(quote.source)
            for resolution, shortest in _RESOLUTIONS:
                if interval is not None and shortest <= interval:
                    continue
                key = (*quote.series, resolution, _start(resolution, quote.observed_at))
                bar = bars.get(key)
                if bar is None:
                    bar = bars[key] = _Bar()
                if removing:
                    bar.remove(quote.observed_at)
                else:
                    bar.add(quote.observed_at, quote.rate)
    return sum(1 for bar in bars.values() if bar.bar is not None)
