"""Per-series analytics whose outputs are recomputed from the whole series, vectorised.

Returns, volatility, moving averages, anomaly scores and gap reports all share one shape: each
output row depends on the observations of a single series (source, base, quote, kind) and,
possibly, on every earlier one (an EWMA never forgets). A revision or delete deep in the past can
therefore change any later output, so the honest way to make streaming equal batch is to recompute
from the series itself. `SeriesAnalyzer` does that and writes only what changed:

1. The batch's images are grouped by series. Each series' state holds its observations (times in
   µs and float64 rates), the outputs last written, and the position of the last change applied;
   a change at or below that position was applied by an earlier delivery and is skipped.
2. The surviving images are merged into the observations (the last image of a timestamp wins: an
   update's after-image follows its before-image).
3. The analytic computes its outputs for the whole series in numpy (`SeriesFormula.compute`):
   output times plus a float64 matrix, one column per declared output, NaN where a value is
   undefined. A row exists where the first column is defined.
4. The new outputs after the last observation the batch left untouched (earlier ones cannot
   change: formulas are causal) are compared with the stored ones: rows that appear or whose
   values changed are written, rows that disappear are written as deleted, all with the newest
   position applied to the series as their version (so a rewrite supersedes the row it replaces).

Because outputs are a pure function of the final observations, a batch replayed after a crash
(written, state not committed) writes the same rows with the same versions, and any batch split
ends in the same tables as one computation over the final set.

Bounded state. A formula that looks back a bounded number of observations (`SeriesFormula.lookback`)
resumes from the output row it stored for the first observation it re-reads (an EWMA from its last
value). For such a formula only the series' *head* — its latest ``head_size`` to ``2 · head_size``
observations and their outputs — is read and written per batch; older observations move, once, to
immutable archive segments (``key#0``, ``key#1`` …, times and rates only). A change that reaches
behind the head (a revision of old history) is the rare, slow path: the whole series is read back,
recomputed once as it was and once as it is, compared, and archived again. A tick series thus
costs the same per batch on its first day and its hundredth. A formula without a bounded look-back
keeps its series whole, recomputing the tail after the untouched part (`compute_since`).
"""

from __future__ import annotations

import operator
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, cast

import attrs
import numpy as np
import numpy.typing as npt

from fxcortex.core import AnalyzerContext, Column, RateChange, TableSpec, TableWrite
from fxcortex.core.batch import ChangeRows, Series
from fxcortex.core.batch import images as change_images

Micros = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

SERIES_COLUMNS = (
    Column(name="source", type="LowCardinality(String)", description="source name"),
    Column(name="base", type="LowCardinality(String)", description="base currency"),
    Column(name="quote", type="LowCardinality(String)", description="quote currency"),
    Column(name="kind", type="LowCardinality(String)", description="mid, bid, ask, buy, sell"),
)
"""The columns naming a series: every per-series table starts with them."""

OBSERVED_AT = Column(
    name="observed_at", type="DateTime64(6, 'UTC')", description="the observation's instant"
)
_HEADER = struct.Struct("<qqqq")  # last position, observations, output rows, output columns
_MAGIC = b"FXS2"  # a head with archive segments; the first format (no magic) had none
_SEGMENTS = struct.Struct("<q")
_SEGMENT_SIZE = 1 << 16  # observations per archive segment when the slow path re-archives


