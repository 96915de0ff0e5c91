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

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, cast

import attrs
import numpy as np
import orjson

from fxcortex.analytics.buckets import (
    WEEK_US,
    Micros,
    Resolution,
    bucket_end,
    bucket_start,
    bucket_starts,
)
from fxcortex.analytics.series import column_members, first_series, image_columns
from fxcortex.core import (
    AnalyzerContext,
    Column,
    RateChange,
    TableSpec,
    TableWrite,
    hookimpl,
)
from fxcortex.core.batch import Series

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
        return orjson.dumps([self.last_position, times, list(map(self.rates.__getitem__, times))])

    @classmethod
    def decode(cls, raw: bytes) -> _Partition:
        last_position, times, rates = orjson.loads(raw)
        return cls(last_position, dict(zip(times, rates, strict=True)))


def _state_key(series: Series, partition_start: int) -> str:
    return "|".join((*series, str(partition_start)))


Piece = list[Any]
"""The bar of the observations of one partition inside one bucket:
[first µs, open, last µs, close, high as float, high, low as float, low, observations]."""


def _piece_key(series: Series, resolution: Resolution, start: int) -> str:
    return "|".join((*series, resolution.value, str(start)))


def _is_fine(resolution: Resolution, partition: Resolution) -> bool:
    """Whether a bucket of ``resolution`` is computed from the partitions it overlaps.

    True when it overlaps one partition, or two at most (a week across a month end); buckets
    over many partitions (days, weeks and months of hourly partitions) are combined from pieces.
    """
    if partition is Resolution.HOUR:
        return resolution in (Resolution.MINUTE, Resolution.HOUR)
    return True


