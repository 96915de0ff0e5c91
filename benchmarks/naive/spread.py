"""Naive cross-source spread: one event at a time in plain Python, the same formulas.

Every change updates its (canonical pair, day) cell and recomputes all of the cell's premiums at
once, as a straightforward per-event implementation would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from itertools import combinations

from fxcortex.analytics.spread import canonical
from fxcortex.core import RateChange


def run(changes: Sequence[RateChange], intervals: Mapping[str, timedelta]) -> int:
    """Process ``changes`` one by one; the number of premium rows at the end."""
    cells: dict[tuple[object, ...], dict[tuple[str, str], dict[object, Decimal]]] = {}
    premiums: dict[tuple[object, ...], dict[tuple[object, ...], float]] = {}
    for change in changes:
        for quote, removing in ((change.before, True), (change.after, False)):
            if quote is None or (removing and change.after is not None and change.op.value == "c"):
                continue
            base, counter, inverted = canonical(quote.pair.base.code, quote.pair.quote.code)
            cell_key = (base, counter, quote.observed_at.date())
            cell = cells.setdefault(cell_key, {})
            by_time = cell.setdefault((quote.source, quote.kind.value), {})
            if removing:
                by_time.pop(quote.observed_at, None)
            else:
                by_time[quote.observed_at] = 1 / quote.rate if inverted else quote.rate
            closes = {q: t[max(t)] for q, t in cell.items() if t}  # type: ignore[type-var]
            premiums[cell_key] = {
                (a, b): float(closes[a] / closes[b]) - 1 for a, b in combinations(sorted(closes), 2)
            }
    return sum(len(rows) for rows in premiums.values())
