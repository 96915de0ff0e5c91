"""Naive cross rates: one event at a time in plain Python, the same triangulation.

Every change updates its (source, kind, instant) cell and recomputes the cell's crosses at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from fxcortex.analytics.cross_rates import crosses
from fxcortex.core import RateChange


def run(changes: Sequence[RateChange], intervals: Mapping[str, timedelta]) -> int:
    """Process ``changes`` one by one; the number of cross rows at the end."""
    cells: dict[tuple[object, ...], dict[str, str]] = {}
    rows: dict[tuple[object, ...], int] = {}
    for change in changes:
        for quote, removing in ((change.before, True), (change.after, False)):
            if quote is None or (removing and change.op.value == "c"):
                continue
            key = (quote.source, quote.kind.value, quote.observed_at)
            cell = cells.setdefault(key, {})
            pair = f"{quote.pair.base.code}/{quote.pair.quote.code}"
            if removing:
                cell.pop(pair, None)
            else:
                cell[pair] = str(quote.rate)
            rows[key] = len(crosses(cell))
    return sum(rows.values())
