"""Cross rates by triangulation: every currency against the dollar from a source's other base.

A source that quotes its currencies against one base (the ECB: EUR/USD, EUR/JPY, …) also says,
implicitly, what each of them costs in dollars. For every observation instant of a source and
kind, with ``C`` a currency the source quotes both USD and ``X`` against::

    USD/X = (C/X) / (C/USD)          e.g. USD/JPY = (EUR/JPY) / (EUR/USD)

Quotes in the other orientation are inverted first (X/C is 1 / (C/X)), so a source quoting
NOK per unit of each currency (Norges Bank: USD/NOK, EUR/NOK, …) gives EUR/USD and JPY crosses
too. Rows are keyed by source, kind, the cross (base USD, quote X), the instant and ``via`` (C).
A source that quotes X against USD directly (either way round) gets no row for X through
itself: the direct quote is the rate. Division is in Decimal at 28 significant digits, stored at
the table's 18 decimals.

State is kept per (source, kind, instant) cell: its observations, the rows it last wrote and
the position of the last change applied (kept even when the cell empties, so a re-delivered,
since-deleted observation does not come back). A revision or delete recomputes the cell.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import Context, Decimal
from typing import Any, NamedTuple

import attrs
import numpy as np
import orjson

from fxcortex.core import AnalyzerContext, Column, RateChange, TableSpec, TableWrite, hookimpl
from fxcortex.core.batch import images as change_images

NAME = "cross_rates"
TARGET = "USD"
_CONTEXT = Context(prec=28)
_SCALE = Decimal("1e-18")
_ONE = Decimal(1)

TABLE = TableSpec(
    name=NAME,
    description="Every currency against USD, triangulated through a source's common base.",
    columns=(
        Column(name="source", type="LowCardinality(String)", description="source name"),
        Column(name="kind", type="LowCardinality(String)", description="mid, bid, ask, buy, sell"),
        Column(name="base", type="LowCardinality(String)", description="always USD"),
        Column(name="quote", type="LowCardinality(String)", description="the currency priced"),
        Column(name="via", type="LowCardinality(String)", description="the common currency"),
        Column(name="observed_at", type="DateTime64(6, 'UTC')", description="the instant"),
        Column(name="rate", type="Decimal(38, 18)", description="USD/quote through via"),
    ),
    key=("source", "kind", "base", "quote", "via", "observed_at"),
)


@functools.lru_cache(maxsize=4096)  # called per pair of every new set of pairs; there are few
def _legs(pair: str) -> tuple[str, str]:
    base, quote = pair.split("/")
    return base, quote


class Route(NamedTuple):
    """How one cross USD/X = (price of X in C) / (price of USD in C) is worked out."""

    currency: str  # X
    via: str  # C
    price: str  # the pair giving the price of X in C: C/X, or X/C inverted
    price_inverted: bool  # whether that price is 1 / its rate
    dollars: str  # the pair giving the price of USD in C
    dollars_inverted: bool


@functools.lru_cache(maxsize=1024)
def routes(pairs: tuple[str, ...]) -> tuple[Route, ...]:
    """The crosses an instant quoting ``pairs`` gives, and which of its quotes each divides.

    Each common currency C prices X by its direct quote C/X, else by 1 / (X/C); only the
    currencies that have a dollar price get a cross. It depends on the pairs alone, and a
    source quotes the same pairs instant after instant (the ECB its 30-odd euro rates a day):
    worked out once, not per instant.
    """
    legs: dict[str, list[tuple[str, str, bool]]] = defaultdict(list)
    for pair in pairs:
        base, quote = _legs(pair)
        legs[base].append((quote, pair, False))  # one base costs rate quotes
        legs[quote].append((base, pair, True))  # one quote costs 1 / rate bases
    # Currencies quoted against the dollar directly: that quote is their rate, no cross.
    direct = {other for other, _pair, _inverted in legs.get(TARGET, ())}
    out = []
    for via, its_legs in legs.items():
        if via not in direct or len(its_legs) < 2:
            continue  # no dollar price, or nothing but it
        prices: dict[str, tuple[str, bool]] = {}
        for other, pair, inverted in its_legs:
            if not inverted or other not in prices:  # the direct quote wins
                prices[other] = (pair, inverted)
        dollars = prices[TARGET]
        for currency, price in prices.items():
            if currency != TARGET and currency not in direct:
                out.append(Route(currency, via, *price, *dollars))
    return tuple(out)


def crosses(quotes: dict[str, str]) -> dict[tuple[str, str], Decimal]:
    """{(quote X, via C): USD/X} for one instant's quotes {"C/X": rate text} (see `routes`).

    A source quoting everything against one base (the ECB) divides once per cross and inverts
    nothing.
    """
    out = {}
    dollar_prices: dict[tuple[str, bool], Decimal] = {}  # one per common currency, parsed once
    for currency, via, price, price_inverted, dollars, dollars_inverted in routes(tuple(quotes)):
        in_dollars = dollar_prices.get((dollars, dollars_inverted))
        if in_dollars is None:
            in_dollars = _price(quotes[dollars], dollars_inverted)
            dollar_prices[(dollars, dollars_inverted)] = in_dollars
        out[(currency, via)] = _divided(_price(quotes[price], price_inverted), in_dollars)
    return out


def quotient(price: str, price_inverted: bool, dollars: str, dollars_inverted: bool) -> Decimal:
    """One cross from the rate texts of its two quotes: the quotient `crosses` works out."""
    return _divided(_price(price, price_inverted), _price(dollars, dollars_inverted))


def _divided(price: Decimal, dollars: Decimal) -> Decimal:
    """USD/X from the prices of X and of USD in the common currency, to the table's decimals."""
    return _CONTEXT.divide(price, dollars).quantize(_SCALE, context=_CONTEXT)


