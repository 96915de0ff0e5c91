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
from typing import Any, ClassVar, NamedTuple

import attrs
import numpy as np
import orjson

from fxcortex.core import AnalyzerContext, Column, RateChange, TableSpec, TableWrite, hookimpl
from fxcortex.core.batch import ChangeRows, Series
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
    plan = _plan(tuple(quotes))
    return dict(zip(plan.crosses, plan.rates(quotes), strict=True))


class _Plan:
    """`routes` laid out for working out an instant's crosses and writing its rows.

    Built once per set of pairs (see `routes`), so that an instant costs one division per cross
    and a few list extensions, rather than a lookup, a tuple and a name per cross.
    """

    __slots__ = ("crosses", "currencies", "dollar_legs", "names", "steps", "vias")

    def __init__(self, pairs: tuple[str, ...]) -> None:
        found = routes(pairs)
        self.crosses = [(route.currency, route.via) for route in found]
        self.currencies = [route.currency for route in found]
        self.vias = [route.via for route in found]
        self.names = [f"{currency}|{via}" for currency, via in self.crosses]
        # The dollar price of each common currency is parsed once per instant.
        legs = list(dict.fromkeys((route.dollars, route.dollars_inverted) for route in found))
        self.dollar_legs = legs
        # (pair giving the price of X, whether inverted, index of its dollar price in C)
        self.steps = [
            (route.price, route.price_inverted, legs.index((route.dollars, route.dollars_inverted)))
            for route in found
        ]

    def rates(self, quotes: dict[str, str]) -> list[Decimal]:
        """USD/X of each cross, in `routes` order: `quotient` of its two quotes."""
        divide, quantize = _CONTEXT.divide, _CONTEXT.quantize
        dollars = [_price(quotes[pair], inverted) for pair, inverted in self.dollar_legs]
        out = []
        for price, inverted, leg in self.steps:
            rate = Decimal(quotes[price])
            if inverted:
                rate = divide(_ONE, rate)
            # = _divided(rate, dollars[leg]), inlined: it runs once per row written
            out.append(quantize(divide(rate, dollars[leg]), _SCALE))
        return out


_plan = functools.lru_cache(maxsize=1024)(_Plan)  # per set of pairs, like `routes`


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
        if position > newest:
            newest = position
    return newest


@attrs.frozen
class CrossRatesAnalyzer:
    """Triangulated USD crosses (see the module docstring)."""

    name: str = NAME
    description: str = "Every currency against USD, triangulated through a common base"
    tables: Sequence[TableSpec] = (TABLE,)
    # An instant's crosses need every pair quoted at it: one consumer must read every partition.
    combines_pairs: ClassVar[bool] = True

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """Apply a batch and return the crosses of every instant it changed."""
        by_instant = instants(changes)
        if not by_instant:
            return []
        keys = {
            f"{source}|{kind}|{micros}": (source, kind, micros)
            for source, kind, micros in by_instant
        }
        stored = context.state.get_many(keys)
        rows = _Rows()
        for key, instant in keys.items():
            raw = stored.get(key)
            last_position, quotes, written = orjson.loads(raw) if raw is not None else (-1, {}, [])
            newest = apply_quotes(quotes, by_instant[instant], last_position)
            if newest < 0:
                continue
            source, kind, micros = instant
            plan = _plan(tuple(quotes))
            names = plan.names
            if names:
                rows.extend(source, kind, micros, plan, plan.rates(quotes), newest)
            if written and written != names:  # rows it no longer has
                for gone in set(written) - set(names):
                    currency, via = gone.split("|")
                    rows.withdraw(source, kind, currency, via, micros, newest)
            # kept even when empty: its position guards against re-delivered deletes
            context.state.put(key, orjson.dumps([newest, quotes, names]))
        return [rows.table_write()] if rows.versions else []


Instant = tuple[str, str, int]
"""(source, kind, µs): one source's quotes at one instant."""

InstantEntry = tuple[str, str | None, int]
"""(pair "C/X", rate text or None for a removal, position)"""


def instants(changes: Sequence[RateChange]) -> dict[Instant, list[InstantEntry]]:
    """The batch's images per instant, in feed order: the cells of this analytic.

    `triangulation` keeps the same cells: computed once per batch of a feed and shared
    (read-only).
    """
    if isinstance(changes, ChangeRows):
        return changes.derived("cross_rates.instants", _instants)
    return _instants(changes)


def _instants(changes: Sequence[RateChange]) -> dict[Instant, list[InstantEntry]]:
    out: dict[Instant, list[InstantEntry]] = {}
    # Per series, its (source, kind, pair): a batch has few series and many images of each.
    known: dict[Series, tuple[str, str, str]] = {}
    for series, micros, rate, position in change_images(changes):
        names = known.get(series)
        if names is None:
            source, base, quote, kind = series
            names = known[series] = (source, kind, f"{base}/{quote}")
        instant = (names[0], names[1], micros)
        entries = out.get(instant)
        if entries is None:
            out[instant] = [(names[2], rate, position)]
        else:
            entries.append((names[2], rate, position))
    return out


class _Rows:
    """The rows of one batch, column by column (`base` is always USD)."""

    __slots__ = ("deleted", "kinds", "quotes", "rates", "sources", "times", "versions", "vias")

    def __init__(self) -> None:
        self.sources: list[str] = []
        self.kinds: list[str] = []
        self.quotes: list[str] = []
        self.vias: list[str] = []
        self.times: list[int] = []
        self.rates: list[Decimal] = []
        self.versions: list[int] = []
        self.deleted: list[bool] = []

    def extend(
        self, source: str, kind: str, micros: int, plan: _Plan, rates: list[Decimal], version: int
    ) -> None:
        """An instant's crosses: a list extension per column, not appends per row."""
        count = len(rates)
        self.sources.extend([source] * count)
        self.kinds.extend([kind] * count)
        self.quotes.extend(plan.currencies)
        self.vias.extend(plan.vias)
        self.times.extend([micros] * count)
        self.rates.extend(rates)
        self.versions.extend([version] * count)
        self.deleted.extend([False] * count)

    def withdraw(
        self, source: str, kind: str, currency: str, via: str, micros: int, version: int
    ) -> None:
        """A cross the instant no longer has."""
        self.sources.append(source)
        self.kinds.append(kind)
        self.quotes.append(currency)
        self.vias.append(via)
        self.times.append(micros)
        self.rates.append(Decimal(0))
        self.versions.append(version)
        self.deleted.append(True)

    def table_write(self) -> TableWrite:
        columns: dict[str, Any] = {
            "source": self.sources,
            "kind": self.kinds,
            "base": [TARGET] * len(self.sources),
            "quote": self.quotes,
            "via": self.vias,
            "observed_at": np.array(self.times, dtype=np.int64),
            "rate": self.rates,
        }
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
