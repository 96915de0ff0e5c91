"""Change batches held as flat rows, for analytics that work on whole batches.

A change feed reads rows anyway; building a `RateChange` and two `Quote` objects per row only to
take them apart again costs more than the analytics. `ChangeRows` keeps the rows and builds
objects only when an item is asked for, and `images` gives every analytic the same compact view of
a batch, whatever its origin: per change, the observation it removes and the one it sets.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast, overload

from fxcortex.core.models import ChangeOp, Pair, Quote, QuoteKind, RateChange

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_T = TypeVar("_T")
_MICRO = timedelta(microseconds=1)

Series = tuple[str, str, str, str]
"""(source, base, quote, kind)"""

Image = tuple[Series, int, str | None, int]
"""(series, observed_at in µs since the epoch, rate text or None for a removal, position)"""

ROW_COLUMNS = (
    "position",
    "op",
    "committed_at",
    "b_source",
    "b_base",
    "b_quote",
    "b_kind",
    "b_observed_at",
    "b_rate",
    "a_source",
    "a_base",
    "a_quote",
    "a_kind",
    "a_observed_at",
    "a_rate",
)
"""The layout of a row: times in µs since the epoch, rates as decimal text, absent images NULL."""

_KINDS = {kind.value: kind for kind in QuoteKind}
_OPS = {op.value: op for op in ChangeOp}
_REMOVES = frozenset({"u", "d"})


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (moment - EPOCH) // _MICRO


@functools.lru_cache(maxsize=65_536)
def from_micros(micros: int) -> datetime:
    """The aware UTC datetime of a µs timestamp (cached: batches repeat fixing times)."""
    return EPOCH + timedelta(microseconds=micros)


def quote_from_row(
    source: str, base: str, quote: str, kind: str, observed_at: int, rate: str
) -> Quote:
    """A quote from its stored columns."""
    return Quote(
        pair=Pair.of(base, quote),
        rate=Decimal(rate),
        observed_at=from_micros(observed_at),
        source=source,
        kind=_KINDS[kind],
    )


def change_from_row(row: Sequence[Any]) -> RateChange:
    """A `RateChange` from a row laid out as `ROW_COLUMNS`."""
    return RateChange(
        op=_OPS[row[1]],
        position=row[0],
        committed_at=from_micros(row[2]),
        before=quote_from_row(*row[3:9]) if row[3] is not None else None,
        after=quote_from_row(*row[9:15]) if row[9] is not None else None,
    )


def row_from_change(change: RateChange) -> tuple[Any, ...]:
    """A change as a row laid out as `ROW_COLUMNS` (the inverse of `change_from_row`)."""
    return (
        change.position,
        change.op.value,
        to_micros(change.committed_at),
        *_quote_columns(change.before),
        *_quote_columns(change.after),
    )


def _quote_columns(quote: Quote | None) -> tuple[Any, ...]:
    if quote is None:
        return _ABSENT
    return (
        quote.source,
        quote.pair.base.code,
        quote.pair.quote.code,
        quote.kind.value,
        to_micros(quote.observed_at),
        str(quote.rate),
    )


_ABSENT = (None,) * 6


class ChangeRows(Sequence[RateChange]):
    """A batch of changes as rows laid out as `ROW_COLUMNS`; items are built on access.

    Views every analyzer needs (`images`, an analytic's grouping of them) are computed once per
    batch and shared through `derived`: treat them as read-only.
    """

    __slots__ = ("_memo", "rows")

    def __init__(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.rows = rows
        self._memo: dict[str, Any] = {}

    def derived(self, name: str, compute: Callable[[ChangeRows], _T]) -> _T:
        """``compute(self)``, computed once per batch under ``name`` and shared (read-only)."""
        try:
            return cast(_T, self._memo[name])
        except KeyError:
            value = self._memo[name] = compute(self)
            return value

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> RateChange: ...

    @overload
    def __getitem__(self, index: slice) -> ChangeRows: ...

    def __getitem__(self, index: int | slice) -> RateChange | ChangeRows:
        if isinstance(index, slice):
            return ChangeRows(self.rows[index])
        return change_from_row(self.rows[index])

    def __iter__(self) -> Iterator[RateChange]:
        return map(change_from_row, self.rows)

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same changes (a list of `RateChange`, other rows)."""
        if isinstance(other, ChangeRows):
            return list(self.rows) == list(other.rows)
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(other) == len(self) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable rows: not hashable, like a list

    def __repr__(self) -> str:
        return f"ChangeRows({len(self.rows)} rows)"

    def images(self) -> list[Image]:
        """The removal (before image of an update or delete) and setting of every change.

        Computed once per batch and shared by every analyzer: do not modify the list.
        """
        return self.derived("images", ChangeRows._images)

    def _images(self) -> list[Image]:
        out: list[Image] = []
        append = out.append
        for row in self.rows:
            position = row[0]
            if row[1] in _REMOVES:
                append(((row[3], row[4], row[5], row[6]), row[7], None, position))
            if row[9] is not None:
                append(((row[9], row[10], row[11], row[12]), row[13], row[14], position))
        return out


def images(changes: Sequence[RateChange]) -> list[Image]:
    """Per change in order: the observation it removes, then the one it sets (see `Image`)."""
    if isinstance(changes, ChangeRows):
        return changes.images()
    out: list[Image] = []
    for change in changes:
        if change.op in (ChangeOp.UPDATE, ChangeOp.DELETE) and change.before is not None:
            before = change.before
            out.append((_series(before), to_micros(before.observed_at), None, change.position))
        if change.after is not None:
            after = change.after
            out.append(
                (_series(after), to_micros(after.observed_at), str(after.rate), change.position)
            )
    return out


def _series(quote: Quote) -> Series:
    return (quote.source, quote.pair.base.code, quote.pair.quote.code, quote.kind.value)


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while one batch is processed.

    A batch allocates hundreds of thousands of small containers that live until it ends (its
    rows, the state values it decodes, the rows it writes). The collector counts allocations and
    every few hundred traverses the young objects again, promoting these survivors and
    re-traversing them in older generations: on a history load that doubled the time of the
    cell-keeping analytics. Reference counting still frees everything as usual; cycles wait for
    the collector, which runs again as soon as the batch is done. Nested uses keep it paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