@attrs.define
class SeriesState:
    """A series' head as the analytic last saw it: observations, written outputs, last position.

    ``segments`` counts the archive segments holding the observations before ``times[0]``
    (none while the series is short).
    """

    last_position: int
    times: Micros
    rates: Floats
    output_times: Micros
    outputs: Floats  # shape (rows, columns)
    segments: int = 0

    @classmethod
    def empty(cls, columns: int) -> SeriesState:
        """A series with nothing observed and nothing written."""
        return cls(
            -1,
            np.empty(0, np.int64),
            np.empty(0, np.float64),
            np.empty(0, np.int64),
            np.empty((0, columns), np.float64),
        )

    def encode(self) -> bytes:
        """Raw little-endian arrays behind a fixed header: no per-value encoding cost."""
        rows, columns = self.outputs.shape
        return b"".join(
            (
                _MAGIC,
                _SEGMENTS.pack(self.segments),
                _HEADER.pack(self.last_position, len(self.times), rows, columns),
                self.times.astype("<i8").tobytes(),
                self.rates.astype("<f8").tobytes(),
                self.output_times.astype("<i8").tobytes(),
                self.outputs.astype("<f8").tobytes(),
            )
        )

    @classmethod
    def decode(cls, raw: bytes) -> SeriesState:
        """The inverse of `encode` (arrays are copies, so they can be modified)."""
        segments, offset = 0, 0
        if raw.startswith(_MAGIC):
            (segments,) = _SEGMENTS.unpack_from(raw, len(_MAGIC))
            offset = len(_MAGIC) + _SEGMENTS.size
        last_position, count, rows, columns = _HEADER.unpack_from(raw, offset)
        offset += _HEADER.size
        arrays = []
        for dtype, size in (("<i8", count), ("<f8", count), ("<i8", rows), ("<f8", rows * columns)):
            arrays.append(np.frombuffer(raw, dtype=dtype, count=size, offset=offset).copy())
            offset += 8 * size
        times, rates, output_times, outputs = arrays
        return cls(
            last_position,
            times.astype(np.int64),
            rates.astype(np.float64),
            output_times.astype(np.int64),
            outputs.astype(np.float64).reshape(rows, columns),
            segments,
        )


def encode_segment(times: Micros, rates: Floats) -> bytes:
    """Archived observations: times then rates, raw little-endian."""
    return times.astype("<i8").tobytes() + rates.astype("<f8").tobytes()


def decode_segment(raw: bytes) -> tuple[Micros, Floats]:
    """The inverse of `encode_segment`."""
    count = len(raw) // 16
    times = np.frombuffer(raw, dtype="<i8", count=count).astype(np.int64)
    rates = np.frombuffer(raw, dtype="<f8", count=count, offset=8 * count).astype(np.float64)
    return times, rates


class SeriesFormula(ABC):
    """What a per-series analytic computes: output times and values from a whole series."""

    @abstractmethod
    def compute(
        self, times: Micros, rates: Floats, interval: timedelta | None
    ) -> tuple[Micros, Floats]:
        """Outputs for a series sorted by time: (output times, matrix rows x declared outputs).

        ``interval`` is the source's declared observation interval (None when the source is not
        installed). Undefined values are NaN; a row whose first value is NaN is not written.

        Contract: a pure function of its arguments, and *causal*: the outputs at or before any
        observation time ``b`` depend only on the observations at or before ``b``, bit for bit
        (sequential numpy operations such as ``cumsum`` or a recursive filter are; anything that
        looks at the whole series, such as its mean, is not). The framework relies on it to
        compare only the outputs after the last observation a batch left untouched.
        """

    def compute_since(
        self, times: Micros, rates: Floats, interval: timedelta | None, settled: int
    ) -> tuple[Micros, Floats]:
        """The outputs at times after ``settled`` only (the others cannot have changed).

        The default computes everything and drops the settled part; a formula whose outputs
        look back a bounded number of observations overrides it to compute just the tail, which
        keeps appending to a long series cheap. It must give the same bits as `compute`.
        """
        output_times, outputs = self.compute(times, rates, interval)
        cut = int(np.searchsorted(output_times, settled, side="right"))
        return output_times[cut:], outputs[cut:]

    hidden_columns: int = 0
    """Columns after the declared outputs that `compute_tail` needs (an EWMA's raw variance)."""

    def lookback(self, interval: timedelta | None) -> int | None:
        """Observations before the first changed one that `compute_tail` needs, or None.

        None (the default) keeps the whole series in state. A number lets the framework keep only
        the series' head, and hand `compute_tail` the changed tail with that many observations
        before it.
        """
        return None

    def compute_tail(
        self, times: Micros, rates: Floats, interval: timedelta | None, prior: Floats | None
    ) -> tuple[Micros, Floats] | None:
        """Outputs for a tail of a series that starts after its first observation.

        ``times[0]`` is an observation the tail re-reads only for context; ``prior`` is the output
        row stored for it (None if it has none). The rows after the first `lookback` observations
        must equal, bit for bit, those `compute` gives on the whole series; earlier ones are
        discarded. Return None when the tail is not enough (the framework then recomputes the
        whole series). Called only when `lookback` gives a number; the default computes the tail
        as if it were the whole series, right for formulas that look back a fixed number of
        observations and carry nothing further.
        """
        return self.compute(times, rates, interval)


