"""OHLC bars: open, high, low and close of every series at every resolution that fits it.

For each series (source, base, quote, kind) and bucket (see `fxcortex.analytics.buckets` for the
resolution labels) the bar is::

    open  = rate of the earliest observation in the bucket
    close = rate of the latest observation in the bucket
    high  = max(rate), low = min(rate)
    observations = number of observations in the bucket

Which resolutions a series gets follows its source's observation interval: only buckets longer than
the interval (a daily fix gets ``week`` and ``month`` bars; ticks also ``minute``, ``hour`` and
``day`` bars). A series from a source that is not installed gets every resolution.

Streaming equals batch: the analytic keeps the observations themselves as state, partitioned by
series and calendar month (by hour for sources faster than hourly), and recomputes each bucket a
batch touches from them. A revision or delete of a past observation therefore rewrites its bars, a
bucket left empty is withdrawn (a deleted row), and each partition remembers the position of the
last change applied to it, so a re-delivered batch changes nothing.

The extremes are found by comparing float64 images of the rates, and the bar carries the exact
Decimal of the observation found, so no rate is rounded on its way to the table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from decimal import Decimal

import attrs
import numpy as np

from fxcortex.analytics.buckets import (
    Micros,
    Resolution,
    bucket_end,
    bucket_start,
    bucket_starts,
    from_micros,
)
from fxcortex.core import (
    AnalyzerContext,
    Column,
    RateChange,
    TableSpec,
    TableWrite,
    hookimpl,
)
from fxcortex.core.batch import Series
from fxcortex.core.batch import images as change_images

NAME = "ohlc"
PRICE = "Decimal(38, 18)"
TABLE = TableSpec(
    name="ohlc",
    description="Open/high/low/close bars per series, resolution and bucket (UTC).",
    columns=(
        Column(name="source", type="LowCardinality(String)", description="source name"),
        Column(name="base", type="LowCardinality(String)", description="base currency"),
        Column(name="quote", type="LowCardinality(String)", description="quote currency"),
        Column(name="kind", type="LowCardinality(String)", description="mid, bid, ask, buy, sell"),
        Column(name="resolution", type="LowCardinality(String)", description="bucket size label"),
        Column(name="bucket_start", type="DateTime64(6, 'UTC')", description="first instant"),
        Column(name="open", type=PRICE, description="rate of the earliest observation"),
        Column(name="high", type=PRICE, description="highest rate"),
        Column(name="low", type=PRICE, description="lowest rate"),
        Column(name="close", type=PRICE, description="rate of the latest observation"),
        Column(name="observations", type="UInt32", description="observations in the bucket"),
    ),
    key=("source", "base", "quote", "kind", "resolution", "bucket_start"),
)

_ALL = tuple(Resolution)


@attrs.frozen
class _Layout:
    """The resolutions a series gets and how its observations are partitioned in state."""

    resolutions: tuple[Resolution, ...]
    partition: Resolution


def layout_for(interval: timedelta | None) -> tuple[tuple[Resolution, ...], Resolution]:
    """(resolutions, partition resolution) for a source observed every ``interval``."""
    if interval is None:
        return _ALL, Resolution.MONTH
    resolutions = tuple(r for r in Resolution if r.shortest > interval)
    partition = Resolution.MONTH if interval >= timedelta(hours=1) else Resolution.HOUR
    return resolutions or (Resolution.MONTH,), partition


@attrs.define
class _Partition:
    """The observations of one series inside one partition, and the last position applied."""

    last_position: int = -1
    rates: dict[int, str] = attrs.Factory(dict)

    def encode(self) -> bytes:
        times = sorted(self.rates)
        return json.dumps([self.last_position, times, [self.rates[t] for t in times]]).encode()

    @classmethod
    def decode(cls, raw: bytes) -> _Partition:
        last_position, times, rates = json.loads(raw)
        return cls(last_position, dict(zip(times, rates, strict=True)))


def _state_key(series: Series, partition_start: int) -> str:
    return "|".join((*series, str(partition_start)))


@attrs.frozen
class OhlcAnalyzer:
    """Open/high/low/close bars (see the module docstring for the formulas)."""

    name: str = NAME
    description: str = "OHLC bars at every resolution coarser than the source's interval"
    tables: Sequence[TableSpec] = (TABLE,)

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """Apply a batch and return the bars it changes (deleted rows for emptied buckets)."""
        images: dict[Series, list[tuple[int, str | None, int]]] = defaultdict(list)
        for series, micros, rate, position in change_images(changes):
            images[series].append((micros, rate, position))
        if not images:
            return []
        layouts = _layouts(images, context.observation_interval)

        # Which buckets the batch touches, with the newest position touching each.
        touched: dict[Series, dict[tuple[Resolution, int], int]] = {}
        partitions_needed: set[tuple[Series, int]] = set()
        partition_of_image: dict[Series, list[int]] = {}
        for series, entries in images.items():
            layout = layouts[series]
            times = np.fromiter((e[0] for e in entries), dtype=np.int64, count=len(entries))
            positions = np.fromiter((e[2] for e in entries), dtype=np.int64, count=len(entries))
            buckets = touched[series] = {}
            for resolution in layout.resolutions:
                for start, position in _newest_per_bucket(
                    bucket_starts(resolution, times), positions
                ):
                    buckets[(resolution, start)] = position
                    end = bucket_end(resolution, start)
                    for partition in _partitions_overlapping(layout.partition, start, end):
                        partitions_needed.add((series, partition))
            own = partition_of_image[series] = bucket_starts(layout.partition, times).tolist()
            partitions_needed.update((series, partition) for partition in set(own))

        state = context.state
        keys = {_state_key(series, start): (series, start) for series, start in partitions_needed}
        stored = state.get_many(keys)
        partitions = {
            keys[key]: _Partition.decode(stored[key]) if key in stored else _Partition()
            for key in keys
        }

        # Compare with the positions as loaded: the two images of one update share a position.
        applied_before = {where: partition.last_position for where, partition in partitions.items()}
        changed: set[tuple[Series, int]] = set()
        for series, entries in images.items():
            for (micros, rate, position), partition_start in zip(
                entries, partition_of_image[series], strict=True
            ):
                where = (series, partition_start)
                target = partitions[where]
                if position <= applied_before[where]:
                    continue  # applied by an earlier delivery of this change
                if rate is None:  # the change takes this observation away
                    target.rates.pop(micros, None)
                else:
                    target.rates[micros] = rate
                target.last_position = position
                changed.add(where)
        for where in changed:
            state.put(_state_key(*where), partitions[where].encode())

        return [_bars(touched, layouts, partitions)]


def _layouts(
    images: Iterable[Series], interval_of: Callable[[str], timedelta | None]
) -> dict[Series, _Layout]:
    by_source: dict[str, _Layout] = {}
    layouts = {}
    for series in images:
        source = series[0]
        if source not in by_source:
            by_source[source] = _Layout(*layout_for(interval_of(source)))
        layouts[series] = by_source[source]
    return layouts


def _newest_per_bucket(starts: Micros, positions: Micros) -> Iterable[tuple[int, int]]:
    unique, inverse = np.unique(starts, return_inverse=True)
    newest = np.full(len(unique), -1, dtype=np.int64)
    np.maximum.at(newest, inverse, positions)
    return zip(unique.tolist(), newest.tolist(), strict=True)


def _partitions_overlapping(partition: Resolution, start: int, end: int) -> Iterable[int]:
    current = bucket_start(partition, start)
    while current < end:
        yield current
        current = bucket_end(partition, current)


def _bars(
    touched: dict[Series, dict[tuple[Resolution, int], int]],
    layouts: dict[Series, _Layout],
    partitions: dict[tuple[Series, int], _Partition],
) -> TableWrite:
    columns: dict[str, list[object]] = {name: [] for name in TABLE.column_names}
    versions: list[int] = []
    deleted: list[bool] = []
    by_series: dict[Series, list[_Partition]] = defaultdict(list)
    for (series, _), partition in partitions.items():
        by_series[series].append(partition)

    for series, buckets in touched.items():
        times, floats, texts = _observations(by_series[series])
        for resolution in layouts[series].resolutions:
            wanted = {start: pos for (res, start), pos in buckets.items() if res is resolution}
            found: set[int] = set()
            if len(times):
                starts = bucket_starts(resolution, times)
                first = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
                last = np.r_[first[1:], len(times)] - 1
                by_value = np.lexsort((floats, starts))  # within each bucket, lowest rate first
                for lo, hi in zip(first.tolist(), last.tolist(), strict=True):
                    start = int(starts[lo])
                    if start not in wanted:
                        continue
                    found.add(start)
                    _append(
                        columns,
                        series,
                        resolution,
                        start,
                        (texts[lo], texts[by_value[hi]], texts[by_value[lo]], texts[hi]),
                        hi - lo + 1,
                    )
                    versions.append(wanted[start])
                    deleted.append(False)
            for start in wanted.keys() - found:
                _append(columns, series, resolution, start, None, 0)
                versions.append(wanted[start])
                deleted.append(True)
    return TableWrite(table=TABLE.name, columns=columns, versions=versions, deleted=deleted)


def _observations(parts: list[_Partition]) -> tuple[Micros, np.ndarray, list[str]]:
    """All observations of the loaded partitions: sorted times, float rates, exact rate texts."""
    pairs = sorted(item for part in parts for item in part.rates.items())
    times = np.fromiter((t for t, _ in pairs), dtype=np.int64, count=len(pairs))
    texts = [rate for _, rate in pairs]
    floats = np.array(texts, dtype=np.float64) if texts else np.empty(0, dtype=np.float64)
    return times, floats, texts


def _append(
    columns: dict[str, list[object]],
    series: Series,
    resolution: Resolution,
    start: int,
    prices: tuple[str, str, str, str] | None,
    observations: int,
) -> None:
    source, base, quote, kind = series
    columns["source"].append(source)
    columns["base"].append(base)
    columns["quote"].append(quote)
    columns["kind"].append(kind)
    columns["resolution"].append(resolution.value)
    columns["bucket_start"].append(from_micros(start))
    open_, high, low, close = (Decimal(p) for p in prices) if prices else (Decimal(0),) * 4
    columns["open"].append(open_)
    columns["high"].append(high)
    columns["low"].append(low)
    columns["close"].append(close)
    columns["observations"].append(observations)


@hookimpl
def fxcortex_register_analyzers(register: Callable[[OhlcAnalyzer], None]) -> None:
    """Register the OHLC analytic."""
    register(OhlcAnalyzer())
