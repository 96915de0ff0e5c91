"""Gaps: weekends, holidays and publication misses made explicit, never interpolated.

**Daily sources** (observation interval of a day or more): every UTC day between a series' first
and last observation that has no observation gets a row, keyed by the series and the day (00:00
UTC)::

    reason        1 weekend (Saturday or Sunday), 2 missed (a weekday without a publication:
                  a holiday or a miss — telling them apart needs the publisher's calendar)
    age_days      days since the day of the last observation before it
    carried_rate  that observation's rate, carried forward — or NULL once age_days exceeds the
                  look-back of 7 days (a stale value is worse than none)

A query can then fill a daily calendar explicitly (``COALESCE`` with ``carried_rate``) and see
what it filled and why. Days after a series' last observation are not gaps yet: the next
publication decides.

**Intraday sources**: a silence longer than 10 observation intervals gets one row, keyed by the
observation that ends it, with reason 3 (silence), ``age_days`` the silence's length in days and
``carried_rate`` the rate before it. A source that is not installed counts as daily.

Streaming equals batch through `fxcortex.analytics.series`: an observation arriving in a gap
withdraws its row and shortens the ages after it; a deleted one opens a gap.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from fxcortex.analytics.buckets import DAY_US
from fxcortex.analytics.series import (
    Floats,
    Micros,
    RegisterAnalyzer,
    SeriesAnalyzer,
    SeriesFormula,
    float_column,
    series_table,
)
from fxcortex.core import Column, hookimpl

NAME = "gaps"
LOOKBACK_DAYS = 7
SILENCE_INTERVALS = 10
WEEKEND, MISSED, SILENCE = 1.0, 2.0, 3.0
OUTPUTS = ("age_days", "carried_rate", "reason")

TABLE = series_table(
    NAME,
    "Days without an observation (and long intraday silences), with the value carried forward.",
    (
        float_column("age_days", "days since the last observation before the gap"),
        float_column("carried_rate", f"that observation's rate; NULL after {LOOKBACK_DAYS} days"),
        float_column("reason", "1 weekend, 2 missed weekday (holiday or miss), 3 intraday silence"),
    ),
    time_column=Column(
        name="slot",
        type="DateTime64(6, 'UTC')",
        description="the missing day, or the silence's end",
    ),
)


def daily_gaps(times: Micros, rates: Floats) -> tuple[Micros, Floats]:
    """Rows for the days without an observation between the first and the last one."""
    days = np.unique(times // DAY_US)
    if len(days) < 2:
        return times[:0], np.empty((0, len(OUTPUTS)))
    every = np.arange(days[0], days[-1] + 1)
    missing = every[~np.isin(every, days, assume_unique=True)]
    # The last observation before each missing day: the last one of the latest observed day.
    last_of_day = np.searchsorted(times // DAY_US, days, side="right") - 1
    before = np.searchsorted(days, missing) - 1
    age = (missing - days[before]).astype(np.float64)
    carried = rates[last_of_day[before]]
    carried = np.where(age <= LOOKBACK_DAYS, carried, np.nan)
    weekday = (missing + 3) % 7  # day 0 (1970-01-01) was a Thursday: Monday is 0
    reason = np.where(weekday >= 5, WEEKEND, MISSED)
    return missing * DAY_US, np.column_stack((age, carried, reason))


def silences(times: Micros, rates: Floats, interval_us: float) -> tuple[Micros, Floats]:
    """Rows for the observations that end a silence longer than SILENCE_INTERVALS intervals."""
    if len(times) < 2:
        return times[:0], np.empty((0, len(OUTPUTS)))
    spacing = np.diff(times)
    ends = np.flatnonzero(spacing > SILENCE_INTERVALS * interval_us) + 1
    age = spacing[ends - 1] / DAY_US
    outputs = np.column_stack((age, rates[ends - 1], np.full(len(ends), SILENCE)))
    return times[ends], outputs.reshape(len(ends), len(OUTPUTS))


class GapsFormula(SeriesFormula):
    """The rules of the module docstring, on whole series."""

    def compute(
        self, times: Micros, rates: Floats, interval: timedelta | None
    ) -> tuple[Micros, Floats]:
        """Daily gaps for daily sources (and sources not installed), silences for faster ones."""
        # Not inferred from the series' own spacing: that would change with later observations,
        # and the outputs must depend only on what came before them.
        if interval is None or interval >= timedelta(days=1):
            return daily_gaps(times, rates)
        return silences(times, rates, interval / timedelta(microseconds=1))

    def lookback(self, interval: timedelta | None) -> int | None:
        """A gap lies between two consecutive observations: one before the change is enough."""
        return 1


def analyzer() -> SeriesAnalyzer:
    """The gaps analytic."""
    return SeriesAnalyzer(
        name=NAME,
        description="Missing days (weekend or missed) and intraday silences, carried forward",
        table=TABLE,
        formula=GapsFormula(),
        outputs=OUTPUTS,
        time_column="slot",
    )


@hookimpl
def fxcortex_register_analyzers(register: RegisterAnalyzer) -> None:
    """Register the gaps analytic."""
    register(analyzer())