@attrs.frozen
class SeriesAnalyzer:
    """An `Analyzer` that keeps each series (or its head) and writes the outputs a batch changed.

    ``outputs`` names the table's value columns in the order of the formula's matrix (a formula
    may add hidden columns after them, kept in state for `compute_tail` but not written); the
    table is keyed by the series columns and ``time_column``. ``head_size`` is how many of the
    latest observations a series with a bounded look-back keeps in its head (see the module
    docstring).
    """

    name: str
    description: str
    table: TableSpec
    formula: SeriesFormula
    outputs: tuple[str, ...]
    time_column: str = "observed_at"
    # Every batch that touches a series rewrites its head to the state store: with 4,096 the
    # analyzer wrote about 7 MB a batch per analytic on twenty tick series, and the state commit
    # outweighed the analytics. 1,024 still covers every look-back (the longest is 61) and the
    # revisions sources make (days or weeks back, years of a daily fixing).
    head_size: int = 1024

    @property
    def tables(self) -> Sequence[TableSpec]:
        """The one table this analytic writes."""
        return (self.table,)

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """Apply a batch and return the rows it adds, changes or withdraws."""
        grouped = grouped_images(changes)
        if not grouped:
            return []

        keys = {"|".join(series): series for series in grouped}
        stored = context.state.get_many(keys)
        write = _Rows(self.table, self.outputs, self.time_column)
        intervals: dict[str, timedelta | None] = {}
        for key, series in keys.items():
            source = series[0]
            if source not in intervals:
                intervals[source] = context.observation_interval(source)
            head = (
                SeriesState.decode(stored[key])
                if key in stored
                else SeriesState.empty(self.columns)
            )
            self._series(key, series, head, grouped[series], intervals[source], context, write)
        return [write.table_write()] if len(write) else []

    def _series(
        self,
        key: str,
        series: Series,
        state: SeriesState,
        images: SeriesImages,
        interval: timedelta | None,
        context: AnalyzerContext,
        write: _Rows,
    ) -> None:
        """Apply one series' images: the fast path on its head, or the whole series."""
        fresh = images[2] > state.last_position
        if not fresh.any():
            return  # every change was applied by an earlier delivery
        lookback = self.formula.lookback(interval)
        earliest = int(images[0][fresh].min())
        if state.segments == 0:  # the head is the whole series
            self._whole_head(series, state, images, interval, write)
        elif not (
            lookback is not None
            and state.outputs.shape[1] == self.columns  # kept by this version of the formula
            and int(np.searchsorted(state.times, earliest)) > lookback  # within the head
            and self._tail(series, state, images, interval, lookback, write)
        ):
            # A change behind the head, or a tail the formula cannot resume from: the slow path,
            # which stores the series itself.
            self._whole_series(key, series, state, images, interval, lookback, context, write)
            return
        keep = self._head_length(lookback)
        if keep is not None and len(state.times) > 2 * keep:
            self._archive(key, state, keep, context)
        context.state.put(key, state.encode())

    def _head_length(self, lookback: int | None) -> int | None:
        """Observations a head keeps when it archives (None: the series stays whole)."""
        return None if lookback is None else max(self.head_size, lookback + 1)

    @property
    def columns(self) -> int:
        """Columns of the formula's matrix: the written outputs, then its hidden ones."""
        return len(self.outputs) + self.formula.hidden_columns

    def _whole_head(
        self,
        series: Series,
        state: SeriesState,
        images: SeriesImages,
        interval: timedelta | None,
        write: _Rows,
    ) -> None:
        """The head holds the whole series: merge, recompute after the settled part, compare."""
        applied = _apply(state, images)
        assert applied is not None  # fresh images exist
        position, settled = applied
        if state.outputs.shape[1] != self.columns:
            # Kept by an earlier version of the formula: every row is computed and written again.
            state.output_times = state.output_times[:0]
            state.outputs = np.empty((0, self.columns))
            settled = _NEVER
        tail_times, tail = self.formula.compute_since(state.times, state.rates, interval, settled)
        self._replace(series, state, tail_times, tail, position, settled, write)

    def _tail(
        self,
        series: Series,
        state: SeriesState,
        images: SeriesImages,
        interval: timedelta | None,
        lookback: int,
        write: _Rows,
    ) -> bool:
        """The fast path: recompute from ``lookback`` observations before the first change.

        False (nothing changed) when the formula cannot resume from there.
        """
        before = (state.times, state.rates)  # all that `_apply` changes
        applied = _apply(state, images)
        assert applied is not None
        position, settled = applied
        first_changed = int(np.searchsorted(state.times, settled, side="right"))
        start = first_changed - lookback
        at = int(np.searchsorted(state.output_times, state.times[start]))
        prior = (
            state.outputs[at]
            if at < len(state.output_times) and state.output_times[at] == state.times[start]
            else None
        )
        computed = self.formula.compute_tail(
            state.times[start:], state.rates[start:], interval, prior
        )
        if computed is None:
            state.times, state.rates = before
            return False
        tail_times, tail = computed
        cut = int(np.searchsorted(tail_times, settled, side="right"))
        self._replace(series, state, tail_times[cut:], tail[cut:], position, settled, write)
        return True

    def _replace(
        self,
        series: Series,
        state: SeriesState,
        tail_times: Micros,
        tail: Floats,
        position: int,
        settled: int,
        write: _Rows,
    ) -> None:
        """Write the differences after ``settled`` and keep the new outputs in the state."""
        write.diff(series, state.output_times, state.outputs, tail_times, tail, position, settled)
        kept = int(np.searchsorted(state.output_times, settled, side="right"))
        state.output_times = np.concatenate((state.output_times[:kept], tail_times))
        state.outputs = np.concatenate((state.outputs[:kept], tail))
        state.last_position = position

    def _whole_series(
        self,
        key: str,
        series: Series,
        head: SeriesState,
        images: SeriesImages,
        interval: timedelta | None,
        lookback: int | None,
        context: AnalyzerContext,
        write: _Rows,
    ) -> None:
        """The slow path: a change behind the head. Read it all, recompute it all, re-archive."""
        segment_keys = [_segment_key(key, number) for number in range(head.segments)]
        found = context.state.get_many(segment_keys)
        missing = [k for k in segment_keys if k not in found]
        if missing:
            raise LookupError(f"{self.name}: archive segment {missing[0]} of {key} is missing")
        parts = [decode_segment(found[k]) for k in segment_keys]
        whole = SeriesState(
            head.last_position,
            np.concatenate([t for t, _ in parts] + [head.times]),
            np.concatenate([r for _, r in parts] + [head.rates]),
            np.empty(0, np.int64),
            np.empty((0, 0), np.float64),
        )
        # The rows as they were: a pure function of the old observations.
        whole.output_times, whole.outputs = self.formula.compute(whole.times, whole.rates, interval)
        applied = _apply(whole, images)
        assert applied is not None
        position, settled = applied
        tail_times, tail = self.formula.compute_since(whole.times, whole.rates, interval, settled)
        self._replace(series, whole, tail_times, tail, position, settled, write)

        keep = self._head_length(lookback)
        archived = 0 if keep is None else max(len(whole.times) - keep, 0)
        segments = 0
        for segments, start in enumerate(range(0, archived, _SEGMENT_SIZE), start=1):
            end = min(start + _SEGMENT_SIZE, archived)
            context.state.put(
                _segment_key(key, segments - 1),
                encode_segment(whole.times[start:end], whole.rates[start:end]),
            )
        for number in range(segments, head.segments):
            context.state.delete(_segment_key(key, number))
        whole.segments = segments
        _drop_archived(whole, archived)
        context.state.put(key, whole.encode())

    def _archive(self, key: str, state: SeriesState, keep: int, context: AnalyzerContext) -> None:
        """Move all but the latest ``keep`` observations of the head to a new archive segment."""
        moved = len(state.times) - keep
        context.state.put(
            _segment_key(key, state.segments),
            encode_segment(state.times[:moved], state.rates[:moved]),
        )
        state.segments += 1
        _drop_archived(state, moved)