@attrs.frozen
class OhlcAnalyzer:
    """Open/high/low/close bars (see the module docstring for the formulas)."""

    name: str = NAME
    description: str = "OHLC bars at every resolution coarser than the source's interval"
    tables: Sequence[TableSpec] = (TABLE,)

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """Apply a batch and return the bars it changes (deleted rows for emptied buckets).

        A bucket inside one partition is computed from the partition's observations. A bucket
        spanning partitions (a month of hourly partitions, a week across a month end) is combined
        from its *pieces*, the bar of each partition's share of it, kept in state beside the
        partitions, so a batch reads only the partitions it changes.
        """
        grouped = _grouped_images(changes)
        if not grouped:
            return []
        layouts = _layouts(grouped, context.observation_interval)

        # Which buckets the batch touches, with the newest position touching each.
        touched: dict[Series, dict[tuple[Resolution, int], int]] = {}
        runs: dict[Series, list[tuple[int, int, int]]] = {}  # [(first, end, partition start)]
        for series, (image_times, _texts, positions) in grouped.items():
            layout = layouts[series]
            buckets = touched[series] = {}
            for resolution in layout.resolutions:
                for start, position in _newest_per_bucket(
                    bucket_starts(resolution, image_times), positions
                ):
                    buckets[(resolution, start)] = position
            # Its images in runs in one partition (a batch of ticks makes one or two).
            parts = bucket_starts(layout.partition, image_times)
            cuts = (np.flatnonzero(parts[1:] != parts[:-1]) + 1).tolist()
            runs[series] = [
                (lo, hi, int(parts[lo]))
                for lo, hi in zip([0, *cuts], [*cuts, len(parts)], strict=True)
            ]

        state = context.state
        needed = {
            (series, p)
            for series, its_runs in runs.items()
            for p in dict.fromkeys(p for _lo, _hi, p in its_runs)
        }
        for series, buckets in touched.items():
            partition = layouts[series].partition
            weeks = [bucket for resolution, bucket in buckets if resolution is Resolution.WEEK]
            if weeks and _is_fine(Resolution.WEEK, partition):
                # A week computed from partitions needs each one it overlaps: a week is shorter
                # than any partition it is computed from, so those of its first and last instant.
                starts = np.array(weeks, dtype=np.int64)
                overlapped = {
                    *bucket_starts(partition, starts).tolist(),
                    *bucket_starts(partition, starts + (WEEK_US - 1)).tolist(),
                }
                needed.update((series, p) for p in overlapped)
        keys = {_state_key(series, start): (series, start) for series, start in needed}
        stored = state.get_many(keys)
        partitions = {
            keys[key]: _Partition.decode(stored[key]) if key in stored else _Partition()
            for key in keys
        }

        # Compare with the positions as loaded: the two images of one update share a position.
        applied_before = {where: partition.last_position for where, partition in partitions.items()}
        changed: set[tuple[Series, int]] = set()
        for series, (image_times, image_texts, positions) in grouped.items():
            for lo, hi, partition_start in runs[series]:
                where = (series, partition_start)
                fresh = np.flatnonzero(positions[lo:hi] > applied_before[where])
                if not len(fresh):
                    continue  # applied by an earlier delivery of these changes
                if len(fresh) == hi - lo:
                    run_times, run_texts = image_times[lo:hi].tolist(), image_texts[lo:hi]
                else:
                    members = (fresh + lo).tolist()
                    run_times = image_times[members].tolist()
                    run_texts = [image_texts[i] for i in members]
                target = partitions[where]
                _apply(target.rates, run_times, run_texts)
                target.last_position = int(positions[lo + fresh[-1]])
                changed.add(where)
        for where in changed:
            state.put(_state_key(*where), partitions[where].encode())

        rows = _Bars()
        for series, buckets in touched.items():
            layout = layouts[series]
            own = {start: partitions[(series, start)] for s, start in partitions if s == series}
            observed = {start: _observations(part) for start, part in own.items()}
            coarse = [r for r in layout.resolutions if not _is_fine(r, layout.partition)]
            # The pieces each changed partition now contributes to each coarse bucket.
            fresh_pieces: dict[tuple[Resolution, int], dict[int, Piece | None]] = defaultdict(dict)
            for start, (times, floats, texts) in observed.items():
                if (series, start) not in changed:
                    continue
                end = bucket_end(layout.partition, start)
                for resolution in coarse:
                    bucket = bucket_start(resolution, start)
                    while bucket < end:
                        fresh_pieces[(resolution, bucket)][start] = None  # empty unless found
                        bucket = bucket_end(resolution, bucket)
                    for bucket, piece in _pieces(resolution, times, floats, texts):
                        fresh_pieces[(resolution, bucket)][start] = piece
            piece_keys = {
                _piece_key(series, resolution, bucket): (resolution, bucket)
                for resolution, bucket in {*fresh_pieces, *(b for b in buckets if b[0] in coarse)}
            }
            stored_pieces = state.get_many(piece_keys)
            combined: dict[tuple[Resolution, int], Piece | None] = {}
            for key, span in piece_keys.items():
                pieces: dict[str, Piece] = (
                    orjson.loads(stored_pieces[key]) if key in stored_pieces else {}
                )
                if span in fresh_pieces:
                    for part_start, new_piece in fresh_pieces[span].items():
                        if new_piece is None:
                            pieces.pop(str(part_start), None)
                        else:
                            pieces[str(part_start)] = new_piece
                    if pieces:
                        state.put(key, orjson.dumps(pieces))
                    else:
                        state.delete(key)
                combined[span] = _combine(pieces.values())

            # Fine buckets: every partition they overlap is loaded, and loaded partitions hold
            # disjoint time ranges, so one pass over their observations in order finds them all.
            fine_bars: dict[tuple[Resolution, int], Piece] = {}
            if any(r not in coarse for r, _ in buckets):
                ordered = [observed[start] for start in sorted(observed)]
                times = np.concatenate([o[0] for o in ordered])
                floats = np.concatenate([o[1] for o in ordered])
                texts = [text for o in ordered for text in o[2]]
                for resolution in layout.resolutions:
                    if resolution not in coarse:
                        for bucket, piece in _pieces(resolution, times, floats, texts):
                            fine_bars[(resolution, bucket)] = piece
            for (resolution, bucket), position in buckets.items():
                if resolution in coarse:
                    bar = combined.get((resolution, bucket))
                else:
                    bar = fine_bars.get((resolution, bucket))
                rows.add(series, resolution, bucket, bar, position)
        return [rows.table_write()]


SeriesImages = tuple[Micros, list[str | None], Micros]
"""(observed_at µs, rate text or None for a removal, position) of a series' images, in order."""


def _grouped_images(changes: Sequence[RateChange]) -> dict[Series, SeriesImages]:
    """A batch's images per series (in order of first appearance), column by column."""
    columns = image_columns(changes)
    if columns is None:
        return {}
    series_columns, times, texts, positions = columns
    members = column_members(series_columns)
    if members is None:
        return {first_series(series_columns): (times, texts, positions)}
    return {
        series: (times[its], [texts[i] for i in its.tolist()], positions[its])
        for series, its in members.items()
    }


def _apply(rates: dict[int, str], times: list[int], texts: list[str | None]) -> None:
    """Apply a partition's fresh images in order: set an observation, or take it away (None)."""
    if None not in texts:  # settings only (most runs): the same without a Python step each
        rates.update(zip(times, cast(list[str], texts), strict=True))
        return
    for micros, text in zip(times, texts, strict=True):
        if text is None:
            rates.pop(micros, None)
        else:
            rates[micros] = text


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


def _observations(part: _Partition) -> tuple[Micros, np.ndarray, list[str]]:
    """A partition's observations: sorted times, float rates, exact rate texts."""
    times_list = sorted(part.rates)
    times = np.array(times_list, dtype=np.int64)
    texts = list(map(part.rates.__getitem__, times_list))
    floats = np.array(texts, dtype=np.float64) if texts else np.empty(0, dtype=np.float64)
    return times, floats, texts


