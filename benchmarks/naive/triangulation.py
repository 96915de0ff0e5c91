"""Naive triangulation consistency: one event at a time in plain Python, the same comparison.

Every change updates its (source, kind, instant) cell and, for a dollar pair, the direct quotes
of its day; then the day's deviations of the pairs it touched are recomputed at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal

from fxcortex.analytics.cross_rates import crosses
from fxcortex.analytics.spread import canonical
from fxcortex.core import RateChange


def run(changes: Sequence[RateChange], intervals: Mapping[str, timedelta]) -> int:
    """Process ``changes`` one by one; the number of deviation rows at the end."""
    cells: dict[tuple[object, ...], dict[str, str]] = {}
    # (canonical base, quote, day) -> {("t"|"d", source, kind, via): (instant, rate)}
    days: dict[tuple[object, ...], dict[tuple[str, ...], tuple[object, Decimal]]] = {}
    rows: dict[tuple[object, ...], int] = {}
    for change in changes:
        for quote, removing in ((change.before, True), (change.after, False)):
            if quote is None or (removing and change.op.value == "c"):
                continue
            day = quote.observed_at.date()
            key = (quote.source, quote.kind.value, quote.observed_at)
            cell = cells.setdefault(key, {})
            base, quote_code = quote.pair.base.code, quote.pair.quote.code
            if removing:
                cell.pop(f"{base}/{quote_code}", None)
            else:
                cell[f"{base}/{quote_code}"] = str(quote.rate)
            touched = set()
            for (currency, via), rate in crosses(cell).items():
                c_base, c_quote, inverted = canonical("USD", currency)
                value = 1 / rate if inverted else rate
                side = days.setdefault((c_base, c_quote, day), {})
                side[("t", quote.source, quote.kind.value, via)] = (quote.observed_at, value)
                touched.add((c_base, c_quote, day))
            if "USD" in (base, quote_code) and base != quote_code:
                c_base, c_quote, inverted = canonical(base, quote_code)
                side = days.setdefault((c_base, c_quote, day), {})
                name = ("d", quote.source, quote.kind.value, "")
                if removing:
                    side.pop(name, None)
                else:
                    side[name] = (quote.observed_at, 1 / quote.rate if inverted else quote.rate)
                touched.add((c_base, c_quote, day))
            for cell_key in touched:
                side = days[cell_key]
                count = 0
                for t, (_, t_rate) in side.items():
                    for d, (_, d_rate) in side.items():
                        if t[0] == "t" and d[0] == "d" and t[1] != d[1]:
                            _deviation = float(t_rate / d_rate) - 1.0
                            count += 1
                rows[cell_key] = count
    return sum(rows.values())