def _segment_key(key: str, number: int) -> str:
    """The state key of a series' archive segment ``number`` (0 the oldest)."""
    return f"{key}#{number}"


def _drop_archived(state: SeriesState, moved: int) -> None:
    """Forget the first ``moved`` observations of a head, and the outputs before what is left."""
    state.times, state.rates = state.times[moved:], state.rates[moved:]
    if len(state.times):
        kept = int(np.searchsorted(state.output_times, state.times[0]))
        state.output_times, state.outputs = state.output_times[kept:], state.outputs[kept:]


SeriesImages = tuple[Micros, Floats, Micros]
"""(observed_at µs, rate or NaN for a removal, position) of a series' images, in feed order."""


def grouped_images(changes: Sequence[RateChange]) -> dict[Series, SeriesImages]:
    """The batch's images per series as arrays (a removal is a NaN rate).

    Split from `image_columns`, once for every series analytic (the arrays are read-only).
    """
    if isinstance(changes, ChangeRows):
        return changes.derived("series.grouped_images", _grouped_images)
    return _grouped_images(changes)


def _grouped_images(changes: Sequence[RateChange]) -> dict[Series, SeriesImages]:
    columns = image_columns(changes)
    if columns is None:
        return {}
    series_columns, times, texts, positions = columns
    if None in texts:
        rates = np.fromiter(
            (np.nan if text is None else float(text) for text in texts),
            dtype=np.float64,
            count=len(texts),
        )
    else:
        rates = np.fromiter(map(float, cast(list[str], texts)), dtype=np.float64, count=len(texts))
    members = column_members(series_columns)
    if members is None:
        return {first_series(series_columns): _read_only(times, rates, positions)}
    return {
        series: _read_only(times[its], rates[its], positions[its])
        for series, its in members.items()
    }