def _pieces(
    resolution: Resolution, times: Micros, floats: np.ndarray, texts: list[str]
) -> Iterable[tuple[int, Piece]]:
    """(bucket start, bar) of every bucket of ``resolution`` holding some of these observations."""
    if not len(times):
        return
    if len(times) <= _FEW:
        yield from _few_pieces(resolution, times.tolist(), floats.tolist(), texts)
        return
    starts = bucket_starts(resolution, times)
    first = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
    last = np.r_[first[1:], len(times)] - 1
    # Per bucket, the last of its highest rates and the first of its lowest (segment reductions:
    # a partition holds a day of ticks, and sorting it by rate took most of the batch).
    counts = last - first + 1
    index = np.arange(len(times))
    high_rates = np.repeat(np.maximum.reduceat(floats, first), counts)
    low_rates = np.repeat(np.minimum.reduceat(floats, first), counts)
    highest = np.maximum.reduceat(np.where(floats == high_rates, index, -1), first)
    lowest = np.minimum.reduceat(np.where(floats == low_rates, index, len(times)), first)
    # Every number leaves numpy in one list per column: a numpy scalar per value and bucket
    # cost more than the rest of the loop.
    for start, lo, hi, high, low, opened, closed, high_rate, low_rate in zip(
        starts[first].tolist(),
        first.tolist(),
        last.tolist(),
        highest.tolist(),
        lowest.tolist(),
        times[first].tolist(),
        times[last].tolist(),
        floats[highest].tolist(),
        floats[lowest].tolist(),
        strict=True,
    ):
        yield (
            start,
            [
                opened,
                texts[lo],
                closed,
                texts[hi],
                high_rate,
                texts[high],
                low_rate,
                texts[low],
                hi - lo + 1,
            ],
        )


_FEW = 64
"""Below this many observations plain Python beats numpy's per-call overhead (daily fixes)."""


def _few_pieces(
    resolution: Resolution, times: list[int], floats: list[float], texts: list[str]
) -> Iterable[tuple[int, Piece]]:
    """`_pieces` for a handful of sorted observations, without numpy."""
    groups: dict[int, list[int]] = {}
    for index, moment in enumerate(times):
        groups.setdefault(bucket_start(resolution, moment), []).append(index)
    for start, members in groups.items():
        lo, hi = members[0], members[-1]
        high = max(members, key=floats.__getitem__)
        low = min(members, key=floats.__getitem__)
        yield (
            start,
            [
                times[lo],
                texts[lo],
                times[hi],
                texts[hi],
                floats[high],
                texts[high],
                floats[low],
                texts[low],
                len(members),
            ],
        )


def _combine(pieces: Iterable[Piece]) -> Piece | None:
    """One bar from the bars of disjoint parts of a bucket."""
    bar: Piece | None = None
    for piece in pieces:
        if bar is None:
            bar = list(piece)
            continue
        if piece[0] < bar[0]:
            bar[0], bar[1] = piece[0], piece[1]
        if piece[2] > bar[2]:
            bar[2], bar[3] = piece[2], piece[3]
        if piece[4] > bar[4]:
            bar[4], bar[5] = piece[4], piece[5]
        if piece[6] < bar[6]:
            bar[6], bar[7] = piece[6], piece[7]
        bar[8] += piece[8]
    return bar


@attrs.define
class _Bars:
    """The rows of one batch: a tuple per bar, turned into columns once at the end."""

    rows: list[tuple[object, ...]] = attrs.Factory(list)
    versions: list[int] = attrs.Factory(list)
    deleted: list[bool] = attrs.Factory(list)

    def add(
        self, series: Series, resolution: Resolution, start: int, bar: Piece | None, version: int
    ) -> None:
        # µs and the prices' texts, as the stores take them: a datetime and a Decimal per value
        # would only be turned back by the store adapter. An emptied bucket is a deleted row.
        if bar is None:
            self.rows.append((*series, resolution.value, start, "0", "0", "0", "0", 0))
        else:
            self.rows.append(
                (*series, resolution.value, start, bar[1], bar[5], bar[7], bar[3], bar[8])
            )
        self.versions.append(version)
        self.deleted.append(bar is None)

    def table_write(self) -> TableWrite:
        columns: list[list[object]] = (
            [list(column) for column in zip(*self.rows, strict=True)]
            if self.rows
            else [[] for _ in TABLE.column_names]
        )
        return TableWrite(
            table=TABLE.name,
            columns=dict(zip(TABLE.column_names, columns, strict=True)),
            versions=self.versions,
            deleted=self.deleted,
        )


@hookimpl
def fxcortex_register_analyzers(register: Callable[[OhlcAnalyzer], None]) -> None:
    """Register the OHLC analytic."""
    register(OhlcAnalyzer())
