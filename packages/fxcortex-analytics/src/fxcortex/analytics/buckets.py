"""Calendar buckets in UTC for timestamps held as int64 microseconds since the epoch.

Labels (used in every analytics table's ``resolution`` column):

======== ====================================================================
label    bucket
======== ====================================================================
minute   a clock minute, ``HH:MM:00`` to ``HH:MM:59.999999`` UTC
hour     a clock hour in UTC
day      a calendar day in UTC, 00:00 to 24:00
week     an ISO week: Monday 00:00 UTC to the next Monday
month    a calendar month: the 1st 00:00 UTC to the 1st of the next month
======== ====================================================================

``bucket_start`` is always the first instant inside the bucket.
"""

# to_micros and from_micros are re-exported: analytics convert with the same rule as the feeds.

from __future__ import annotations

import enum
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from fxcortex.core.batch import from_micros, to_micros

Micros = npt.NDArray[np.int64]

MINUTE_US = 60_000_000
HOUR_US = 60 * MINUTE_US
DAY_US = 24 * HOUR_US
WEEK_US = 7 * DAY_US
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class Resolution(enum.StrEnum):
    """A bucket size, finest first."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def shortest(self) -> timedelta:
        """The shortest length a bucket of this resolution can have."""
        return _SHORTEST[self]


_SHORTEST = {
    Resolution.MINUTE: timedelta(minutes=1),
    Resolution.HOUR: timedelta(hours=1),
    Resolution.DAY: timedelta(days=1),
    Resolution.WEEK: timedelta(days=7),
    Resolution.MONTH: timedelta(days=28),
}
_FIXED_US = {
    Resolution.MINUTE: MINUTE_US,
    Resolution.HOUR: HOUR_US,
    Resolution.DAY: DAY_US,
}


def bucket_starts(resolution: Resolution, micros: Micros) -> Micros:
    """The start of the bucket holding each timestamp."""
    if resolution in _FIXED_US:
        size = _FIXED_US[resolution]
        return micros - micros % size
    if resolution is Resolution.WEEK:
        days = micros // DAY_US
        # Day 0 (1970-01-01) was a Thursday: step back to the Monday of each week.
        return (days - (days + 3) % 7) * DAY_US
    months = micros.astype("datetime64[us]").astype("datetime64[M]")
    return months.astype("datetime64[us]").astype(np.int64)


def bucket_start(resolution: Resolution, micros: int) -> int:
    """The start of the bucket holding one timestamp (plain integer arithmetic: no arrays)."""
    if resolution in _FIXED_US:
        return micros - micros % _FIXED_US[resolution]
    days = micros // DAY_US
    if resolution is Resolution.WEEK:
        return (days - (days + 3) % 7) * DAY_US
    first = date.fromordinal(_EPOCH_ORDINAL + days).replace(day=1)
    return (first.toordinal() - _EPOCH_ORDINAL) * DAY_US


def bucket_end(resolution: Resolution, start: int) -> int:
    """The first instant after the bucket that starts at ``start``."""
    if resolution in _FIXED_US:
        return start + _FIXED_US[resolution]
    if resolution is Resolution.WEEK:
        return start + WEEK_US
    first = date.fromordinal(_EPOCH_ORDINAL + start // DAY_US)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (following.toordinal() - _EPOCH_ORDINAL) * DAY_US


__all__ = [
    "WEEK_US",
    "Micros",
    "Resolution",
    "bucket_end",
    "bucket_start",
    "bucket_starts",
    "from_micros",
    "to_micros",
]