ImageColumns = tuple[list[list[str]], Micros, list[str | None], Micros]
"""A batch's images column by column: the four series columns (source, base, quote, kind),
observed_at µs, rate texts (None for a removal) and positions, in feed order."""


def image_columns(changes: Sequence[RateChange]) -> ImageColumns | None:
    """The batch's images (`fxcortex.core.batch.images`) column by column; None for no images.

    Shared by every analytic of a batch (read-only). A batch of plain inserts from a feed
    (`ChangeRows`, the common case) is read straight from its rows, without an image tuple per
    change.
    """
    if isinstance(changes, ChangeRows):
        return changes.derived("series.image_columns", _image_columns)
    return _image_columns(changes)


def _image_columns(changes: Sequence[RateChange]) -> ImageColumns | None:
    if not len(changes):
        return None
    rows = getattr(changes, "rows", None)
    if rows is not None:
        return _row_image_columns(rows)
    images = change_images(changes)
    times = np.fromiter(map(_IMAGE_TIME, images), dtype=np.int64, count=len(images))
    positions = np.fromiter(map(_IMAGE_POSITION, images), dtype=np.int64, count=len(images))
    series_columns = [list(column) for column in zip(*map(_IMAGE_SERIES, images), strict=True)]
    return series_columns, times, list(map(_IMAGE_RATE, images)), positions


