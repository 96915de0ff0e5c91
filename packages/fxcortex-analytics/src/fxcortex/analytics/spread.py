"""Cross-source spread: the premium of one source's rate over another's, per pair and UTC day.

The case users in Iran care about most: the free-market rial (Bonbast, TGJU) against an official
rate (NBP's table B, a central bank's fix), and for everyone else EUR/USD from the ECB against the
Fed's H.10 and Norges Bank.

For every pair, day and two *quoters* (a source and the kind it publishes: ``bonbast``/``sell``,
``nbp-b``/``mid``) that both quote the pair that day::

    premium    = rate_a / rate_b − 1             (0.05: a is 5 % above b)
    premium_bp = 10,000 · premium

- A pair is taken in one canonical orientation whichever way a source publishes it: the base is
  the currency earlier in the market's order EUR, GBP, AUD, NZD, USD, CAD, CHF, JPY (then
  alphabetical), so IRR/USD quotes become USD/IRR ones (rate inverted, kind kept as published).
- A quoter with several observations in a day counts with its last one (the day's close); one
  that publishes both orientations at the same instant counts with the inverted one.
- ``a`` and ``b`` are ordered by (source, kind), so each two quoters give one row a day.

State is kept per (canonical pair, day) cell (`fxcortex.analytics.daycells`: each quoter's
observations in hour pieces, the quoter pairs it last wrote and the position of the last change
applied; 32 days of cells to a state value). A revision or delete recomputes the cell, rewriting
or withdrawing its rows, and a re-delivered batch changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from decimal import Decimal
from itertools import combinations
from typing import Any, ClassVar

import attrs

from fxcortex.analytics import daycells
from fxcortex.analytics.buckets import DAY_US, from_micros
from fxcortex.analytics.daycells import DayCell, DayKey
from fxcortex.core import AnalyzerContext, Column, RateChange, TableSpec, TableWrite, hookimpl
from fxcortex.core.batch import Series
from fxcortex.core.batch import images as change_images

NAME = "spread"
PRICE = "Decimal(38, 18)"
MARKET_ORDER = ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY")
_RANK = {code: rank for rank, code in enumerate(MARKET_ORDER)}

TABLE = TableSpec(
    name=NAME,
    description="Premium of one source's rate over another's for the same pair and UTC day.",
    columns=(
        Column(name="base", type="LowCardinality(String)", description="canonical base"),
        Column(name="quote", type="LowCardinality(String)", description="canonical quote"),
        Column(name="day", type="Date", description="UTC day of the observations"),
        Column(name="source_a", type="LowCardinality(String)", description="first source"),
        Column(name="kind_a", type="LowCardinality(String)", description="its kind"),
        Column(name="source_b", type="LowCardinality(String)", description="second source"),
        Column(name="kind_b", type="LowCardinality(String)", description="its kind"),
        Column(name="rate_a", type=PRICE, description="a's last rate of the day, canonical"),
        Column(name="rate_b", type=PRICE, description="b's last rate of the day, canonical"),
        Column(name="premium", type="Float64", description="rate_a / rate_b - 1"),
        Column(name="premium_bp", type="Float64", description="premium in basis points"),
    ),
    key=("base", "quote", "day", "source_a", "kind_a", "source_b", "kind_b"),
)


@functools.lru_cache(maxsize=4096)  # called per observation; there are few pairs
def canonical(base: str, quote: str) -> tuple[str, str, bool]:
    """(base, quote, inverted): the pair in market order, and whether the input was reversed."""

    def order(code: str) -> tuple[int, str]:
        return (_RANK.get(code, len(MARKET_ORDER)), code)

    if order(base) <= order(quote):
        return base, quote, False
    return quote, base, True


@functools.lru_cache(maxsize=4096)
def cell_prefix(base: str, quote: str) -> tuple[str, bool]:
    """("BASE|QUOTE" in canonical order, whether the input was reversed)."""
    c_base, c_quote, inverted = canonical(base, quote)
    return f"{c_base}|{c_quote}", inverted


@functools.lru_cache(maxsize=4096)
def _quoter(source: str, kind: str) -> str:
    return f"{source}|{kind}"


def _route(series: Series) -> tuple[str, bool, str]:
    """A series' day cells: (prefix, whether inverted, quoter)."""
    source, base, quote, kind = series
    return (*cell_prefix(base, quote), _quoter(source, kind))


@attrs.frozen
class SpreadAnalyzer:
    """Cross-source premiums (see the module docstring for the formulas)."""

    name: str = NAME
    description: str = "Premium of each source over each other for the same pair and UTC day"
    tables: Sequence[TableSpec] = (TABLE,)
    # A pair and its inverse are keyed, hence partitioned, apart: every partition in one process.
    combines_pairs: ClassVar[bool] = True

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """Apply a batch and return the rows of every cell it changed."""
        # A source may publish both orientations at one instant: the moments keep them apart.
        by_cell = daycells.day_entries(change_images(changes), _route)
        if not by_cell:
            return []
        rows = _Rows()
        book = daycells.apply(by_cell, context.state)
        for key, (cell, newest) in book.changed.items():
            cell.written = rows.cell(key, cell, newest)
        book.store(context.state)
        return [rows.table_write()] if len(rows.versions) else []


@attrs.define
class _Rows:
    columns: dict[str, list[Any]] = attrs.Factory(lambda: {name: [] for name in TABLE.column_names})
    versions: list[int] = attrs.Factory(list)
    deleted: list[bool] = attrs.Factory(list)

    def cell(self, key: DayKey, cell: DayCell, version: int) -> list[str]:
        """Queue a cell's rows, and withdrawals of rows it no longer has; its row names."""
        if len(cell.hours) < 2 and not cell.written:
            return []  # one quoter alone that day (the common case): nothing to compare
        base, quote = key[0].split("|")
        day = from_micros(key[1] * DAY_US).date()
        closes = cell.closes()
        names = []
        for a, b in combinations(sorted(closes), 2):
            rate_a, rate_b = closes[a], closes[b]
            premium = float(rate_a / rate_b) - 1.0
            names.append(f"{a}|{b}")
            self._add(base, quote, day, a, b, (rate_a, rate_b, premium), version, False)
        for gone in set(cell.written) - set(names):
            source_a, kind_a, source_b, kind_b = gone.split("|")
            self._add(
                base,
                quote,
                day,
                f"{source_a}|{kind_a}",
                f"{source_b}|{kind_b}",
                None,
                version,
                True,
            )
        return names

    def _add(
        self,
        base: str,
        quote: str,
        day: Any,
        a: str,
        b: str,
        values: tuple[Decimal, Decimal, float] | None,
        version: int,
        deleted: bool,
    ) -> None:
        source_a, kind_a = a.split("|")
        source_b, kind_b = b.split("|")
        rate_a, rate_b, premium = values if values else (Decimal(0), Decimal(0), 0.0)
        row = (base, quote, day, source_a, kind_a, source_b, kind_b, rate_a, rate_b)
        for name, value in zip(TABLE.column_names, (*row, premium, premium * 10_000), strict=True):
            self.columns[name].append(value)
        self.versions.append(version)
        self.deleted.append(deleted)

    def table_write(self) -> TableWrite:
        return TableWrite(
            table=NAME, columns=self.columns, versions=self.versions, deleted=self.deleted
        )


@hookimpl
def fxcortex_register_analyzers(register: Callable[[SpreadAnalyzer], None]) -> None:
    """Register the cross-source spread analytic."""
    register(SpreadAnalyzer())
