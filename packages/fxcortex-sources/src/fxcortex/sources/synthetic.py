"""Synthetic FX ticks: a seeded geometric Brownian motion, for demos and load tests.

Nothing is fetched: every quote is generated from the options, and the same options give the same
quotes on every machine (the normal draws come from numpy's PCG64 generator seeded with ``seed``).

The model. Each pair starts at its given rate ``S0`` and moves as a geometric Brownian motion with
zero drift and annualised volatility ``sigma``::

    S(t + dt) = S(t) * exp(-sigma**2 / 2 * dt + sigma * sqrt(dt) * Z),   Z ~ N(0, 1)

with ``dt = 1 / rate`` seconds expressed in years of 365.25 days (a calendar year: the simulation
runs around the clock, weekends included). Pairs move independently. Floats live only inside this
simulation; every rate leaves it as a `Decimal` quantised to a fixed number of decimals per pair:
by default six significant digits at the start rate (EUR/USD 1.08 → 5 decimals, USD/JPY 150 → 3,
USD/IRR 1,050,000 → 0), or ``decimals`` for every pair. A rate never rounds down to zero: the
smallest rate is one unit of the last decimal.

Ticks. A tick is one instant: every pair gets one observation at each tick, so ``count`` ticks of
three pairs are ``3 * count`` mid quotes (twice that with a spread). Tick ``i`` is at
``start + i / rate`` seconds, rounded to the microsecond; ``observation_interval`` is ``1 / rate``.

Kinds. With ``spread`` 0 (the default) each observation is one ``mid`` quote. With ``spread`` in
basis points of the mid (``spread=2`` for 0.02 %), each observation is a ``bid`` rounded down and an
``ask`` rounded up from ``mid ∓ spread / 2``, and no mid, like a market's top of book; the ask is
always at least one decimal unit above the bid.

Window. ``start`` (ISO 8601 with an offset, default 2024-01-01T00:00:00Z, a fixed instant so a seed
reproduces) is the first tick; a window's ``since`` replaces it with 00:00 UTC of that day. The last
tick is the earlier of ``count`` ticks and the end (24:00 UTC) of the window's ``until``; with
neither, 1,000 ticks. A request for more than 50 million ticks is refused rather than run for hours.

Generation is vectorised in numpy chunks of 65,536 ticks and lazy, so memory stays flat however
many ticks are asked for; one million ticks of one pair take a few seconds, most of it building the
`Quote` objects. The draws are consumed in order, so the first ticks of a longer run equal a
shorter run with the same options.

Options: ``pairs`` (``EUR/USD=1.08,USD/JPY=150``), ``rate`` (ticks per second of simulated time),
``seed``, ``volatility`` (annualised, 0.08 = 8 %), ``count``, ``start``, ``spread`` (basis points),
``decimals``. numpy comes with the ``synthetic`` extra.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Self

import attrs

from fxcortex.core import (
    FetchContext,
    FetchWindow,
    InvalidValueError,
    Pair,
    Quote,
    QuoteKind,
    Schedule,
    SourceError,
    hookimpl,
)
from fxcortex.core.extras import Extra

if TYPE_CHECKING:
    import numpy
    import numpy.typing

NAME = "synthetic"
DEFAULT_PAIRS = "EUR/USD=1.08,GBP/USD=1.27,USD/JPY=150.0"
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_COUNT = 1000
MAX_TICKS = 50_000_000
CHUNK_TICKS = 65_536
SIGNIFICANT_DIGITS = 6
SECONDS_PER_YEAR = 365.25 * 86_400
OPTIONS = ("pairs", "rate", "seed", "volatility", "count", "start", "spread", "decimals")
SCHEDULE = Schedule(
    cron="* * * * *",
    timezone="UTC",
    description="generated on demand: a tick every 1/rate seconds of simulated time",
)
EXTRA = Extra(distribution="fxcortex-sources", name="synthetic", modules=("numpy",))


@attrs.frozen(kw_only=True)
class SeriesSpec:
    """One simulated pair: where it starts and how many decimals its rates keep."""

    pair: Pair
    start_rate: Decimal
    decimals: int


def parse_pairs(text: str, *, decimals: int | None = None, source: str = NAME) -> list[SeriesSpec]:
    """Read ``EUR/USD=1.08,USD/JPY=150`` into series specs (decimals from the start rate)."""
    specs: list[SeriesSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, equals, rate_text = item.partition("=")
        if not equals:
            raise SourceError(source, f"pair {item!r} has no start rate; write it as EUR/USD=1.08")
        try:
            pair = Pair.parse(name)
        except InvalidValueError as error:
            raise SourceError(source, f"pair {name.strip()!r}: {error}") from None
        try:
            start_rate = Decimal(rate_text.strip())
        except InvalidOperation:
            raise SourceError(
                source, f"start rate {rate_text.strip()!r} of {pair} is not a number"
            ) from None
        if not start_rate.is_finite() or start_rate <= 0:
            raise SourceError(source, f"start rate {rate_text.strip()!r} of {pair} is not positive")
        if any(spec.pair == pair for spec in specs):
            raise SourceError(source, f"pair {pair} is listed twice")
        places = decimals if decimals is not None else default_decimals(start_rate)
        specs.append(SeriesSpec(pair=pair, start_rate=start_rate, decimals=places))
    if not specs:
        raise SourceError(source, "no pairs: give pairs=BASE/QUOTE=RATE,…")
    return specs


def default_decimals(start_rate: Decimal) -> int:
    """Decimals keeping six significant digits at ``start_rate`` (1.08 → 5, 150 → 3), at least 0."""
    magnitude = start_rate.adjusted()  # the exponent of the leading digit: 1.08 → 0, 150 → 2
    return max(0, SIGNIFICANT_DIGITS - 1 - magnitude)


@attrs.frozen(kw_only=True)
class SyntheticSource:
    """Seeded GBM ticks for demos and load tests (see the module docstring)."""

    specs: tuple[SeriesSpec, ...] = attrs.field(
        factory=lambda: tuple(parse_pairs(DEFAULT_PAIRS)), converter=tuple
    )
    rate: float = 1.0
    seed: int = 0
    volatility: float = 0.08
    count: int | None = None
    start: datetime = DEFAULT_START
    spread_bps: Decimal = Decimal(0)
    name: str = NAME
    description: str = "Synthetic FX ticks: seeded geometric Brownian motion, for demos and tests"
    schedule: Schedule = SCHEDULE
    history_since: date | None = date(1970, 1, 1)
    extra: Extra | None = EXTRA

    @property
    def currencies(self) -> tuple[str, ...]:
        """Every code of the simulated pairs, sorted."""
        codes = {spec.pair.base.code for spec in self.specs}
        codes |= {spec.pair.quote.code for spec in self.specs}
        return tuple(sorted(codes))

    @property
    def observation_interval(self) -> timedelta:
        """One tick: ``1 / rate`` seconds."""
        return timedelta(seconds=1 / self.rate)

    def configure(self, **options: str) -> Self:
        """A copy with any of ``pairs rate seed volatility count start spread decimals`` set."""
        unknown = set(options) - set(OPTIONS)
        if unknown:
            raise SourceError(
                self.name, f"unknown options {sorted(unknown)}; known: {', '.join(OPTIONS)}"
            )
        changes: dict[str, object] = {}
        if "rate" in options:
            changes["rate"] = self._positive_float(options["rate"], "rate")
        if "volatility" in options:
            volatility = self._float(options["volatility"], "volatility")
            if volatility < 0:
                raise SourceError(self.name, f"volatility {options['volatility']!r} is negative")
            changes["volatility"] = volatility
        if "seed" in options:
            seed = self._int(options["seed"], "seed")
            if seed < 0:
                raise SourceError(self.name, f"seed {options['seed']!r} is negative")
            changes["seed"] = seed
        if "count" in options:
            count = self._int(options["count"], "count")
            if not 1 <= count <= MAX_TICKS:
                raise SourceError(self.name, f"count {count} is not between 1 and {MAX_TICKS:,}")
            changes["count"] = count
        if "start" in options:
            changes["start"] = self._start(options["start"])
        if "spread" in options:
            try:
                spread = Decimal(options["spread"])
            except InvalidOperation:
                spread = Decimal("NaN")
            if not spread.is_finite() or spread < 0:
                raise SourceError(
                    self.name, f"spread {options['spread']!r} is not a non-negative number (bps)"
                )
            changes["spread_bps"] = spread
        decimals: int | None = None
        if "decimals" in options:
            decimals = self._int(options["decimals"], "decimals")
            if not 0 <= decimals <= 12:
                raise SourceError(self.name, f"decimals {decimals} is not between 0 and 12")
        if "pairs" in options or decimals is not None:
            text = options.get("pairs") or ",".join(
                f"{spec.pair}={spec.start_rate}" for spec in self.specs
            )
            changes["specs"] = tuple(parse_pairs(text, decimals=decimals, source=self.name))
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> Iterator[Quote]:
        """The generated quotes of ``window`` (lazily, chunk by chunk; nothing can fail midway)."""
        if self.extra is not None:
            self.extra.require(self.name)
        start = self.start
        if window.since is not None:
            start = datetime.combine(window.since, time(), tzinfo=UTC)
        ticks = self._tick_count(start, window)
        return self._generate(start, ticks)

    def _tick_count(self, start: datetime, window: FetchWindow) -> int:
        limit: int | None = self.count
        if window.until is not None:
            end = datetime.combine(window.until + timedelta(days=1), time(), tzinfo=UTC)
            span = (end - start).total_seconds()
            # ticks strictly before the end: the largest i with i / rate < span, plus tick 0
            in_window = max(0, math.ceil(span * self.rate - 1e-9))
            limit = in_window if limit is None else min(limit, in_window)
        if limit is None:
            limit = DEFAULT_COUNT
        if limit > MAX_TICKS:
            raise SourceError(
                self.name,
                f"the window holds {limit:,} ticks at {self.rate:g} per second, more than "
                f"{MAX_TICKS:,}: narrow it or set count",
            )
        return limit

    def _generate(self, start: datetime, ticks: int) -> Iterator[Quote]:
        import numpy as np

        rng = np.random.default_rng(self.seed)
        step = 1.0 / self.rate
        dt = step / SECONDS_PER_YEAR
        drift = -0.5 * self.volatility**2 * dt
        shock = self.volatility * math.sqrt(dt)
        start_rates = np.array([float(spec.start_rate) for spec in self.specs])
        log_level = np.zeros(len(self.specs))
        start_us = _epoch_microseconds(start)
        half_spread = float(self.spread_bps) / 20_000
        for first in range(0, ticks, CHUNK_TICKS):
            size = min(CHUNK_TICKS, ticks - first)
            draws = rng.standard_normal((size, len(self.specs)))
            steps = drift + shock * draws
            if first == 0:
                steps[0, :] = 0.0  # tick 0 is the start rate itself
            levels = log_level + np.cumsum(steps, axis=0)
            log_level = levels[-1]
            mids = start_rates * np.exp(levels)
            offsets = np.rint(np.arange(first, first + size) * (step * 1e6)).astype(np.int64)
            stamps = _datetimes(start_us + offsets)
            yield from self._quotes(mids, stamps, half_spread)

    def _quotes(
        self,
        mids: numpy.typing.NDArray[numpy.float64],
        stamps: list[datetime],
        half_spread: float,
    ) -> Iterator[Quote]:
        import numpy as np

        series: list[tuple[QuoteKind, Pair, list[Decimal]]] = []
        for column, spec in enumerate(self.specs):
            scale = 10.0**spec.decimals
            mid = mids[:, column]
            if half_spread == 0:
                units = np.maximum(np.rint(mid * scale), 1)
                series.append((QuoteKind.MID, spec.pair, _decimals(units, spec.decimals)))
                continue
            bid = np.maximum(np.floor(mid * (1 - half_spread) * scale), 1)
            ask = np.maximum(np.ceil(mid * (1 + half_spread) * scale), bid + 1)
            series.append((QuoteKind.BID, spec.pair, _decimals(bid, spec.decimals)))
            series.append((QuoteKind.ASK, spec.pair, _decimals(ask, spec.decimals)))
        source = self.name
        for row, observed_at in enumerate(stamps):
            for kind, pair, rates in series:
                yield Quote(
                    pair=pair, rate=rates[row], observed_at=observed_at, source=source, kind=kind
                )

    def _start(self, text: str) -> datetime:
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise SourceError(self.name, f"start {text!r} is not an ISO 8601 time") from None
        if value.tzinfo is None:
            raise SourceError(
                self.name, f"start {text!r} has no UTC offset; write e.g. 2024-01-01T00:00:00Z"
            )
        return value.astimezone(UTC)

    def _float(self, text: str, option: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise SourceError(self.name, f"{option} {text!r} is not a number") from None
        if not math.isfinite(value):
            raise SourceError(self.name, f"{option} {text!r} is not a finite number")
        return value

    def _positive_float(self, text: str, option: str) -> float:
        value = self._float(text, option)
        if value <= 0:
            raise SourceError(self.name, f"{option} {text!r} is not positive")
        return value

    def _int(self, text: str, option: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise SourceError(self.name, f"{option} {text!r} is not a whole number") from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_microseconds(when: datetime) -> int:
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _datetimes(microseconds: numpy.typing.NDArray[numpy.int64]) -> list[datetime]:
    # numpy turns datetime64[us] into naive datetimes in C; only the tzinfo is set per tick.
    naive: list[datetime] = microseconds.astype("datetime64[us]").tolist()
    return [moment.replace(tzinfo=UTC) for moment in naive]


def _decimals(units: numpy.typing.NDArray[numpy.float64], places: int) -> list[Decimal]:
    """``units / 10**places`` as Decimals; each distinct value is built once and shared."""
    import numpy as np

    distinct, index = np.unique(units.astype(np.int64), return_inverse=True)
    exponent = f"e-{places}"
    built = np.empty(len(distinct), dtype=object)
    built[:] = [Decimal(f"{value}{exponent}") for value in distinct.tolist()]
    rates: list[Decimal] = built[index].tolist()
    return rates


@hookimpl
def fxcortex_register_sources(register: Callable[[SyntheticSource], None]) -> None:
    """Register the synthetic tick generator."""
    register(SyntheticSource())