def _row_image_columns(rows: Sequence[tuple[Any, ...]]) -> ImageColumns:
    """`image_columns` of feed rows, a column at a time rather than an image tuple per change.

    Most rows are inserts, with one image each (the after-image). The removals (the before-image
    of an update or delete) are read from their rows alone and slotted in before their change's
    setting, which keeps `images`' order.
    """
    count = len(rows)
    ops = list(map(_OP, rows))
    inserts = ops.count("c") + ops.count("r")
    if inserts == count:  # the usual batch: an after-image per row, nothing else
        times = np.fromiter(map(_AFTER_TIME, rows), dtype=np.int64, count=count)
        positions = np.fromiter(map(_POSITION, rows), dtype=np.int64, count=count)
        texts: list[str | None] = list(map(_AFTER_RATE, rows))
        return [list(map(column, rows)) for column in _AFTER_SERIES], times, texts, positions

    op_codes = np.array(ops)
    removes = (op_codes == "u") | (op_codes == "d")
    sets = op_codes != "d"  # every op but a delete sets an after-image
    removing, setting = np.flatnonzero(removes), np.flatnonzero(sets)
    # Each change's images are consecutive: its removal, then its setting.
    per_change = removes.astype(np.int64) + sets
    first_slot = np.cumsum(per_change) - per_change
    removal_slots, setting_slots = first_slot[removing], (first_slot + removes)[setting]
    total = int(per_change.sum())

    removed = [rows[i] for i in removing.tolist()]
    settings = rows if len(setting) == count else [rows[i] for i in setting.tolist()]

    def merged(removal_values: list[Any], setting_values: list[Any]) -> list[Any]:
        out = np.empty(total, dtype=object)
        out[removal_slots] = removal_values
        out[setting_slots] = setting_values
        merged_values: list[Any] = out.tolist()
        return merged_values

    series_columns = [
        merged(list(map(removal, removed)), list(map(after, settings)))
        for removal, after in zip(_BEFORE_SERIES, _AFTER_SERIES, strict=True)
    ]
    times = np.empty(total, dtype=np.int64)
    times[removal_slots] = np.fromiter(map(_BEFORE_TIME, removed), np.int64, len(removed))
    times[setting_slots] = np.fromiter(map(_AFTER_TIME, settings), np.int64, len(settings))
    positions = np.fromiter(map(_POSITION, rows), dtype=np.int64, count=count)
    texts = merged([None] * len(removed), list(map(_AFTER_RATE, settings)))
    return series_columns, times, texts, np.repeat(positions, per_change)


def first_series(columns: Sequence[list[str]]) -> Series:
    """The series of the first image, from the four series columns."""
    return (columns[0][0], columns[1][0], columns[2][0], columns[3][0])