def _price(text: str, inverted: bool) -> Decimal:
    rate = Decimal(text)
    return _CONTEXT.divide(_ONE, rate) if inverted else rate


def apply_quotes(
    quotes: dict[str, str], entries: Sequence[tuple[str, str | None, int]], last_position: int
) -> int:
    """Apply an instant cell's entries to its quotes; the newest position applied (-1: none new).

    Entries are (pair, rate text or None for a removal, position); those at or before
    ``last_position`` were applied by an earlier delivery.
    """
    newest = -1
    for pair, rate, position in entries:
        if position <= last_position:
            continue  # applied by an earlier delivery
        if rate is None:
            quotes.pop(pair, None)
        else:
            quotes[pair] = rate
        newest = max(newest, position)
    return newest


@attrs.frozen
class CrossRatesAnalyzer:
    """Triangulated USD crosses (see the module docstring)."""

    name: str = NAME
    description: str = "Every currency against USD, triangulated through a common base"
    tables: Sequence[TableSpec] = (TABLE,)

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """Apply a batch and return the crosses of every instant it changed."""
        by_cell: dict[str, list[tuple[str, str | None, int]]] = defaultdict(list)
        for (source, base, quote, kind), micros, rate, position in change_images(changes):
            by_cell[f"{source}|{kind}|{micros}"].append((f"{base}/{quote}", rate, position))
        if not by_cell:
            return []
        stored = context.state.get_many(by_cell)
        rows = _Rows()
        for key, entries in by_cell.items():
            last_position, quotes, written = (
                orjson.loads(stored[key]) if key in stored else (-1, {}, [])
            )
            newest = apply_quotes(quotes, entries, last_position)
            if newest < 0:
                continue
            source, kind, instant = key.split("|")
            micros = int(instant)
            found = crosses(quotes)
            names = [f"{currency}|{via}" for currency, via in found]
            for (currency, via), rate_found in found.items():
                rows.add(source, kind, currency, via, micros, rate_found, newest, False)
            for gone in set(written) - set(names):
                currency, via = gone.split("|")
                rows.add(source, kind, currency, via, micros, Decimal(0), newest, True)
            # kept even when empty: its position guards against re-delivered deletes
            context.state.put(key, orjson.dumps([newest, quotes, names]))
        return [rows.table_write()] if rows.versions else []


@attrs.define
class _Rows:
    columns: dict[str, list[Any]] = attrs.Factory(
        lambda: {name: [] for name in TABLE.column_names if name != "observed_at"}
    )
    times: list[int] = attrs.Factory(list)
    versions: list[int] = attrs.Factory(list)
    deleted: list[bool] = attrs.Factory(list)

    def add(
        self,
        source: str,
        kind: str,
        currency: str,
        via: str,
        micros: int,
        rate: Decimal,
        version: int,
        deleted: bool,
    ) -> None:
        for name, value in zip(
            ("source", "kind", "base", "quote", "via", "rate"),
            (source, kind, TARGET, currency, via, rate),
            strict=True,
        ):
            self.columns[name].append(value)
        self.times.append(micros)
        self.versions.append(version)
        self.deleted.append(deleted)

    def table_write(self) -> TableWrite:
        columns: dict[str, Any] = dict(self.columns)
        columns["observed_at"] = np.array(self.times, dtype=np.int64)
        return TableWrite(
            table=NAME,
            columns={name: columns[name] for name in TABLE.column_names},
            versions=self.versions,
            deleted=self.deleted,
        )


@hookimpl
def fxcortex_register_analyzers(register: Callable[[CrossRatesAnalyzer], None]) -> None:
    """Register the cross-rates analytic."""
    register(CrossRatesAnalyzer())
