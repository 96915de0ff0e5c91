"""The analytics store's mirror of the rate store: every observation as the feed last set it.

``rates_mirror`` holds one row per observation (source, pair, kind, instant) with its rate,
versioned by the feed position of the change that last set it, and marked deleted when the
observation was deleted. It is what the analytics store knows of the raw data, so analytics can
be recomputed there for a revised history (the ``rates_mirror`` view shows the current
observations, deleted ones left out) without going back to PostgreSQL, and it can be compared
with the rate store.

It keeps no state: a row's version is the position of the change that wrote it, so a
re-delivered or out-of-order batch can only write an older version, which the store discards.
Registered like any analytic (entry point ``rate_mirror`` of fxcortex-runtime);
``FXCORTEX_DISABLED_PLUGINS=rate_mirror`` leaves it out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fxcortex.core import AnalyzerContext, Column, RateChange, TableSpec, TableWrite, hookimpl
from fxcortex.core.batch import images

NAME = "rate_mirror"
TABLE = TableSpec(
    name="rates_mirror",
    columns=(
        Column(name="source", type="LowCardinality(String)", description="source name"),
        Column(name="base", type="LowCardinality(String)", description="base currency"),
        Column(name="quote", type="LowCardinality(String)", description="quote currency"),
        Column(name="kind", type="LowCardinality(String)", description="mid, bid, ask, buy, sell"),
        Column(name="observed_at", type="DateTime64(6, 'UTC')", description="when it applied"),
        Column(name="rate", type="Decimal(38, 18)", description="units of quote per base"),
    ),
    key=("source", "base", "quote", "kind", "observed_at"),
    description="Every observation as the rate store last had it (deleted ones marked)",
)
_NO_RATE = "0"  # a deleted row's rate is ignored by the store


class RateMirror:
    """Writes each change's observation to ``rates_mirror``, versioned by its position."""

    name = NAME
    description = "The rate store's observations, mirrored into the analytics store"
    tables = (TABLE,)

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """The last image of every observation the batch touches (a delete: a deleted row)."""
        latest: dict[tuple[str, str, str, str, int], tuple[str | None, int]] = {}
        for series, observed_at, rate, position in images(changes):
            latest[(*series, observed_at)] = (rate, position)
        if not latest:
            return []
        keys = list(latest)
        values = list(latest.values())
        return [
            TableWrite(
                table=TABLE.name,
                columns={
                    "source": [key[0] for key in keys],
                    "base": [key[1] for key in keys],
                    "quote": [key[2] for key in keys],
                    "kind": [key[3] for key in keys],
                    # As the feed has them: µs and the rate's text, which the stores take as
                    # they are (a datetime and a Decimal per row would only be undone again).
                    "observed_at": [key[4] for key in keys],
                    "rate": [_NO_RATE if rate is None else rate for rate, _ in values],
                },
                versions=[position for _, position in values],
                deleted=[rate is None for rate, _ in values],
            )
        ]


@hookimpl
def fxcortex_register_analyzers(register: Callable[[RateMirror], None]) -> None:
    """Register the mirror."""
    register(RateMirror())
