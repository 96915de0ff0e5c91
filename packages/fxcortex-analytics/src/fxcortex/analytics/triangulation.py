"""Triangulation consistency: a triangulated cross against other sources' direct quotes.

`cross_rates` prices every currency X in dollars through a source's common currency C
(USD/JPY = EUR/JPY ÷ EUR/USD from the ECB). Another source may quote the same pair directly (the
Fed's H.10 publishes USD/JPY). This analytic sets the two side by side, per pair and UTC day::

    deviation    = triangulated / direct − 1     (0.001: the triangulated rate is 0.1 % higher)
    deviation_bp = 10,000 · deviation

- Both rates are taken in the canonical orientation of `spread` (EUR/USD, GBP/USD, USD/JPY, …):
  a triangulated USD/X is inverted when X comes before USD in the market order.
- Each side counts with its last observation of the day (the day's close), as in `spread`.
- One row per pair, day, triangulating source and kind, common currency (``via``), and direct
  source and kind; the direct source is never the triangulating one (a source that quotes X
  against USD itself gets no triangulated X: see `cross_rates`).

A large deviation on one day points at a stale or mistyped fix in one of the three quotes; a
persistent one at different fixing times (the ECB fixes at 14:15 CET, the Fed at noon New York).

State: the cells of `cross_rates` (one source's quotes at one instant, under ``i|…``) give the
triangulated rates, and per canonical pair and day a `daycells.DayCell` (prefix ``d|BASE|QUOTE``,
kept in 32-day bundles) holds the triangulated (``t|source|kind|via``) and direct
(``d|source|kind``) observations, so a revision or delete anywhere recomputes exactly the days it
touches, and a re-delivered batch changes nothing. A triangulated observation is kept as the rate
texts of its two quotes (``"162.55/1.0812"``) and divided, exactly as `cross_rates` divides, only
when a direct quote is there to compare it with: on a history like the ECB's, where no other
source quotes the crosses, nothing is divided (see `_rate`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

import attrs
import orjson

from fxcortex.analytics import daycells
from fxcortex.analytics.buckets import DAY_US, from_micros
from fxcortex.analytics.cross_rates import (
    TARGET,
    Instant,
    InstantEntry,
    apply_quotes,
    instants,
    quotient,
    routes,
)
from fxcortex.analytics.daycells import DayCell, DayKey, Entry
from fxcortex.analytics.spread import PRICE, cell_prefix
from fxcortex.core import AnalyzerContext, Column, RateChange, TableSpec, TableWrite, hookimpl
from fxcortex.core.batch import Series
from fxcortex.core.batch import images as change_images

NAME = "triangulation"
_INVERTED = "~"  # a leg taken 1 / rate, in a day cell's triangulated observation

TABLE = TableSpec(
    name=NAME,
    description="A triangulated cross beside other sources' direct quotes, per pair and UTC day.",
    columns=(
        Column(name="base", type="LowCardinality(String)", description="canonical base"),
        Column(name="quote", type="LowCardinality(String)", description="canonical quote"),
        Column(name="day", type="Date", description="UTC day of the observations"),
        Column(name="source", type="LowCardinality(String)", description="triangulating source"),
        Column(name="kind", type="LowCardinality(String)", description="its kind"),
        Column(name="via", type="LowCardinality(String)", description="the common currency"),
        Column(name="direct_source", type="LowCardinality(String)", description="quoting source"),
        Column(name="direct_kind", type="LowCardinality(String)", description="its kind"),
        Column(name="triangulated", type=PRICE, description="day's last triangulated rate"),
        Column(name="direct", type=PRICE, description="day's last direct rate"),
        Column(name="deviation", type="Float64", description="triangulated / direct - 1"),
        Column(name="deviation_bp", type="Float64", description="deviation in basis points"),
    ),
    key=("base", "quote", "day", "source", "kind", "via", "direct_source", "direct_kind"),
)


@functools.lru_cache(maxsize=4096)
def _day_prefix(base: str, quote: str) -> tuple[str, bool]:
    """("d|BASE|QUOTE" in canonical order, whether the input was reversed)."""
    prefix, inverted = cell_prefix(base, quote)
    return f"d|{prefix}", inverted


@attrs.frozen
class TriangulationAnalyzer:
    """Triangulated crosses against direct quotes (see the module docstring)."""

    name: str = NAME
    description: str = "Deviation of a triangulated cross from other sources' direct quotes"
    tables: Sequence[TableSpec] = (TABLE,)
    # A cross needs both legs and other pairs' direct quotes: every partition in one process.
    combines_pairs: ClassVar[bool] = True

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """Apply a batch and return the rows of every pair and day it changed."""
        by_instant = instants(changes)  # the cells of `cross_rates`, shared with it
        if not by_instant:
            return []
        days = daycells.day_entries(change_images(changes), _direct_route)
        self._triangulate(by_instant, days, context)
        rows = _Rows()
        book = daycells.apply(days, context.state)
        for key, (cell, newest) in book.changed.items():
            cell.written = rows.cell(key, cell, newest)
        book.store(context.state)
        return [rows.table_write()] if rows.versions else []

    @staticmethod
    def _triangulate(
        by_instant: Mapping[Instant, Sequence[InstantEntry]],
        days: dict[DayKey, list[Entry]],
        context: AnalyzerContext,
    ) -> None:
        """Update the instant cells; the triangulated rates that changed become day entries."""
        keys = {
            f"i|{source}|{kind}|{micros}": (source, kind, micros)
            for source, kind, micros in by_instant
        }
        stored = context.state.get_many(keys)
        # Per plan and day, the day cells' entry lists of its crosses, in order: instant after
        # instant of a batch quotes the same pairs on the same day.
        targets: dict[tuple[_Plan, int], list[list[Entry]]] = {}
        for key, instant in keys.items():
            raw = stored.get(key)
            # [last position, quotes] (an earlier version kept the crosses too: ignored)
            last_position, quotes, *_ = orjson.loads(raw) if raw is not None else (-1, {})
            before = dict(quotes) if quotes else None
            newest = apply_quotes(quotes, by_instant[instant], last_position)
            if newest < 0:
                continue
            source, kind, micros = instant
            # The crosses as they were: worked out again (a revision of a stored instant is rare,
            # and keeping them would double every instant's state).
            was = _observations(_plan(source, kind, tuple(before)), before) if before else {}
            plan = _plan(source, kind, tuple(quotes))
            texts = plan.observations(quotes)
            day = micros // DAY_US
            moment = 2 * micros
            if not was:  # a new instant (the common case): every cross is an observation
                lists = targets.get((plan, day))
                if lists is None:
                    lists = targets[(plan, day)] = [
                        days.setdefault((prefix, day), []) for prefix in plan.prefixes
                    ]
                for entries, quoter, inverted, text in zip(
                    lists, plan.quoters, plan.inverted, texts, strict=True
                ):
                    entries.append((quoter, moment + inverted, text, newest))
            else:
                now = dict(zip(plan.crosses, texts, strict=True))
                for step, text in zip(plan.steps, texts, strict=True):
                    if _same_rate(was.get(step.cross), text):
                        continue  # unchanged
                    entry: Entry = (step.quoter, moment + step.inverted, text, newest)
                    days.setdefault((step.prefix, day), []).append(entry)
                for currency, via in was.keys() - now.keys():
                    quoter = _triangulated(source, kind, via)  # no longer triangulated: withdrawn
                    prefix, inverted = _day_prefix(TARGET, currency)
                    entry = (quoter, moment + inverted, None, newest)
                    days.setdefault((prefix, day), []).append(entry)
            context.state.put(key, orjson.dumps([newest, quotes]))


class _Step(NamedTuple):
    """One cross of an instant and everything about keeping it that is not a rate."""

    cross: tuple[str, str]  # (quote X, via C)
    prefix: str  # of its day cells (the canonical pair)
    inverted: bool  # whether the canonical pair is X/USD
    quoter: str  # t|source|kind|via
    price: str  # the pair giving the price of X in C
    price_mark: str  # `_INVERTED` when that price is 1 / its rate, else ""
    dollars: str  # the pair giving the price of USD in C
    dollars_mark: str


class _Plan:
    """The crosses of an instant of one source and kind quoting some pairs (see `routes`).

    Like the routes, it depends on the pairs alone: one look-up per instant rather than a
    prefix, a quoter and marks per cross. The steps are also laid out column by column, for
    the loop over a new instant's crosses. Hashed by identity (plans are cached): a cheap key.
    """

    __slots__ = ("crosses", "inverted", "legs", "prefixes", "quoters", "steps")

    def __init__(self, source: str, kind: str, pairs: tuple[str, ...]) -> None:
        steps = []
        for route in routes(pairs):
            prefix, inverted = _day_prefix(TARGET, route.currency)
            steps.append(
                _Step(
                    cross=(route.currency, route.via),
                    prefix=prefix,
                    inverted=inverted,
                    quoter=_triangulated(source, kind, route.via),
                    price=route.price,
                    price_mark=_INVERTED if route.price_inverted else "",
                    dollars=route.dollars,
                    dollars_mark=_INVERTED if route.dollars_inverted else "",
                )
            )
        self.steps = tuple(steps)
        self.crosses = [step.cross for step in steps]
        self.prefixes = [step.prefix for step in steps]
        self.quoters = [step.quoter for step in steps]
        self.inverted = [int(step.inverted) for step in steps]
        self.legs = [
            (step.price_mark, step.price, step.dollars_mark, step.dollars) for step in steps
        ]

    def observations(self, quotes: dict[str, str]) -> list[str]:
        """Each cross as a day cell keeps it (see `_rate`), in step order."""
        return [
            f"{price_mark}{quotes[price]}/{dollars_mark}{quotes[dollars]}"
            for price_mark, price, dollars_mark, dollars in self.legs
        ]


_plan = functools.lru_cache(maxsize=1024)(_Plan)


def _observations(plan: _Plan, quotes: dict[str, str]) -> dict[tuple[str, str], str]:
    """{(quote X, via C): the cross as a day cell keeps it (see `_rate`)} for one instant."""
    return dict(zip(plan.crosses, plan.observations(quotes), strict=True))


def _rate(text: str) -> Decimal:
    """A day cell's rate: a direct quote's rate text, or a triangulated observation's quotes.

    A triangulated observation is kept undivided, as the rate texts of its two quotes:
    ``"162.55/1.0812"`` is (EUR/JPY) / (EUR/USD), and a quote taken inverted has a ``~`` before
    its rate (``"~11.55/~10.5"``: (1 / EUR/NOK) / (1 / USD/NOK), Norges Bank's way). Dividing
    costs more than all the rest of keeping an observation, and most triangulated rates are
    never compared (no other source quotes that pair that day): only the ones compared are
    divided, here, to the same quotient `cross_rates` stores.

    Cells written before the quotes were kept hold the quotient itself, which reads like a
    direct quote.
    """
    price, divided, dollars = text.partition("/")
    if not divided:
        return Decimal(text)
    return quotient(*_leg(price), *_leg(dollars))


def _leg(text: str) -> tuple[str, bool]:
    """(rate text, whether it is taken inverted) of one quote in a triangulated observation."""
    return (text[len(_INVERTED) :], True) if text.startswith(_INVERTED) else (text, False)


def _same_rate(was: str | None, now: str) -> bool:
    """Whether a revised instant's cross kept its rate (the same quotes, or the same quotient)."""
    return was is not None and (was == now or _rate(was) == _rate(now))


def _direct_route(series: Series) -> tuple[str, bool, str] | None:
    """A dollar pair's day cells as a direct quote: (prefix, whether inverted, quoter)."""
    source, base, quote, kind = series
    if TARGET not in (base, quote) or base == quote:
        return None
    return (*_day_prefix(base, quote), _direct(source, kind))


@functools.lru_cache(maxsize=4096)
def _direct(source: str, kind: str) -> str:
    """The quoter of a direct quote: ``d|source|kind``."""
    return f"d|{source}|{kind}"


@functools.lru_cache(maxsize=4096)
def _triangulated(source: str, kind: str, via: str) -> str:
    """The quoter of a triangulated rate: ``t|source|kind|via``."""
    return f"t|{source}|{kind}|{via}"


@attrs.define
class _Rows:
    columns: dict[str, list[Any]] = attrs.Factory(lambda: {name: [] for name in TABLE.column_names})
    versions: list[int] = attrs.Factory(list)
    deleted: list[bool] = attrs.Factory(list)

    def cell(self, key: DayKey, cell: DayCell, version: int) -> list[str]:
        """Queue a day's rows and the withdrawals of rows it no longer has; its row names."""
        kinds = {quoter[0] for quoter in cell.hours}
        if kinds != {"t", "d"} and not cell.written:
            return []  # only one side that day (the common case): nothing to compare
        _, base, quote = key[0].split("|")
        day = from_micros(key[1] * DAY_US).date()
        closes = cell.closes(_rate)
        names = []
        for triangulated in (q for q in closes if q.startswith("t|")):
            for direct in (q for q in closes if q.startswith("d|")):
                if triangulated.split("|")[1] == direct.split("|")[1]:
                    continue  # a source is not compared with itself
                rate_t, rate_d = closes[triangulated], closes[direct]
                deviation = float(rate_t / rate_d) - 1.0
                names.append(f"{triangulated}#{direct}")
                self._add(base, quote, day, triangulated, direct, (rate_t, rate_d, deviation))
                self.versions.append(version)
                self.deleted.append(False)
        for gone in set(cell.written) - set(names):
            triangulated, direct = gone.split("#")
            self._add(base, quote, day, triangulated, direct, None)
            self.versions.append(version)
            self.deleted.append(True)
        return names

    def _add(
        self,
        base: str,
        quote: str,
        day: Any,
        triangulated: str,
        direct: str,
        values: tuple[Decimal, Decimal, float] | None,
    ) -> None:
        _, source, kind, via = triangulated.split("|")
        _, direct_source, direct_kind = direct.split("|")
        rate_t, rate_d, deviation = values if values else (Decimal(0), Decimal(0), 0.0)
        row = (base, quote, day, source, kind, via, direct_source, direct_kind, rate_t, rate_d)
        for name, value in zip(
            TABLE.column_names, (*row, deviation, deviation * 10_000), strict=True
        ):
            self.columns[name].append(value)

    def table_write(self) -> TableWrite:
        return TableWrite(
            table=NAME, columns=self.columns, versions=self.versions, deleted=self.deleted
        )


@hookimpl
def fxcortex_register_analyzers(register: Callable[[TriangulationAnalyzer], None]) -> None:
    """Register the triangulation-consistency analytic."""
    register(TriangulationAnalyzer())
