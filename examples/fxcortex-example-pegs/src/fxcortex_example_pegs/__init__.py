"""Pegged currencies: the fixed rates their central banks hold against the US dollar.

Each peg is published once and held, so the source emits one quote per peg per working day of the
window, at 12:00 UTC: a daily series that analytics can set beside market rates (a peg under
pressure shows as a spread between the official and the market rate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Self

import attrs

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, Schedule, SourceError, hookimpl

# USD/XXX: units of the pegged currency per US dollar, and the day the peg took its current value.
PEGS: dict[str, tuple[Decimal, date]] = {
    "AED": (Decimal("3.6725"), date(1997, 11, 1)),
    "SAR": (Decimal("3.75"), date(1986, 6, 1)),
    "BHD": (Decimal("0.376"), date(2001, 12, 1)),
    "OMR": (Decimal("0.3845"), date(1986, 1, 1)),
    "QAR": (Decimal("3.64"), date(2001, 7, 1)),
    "JOD": (Decimal("0.709"), date(1995, 10, 23)),
}


@attrs.frozen(kw_only=True)
class PegSource:
    """One quote per peg per working day of the window."""

    name: str = "pegs"
    description: str = "Official USD pegs of the Gulf currencies and the Jordanian dinar"
    schedule: Schedule = Schedule(cron="0 12 * * 1-5", timezone="UTC", description="daily")
    currencies: tuple[str, ...] = tuple(PEGS)
    history_since: date | None = date(2002, 1, 1)
    observation_interval: timedelta = timedelta(days=1)

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """Quotes for every working day in the window (the last 7 days when it is open)."""
        until = window.until or datetime.now(UTC).date()
        since = window.since or until - timedelta(days=6)
        if until - since > timedelta(days=366 * 30):
            raise SourceError(self.name, f"window {since}..{until} is longer than 30 years")
        quotes = []
        day = since
        while day <= until:
            if day.weekday() < 5:
                noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
                for code, (rate, pegged_since) in PEGS.items():
                    if day >= pegged_since:
                        quotes.append(
                            Quote(
                                pair=Pair.of("USD", code),
                                rate=rate,
                                observed_at=noon,
                                source=self.name,
                            )
                        )
            day += timedelta(days=1)
        return iter(quotes)

    def configure(self, **options: str) -> Self:
        """No options: a peg is a peg."""
        if options:
            raise SourceError(self.name, f"unknown options {sorted(options)}; it takes none")
        return self


@hookimpl
def fxcortex_register_sources(register: Callable[[PegSource], None]) -> None:
    """Register the pegs source."""
    register(PegSource())