def column_members(columns: Sequence[list[str]]) -> dict[Series, npt.NDArray[np.intp]] | None:
    """The indices of each series' images, in feed order, series in order of first appearance.

    ``columns`` are the images' four series columns (source, base, quote, kind). None when every
    image is of one series: the images' columns are already that series' own. Split with numpy
    rather than a Python step per image, and column by column rather than by a tuple per image:
    a batch has many images of few series, and most of its columns hold one value (every ECB fix
    is EUR's, from one source, a mid), which one C-speed count settles.
    """
    count = len(columns[0])
    if not count:
        return {}
    combined: npt.NDArray[np.int64] | None = None
    radix = 1  # combined codes lie in [0, radix)
    for column in columns:
        if column.count(column[0]) == count:
            continue
        index = {value: code for code, value in enumerate(dict.fromkeys(column))}
        codes = np.fromiter(map(index.__getitem__, column), dtype=np.int64, count=count)
        if combined is None:
            combined, radix = codes, len(index)
            continue
        if radix * len(index) > _LARGEST_CODE:  # renumber densely before the product overflows
            distinct, inverse = np.unique(combined, return_inverse=True)
            combined, radix = inverse.astype(np.int64), len(distinct)
        combined, radix = combined * len(index) + codes, radix * len(index)
    if combined is None:
        return None
    order = np.argsort(combined, kind="stable")  # keeps feed order within a series
    ordered = combined[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    bounds = [*starts.tolist(), count]
    members: dict[Series, npt.NDArray[np.intp]] = {}
    # series in order of first appearance: a stable sort puts each one's first image first
    for group in np.argsort(order[starts], kind="stable").tolist():
        its = order[bounds[group] : bounds[group + 1]]
        first = int(its[0])
        series = (columns[0][first], columns[1][first], columns[2][first], columns[3][first])
        members[series] = its
    return members


_LARGEST_CODE = 1 << 62


def _read_only(times: Micros, rates: Floats, positions: Micros) -> SeriesImages:
    """Arrays shared by every series analytic of a batch: writing to one would corrupt the rest."""
    for array in (times, rates, positions):
        array.flags.writeable = False
    return times, rates, positions


# Columns of a feed row (`fxcortex.core.batch.ROW_COLUMNS`), read at C speed.
_POSITION = operator.itemgetter(0)
_OP = operator.itemgetter(1)
_BEFORE_SERIES = tuple(map(operator.itemgetter, (3, 4, 5, 6)))
_BEFORE_TIME = operator.itemgetter(7)
_AFTER_SERIES = tuple(map(operator.itemgetter, (9, 10, 11, 12)))
# Columns of an image (`fxcortex.core.batch.Image`).
_IMAGE_SERIES = operator.itemgetter(0)
_IMAGE_TIME = operator.itemgetter(1)
_IMAGE_RATE = operator.itemgetter(2)
_IMAGE_POSITION = operator.itemgetter(3)
_AFTER_TIME = operator.itemgetter(13)
_AFTER_RATE = operator.itemgetter(14)


def _apply(state: SeriesState, images: SeriesImages) -> tuple[int, int] | None:
    """Merge the images newer than the state into it.

    Returns the newest position applied and the *settled* time: the latest observation before the
    earliest one the batch touched (outputs at or before it cannot change), or None when every
    image was applied by an earlier delivery.
    """
    all_times, all_rates, all_positions = images
    fresh = all_positions > state.last_position
    if not fresh.any():
        return None
    times, rates = all_times[fresh], all_rates[fresh]
    # The last image of each timestamp decides it: find it by uniquing the reversed order.
    unique, first_from_end = np.unique(times[::-1], return_index=True)
    final = rates[len(times) - 1 - first_from_end]
    setting = ~np.isnan(final)

    earliest = int(unique[0])
    before = int(np.searchsorted(state.times, earliest)) - 1
    settled = int(state.times[before]) if before >= 0 else _NEVER

    keep = ~np.isin(state.times, unique, assume_unique=True)
    merged_times = np.concatenate((state.times[keep], unique[setting]))
    merged_rates = np.concatenate((state.rates[keep], final[setting]))
    order = np.argsort(merged_times, kind="stable")
    state.times, state.rates = merged_times[order], merged_rates[order]
    return int(all_positions[fresh].max()), settled


_NEVER = np.iinfo(np.int64).min


@attrs.define
class _Rows:
    """The rows one batch writes to a per-series table, built column by column."""

    spec: TableSpec
    outputs: tuple[str, ...]
    time_column: str
    series: list[tuple[Series, int]] = attrs.Factory(list)  # (series, rows) runs
    times: list[Micros] = attrs.Factory(list)
    values: list[Floats] = attrs.Factory(list)
    versions: list[int] = attrs.Factory(list)
    deleted: list[Sequence[bool]] = attrs.Factory(list)

    def __len__(self) -> int:
        return len(self.versions)

    def diff(
        self,
        series: Series,
        old_times: Micros,
        old: Floats,
        new_times: Micros,
        new: Floats,
        version: int,
        settled: int = _NEVER,
    ) -> None:
        """Queue the rows that differ between the stored and the new outputs of one series.

        Rows at or before ``settled`` are not compared: the formula contract says they cannot
        have changed, and skipping them keeps an append to a long series cheap.
        """
        old_from = int(np.searchsorted(old_times, settled, side="right"))
        new_from = int(np.searchsorted(new_times, settled, side="right"))
        old_times, old = old_times[old_from:], old[old_from:]
        new_times, new = new_times[new_from:], new[new_from:]
        old_valid = ~np.isnan(old[:, 0])
        new_valid = ~np.isnan(new[:, 0])
        old_times, old = old_times[old_valid], old[old_valid]
        new_times, new = new_times[new_valid], new[new_valid]

        # Each new row against the stored row with the same time, if any.
        same = np.zeros(len(new_times), bool)
        if len(old_times):
            where = np.minimum(np.searchsorted(old_times, new_times), len(old_times) - 1)
            present = old_times[where] == new_times
            if present.any():
                before = old[where[present]]
                after = new[present]
                equal = (before == after) | (np.isnan(before) & np.isnan(after))
                same[present] = equal.all(axis=1)
        changed = ~same
        gone = ~np.isin(old_times, new_times, assume_unique=True)

        changed_count, gone_count = int(changed.sum()), int(gone.sum())
        count = changed_count + gone_count
        if not count:
            return
        self.series.append((series, count))
        self.times.append(np.concatenate((new_times[changed], old_times[gone])))
        self.values.append(np.concatenate((new[changed], old[gone])))
        self.versions.extend([version] * count)
        self.deleted.append([False] * changed_count + [True] * gone_count)

    def table_write(self) -> TableWrite:
        """All queued rows as one column-oriented write."""
        columns: dict[str, Any] = {}
        for index, field in enumerate(("source", "base", "quote", "kind")):
            values_of: list[object] = []
            for series, count in self.series:
                values_of += [series[index]] * count
            columns[field] = values_of
        # numpy columns go to the store without per-row objects: times as µs, NaN as NULL
        columns[self.time_column] = np.concatenate(self.times)
        matrix = np.concatenate(self.values)
        for index, output in enumerate(self.outputs):
            columns[output] = np.ascontiguousarray(matrix[:, index])
        ordered = {name: columns[name] for name in self.spec.column_names}
        flags = [flag for run in self.deleted for flag in run]
        return TableWrite(
            table=self.spec.name, columns=ordered, versions=self.versions, deleted=flags
        )


def series_table(
    name: str, description: str, outputs: Sequence[Column], time_column: Column = OBSERVED_AT
) -> TableSpec:
    """A per-series table: the series columns, the time column, then the outputs."""
    return TableSpec(
        name=name,
        description=description,
        columns=(*SERIES_COLUMNS, time_column, *outputs),
        key=("source", "base", "quote", "kind", time_column.name),
    )


def window_sums(values: Floats, window: int) -> Floats:
    """The sum of each full window of ``values`` ending at each position; NaN before the first.

    Each sum adds its own ``window`` values in order (``window`` vector additions in all), so it
    has the same bits wherever the array starts: a tail recomputed by `compute_tail` agrees with
    the whole series exactly, which running sums (``cumsum`` differences) would not.
    """
    out = np.full(len(values), np.nan)
    if len(values) >= window:
        count = len(values) - window + 1
        total = values[:count].copy()
        for offset in range(1, window):
            total += values[offset : offset + count]
        out[window - 1 :] = total
    return out


def float_column(name: str, description: str) -> Column:
    """A nullable Float64 output column (None where the value is undefined)."""
    return Column(name=name, type="Nullable(Float64)", description=description)


RegisterAnalyzer = Callable[[SeriesAnalyzer], None]
