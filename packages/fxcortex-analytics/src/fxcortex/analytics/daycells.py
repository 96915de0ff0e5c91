"""Per pair and UTC day, each quoter's observations and their close: the state of `spread` and
`triangulation`.

A *quoter* is whatever one side of a comparison is (``"bonbast|sell"``, ``"t|ecb|mid|EUR"``).
Both analytics need each quoter's last observation of the day (its close), and when that one is
revised or deleted, the one before it. Keeping a whole day of ticks in one state value made every
batch re-read and re-write it (quadratic in the day's length), so observations are kept in hour
pieces:

- the day cell (``key``): per quoter, the close of each hour that has observations, the rows it
  last wrote, and the position of the last change applied (kept when empty, so a re-delivered,
  since-deleted observation does not come back). Cells are stored 32 days to a state value (a
  *bundle*, ``prefix#b<day // 32>``), so a daily source costs one read and one write per pair and
  month rather than per day;
- a piece (``key#hour#quoter``): that quoter's observations in that hour — stored only when there
  are two or more, since a lone observation is its hour's close, already in the cell.

A *moment* is an observation's instant in µs, doubled, plus 1 when the quote was inverted: one
integer that orders observations by time and, at the same instant, puts the inverted one last.

A batch reads the bundles it touches and only the pieces of the hours it touches, and writes back
only the bundles it changed.
"""

from __future__ import annotations

import bisect
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Context, Decimal
from typing import Any

import orjson

from fxcortex.analytics.buckets import DAY_US, HOUR_US
from fxcortex.core import AnalyzerState
from fxcortex.core.batch import Image, Series

_DIVISION = Context(prec=40)
_SCALE = Decimal("1e-18")  # the tables' Decimal(38, 18)
_MOMENT_HOUR = 2 * HOUR_US
BUNDLE_DAYS = 32

Entry = tuple[str, int, str | None, int]
"""(quoter, moment, rate text or None for a removal, position)"""


class _Track:
    """Where one series' images go: its cell prefix and quoter, its orientation, and the entry
    list of the day cell it was last seen in, with that day's bounds in µs."""

    __slots__ = ("entries", "high", "inverted", "low", "prefix", "quoter")

    def __init__(self, prefix: str, inverted: bool, quoter: str) -> None:
        self.prefix, self.inverted, self.quoter = prefix, int(inverted), quoter
        self.low = self.high = 0  # no day yet
        self.entries: list[Entry] = []


def day_entries(
    images: Iterable[Image],
    route: Callable[[Series], tuple[str, bool, str] | None],
    days: dict[DayKey, list[Entry]] | None = None,
) -> dict[DayKey, list[Entry]]:
    """The images as entries of their day cells, in order, added to ``days``.

    ``route`` gives a series' (cell prefix, whether inverted, quoter), or None for a series that
    has no cells; it is asked once per series. A series' next image is usually on the day of
    its last one, so that day's list is kept at hand: an image costs a look-up, two comparisons
    and an entry, not a day key and a second look-up.
    """
    days = {} if days is None else days
    tracks: dict[Series, _Track | None] = {}
    for series, micros, rate, position in images:
        track = tracks.get(series, _UNSEEN)
        if track is None:
            continue  # a series without cells
        if track.low <= micros < track.high:
            track.entries.append((track.quoter, 2 * micros + track.inverted, rate, position))
            continue
        if track is _UNSEEN:
            where = route(series)
            if where is None:
                tracks[series] = None
                continue
            track = tracks[series] = _Track(*where)
        day = micros // DAY_US
        track.low, track.high = day * DAY_US, (day + 1) * DAY_US
        entries = days.get((track.prefix, day))
        if entries is None:
            entries = days[(track.prefix, day)] = []
        track.entries = entries
        entries.append((track.quoter, 2 * micros + track.inverted, rate, position))
    return days


_UNSEEN = _Track("", False, "")  # a series not routed yet


def moment(micros: int, inverted: bool) -> int:
    """The moment of an observation (see the module docstring)."""
    return 2 * micros + inverted


class DayCell:
    """One pair on one day: each quoter's hourly closes, and the row names it last wrote.

    A plain slotted class: one is built per pair and day a batch changes beyond a lone new
    observation.
    """

    __slots__ = ("hours", "last_position", "written")

    def __init__(
        self,
        last_position: int = -1,
        hours: dict[str, dict[str, list[Any]]] | None = None,
        written: list[str] | None = None,
    ) -> None:
        self.last_position = last_position
        # quoter -> {hour number: [moment, rate text]}, the close of each hour
        self.hours: dict[str, dict[str, list[Any]]] = {} if hours is None else hours
        self.written: list[str] = [] if written is None else written

    def closes(self, rate_of: Callable[[str], Decimal] = Decimal) -> dict[str, Decimal]:
        """Each quoter's last rate of the day, inverted where the moment says so.

        ``rate_of`` reads a kept rate text (`triangulation` keeps some as the quotes they are
        worked out from).
        """
        closes = {}
        for quoter, by_hour in self.hours.items():
            if not by_hour:
                continue
            if len(by_hour) == 1:  # a daily source: one hour, one observation
                ((when, text),) = by_hour.values()
            else:
                when, text = max(by_hour.values())
            rate = rate_of(text)
            if when & 1:  # inverted: 1 / rate, to the tables' 18 decimals
                rate = _DIVISION.divide(Decimal(1), rate).quantize(_SCALE, context=_DIVISION)
            closes[quoter] = rate
        return closes


DayKey = tuple[str, int]
"""A day cell: (prefix naming the pair, UTC day number)."""


def _bundle(key: DayKey) -> str:
    return f"{key[0]}#b{key[1] // BUNDLE_DAYS}"


class DayBook:
    """The day cells a batch changed, in their bundles; `store` writes the bundles back."""

    __slots__ = ("bundles", "changed", "encoded")

    def __init__(self) -> None:
        # bundle key -> {day number: [last position, hours, written]}: the bundles of the
        # changed cells, whose rows are still to be written
        self.bundles: dict[str, dict[str, list[Any]]] = {}
        # bundle key -> its value: the bundles that only gained new single-observation cells,
        # final once applied
        self.encoded: dict[str, bytes] = {}
        # day key -> (cell, newest position applied): the cells whose rows may have changed
        self.changed: dict[DayKey, tuple[DayCell, int]] = {}

    def store(self, state: AnalyzerState) -> None:
        """Keep every bundle the batch changed, with each changed cell's position and rows."""
        for key, (cell, newest) in self.changed.items():
            self.bundles[_bundle(key)][str(key[1])] = [newest, cell.hours, cell.written]
        for bundle, cells in self.bundles.items():
            state.put(bundle, orjson.dumps(cells))
        for bundle, value in self.encoded.items():
            state.put(bundle, value)


def apply(days: Mapping[DayKey, Sequence[Entry]], state: AnalyzerState) -> DayBook:
    """Apply each cell's entries (in position order).

    The caller writes the rows of ``book.changed`` (setting each cell's ``written``), then
    calls ``book.store``. A new cell with a single observation has one quoter, so no rows: it
    goes straight into its bundle and not into ``changed``. A bundle in which nothing changed
    (a re-delivered batch) is not written again.
    """
    book = DayBook()
    # The cells by bundle, each with its day's text, worked out once per day (a batch has many
    # pairs a day): applied a bundle at a time, so that a bundle that only gains new cells (a
    # history load: one a pair and day) is encoded at once, while its new cells are fresh in
    # memory, and then let go, rather than kept and encoded after the whole batch.
    day_names: dict[int, tuple[str, str]] = {}
    located: dict[str, list[tuple[DayKey, Sequence[Entry], str]]] = defaultdict(list)
    for key, entries in days.items():
        names = day_names.get(key[1])
        if names is None:
            names = day_names[key[1]] = (f"#b{key[1] // BUNDLE_DAYS}", str(key[1]))
        located[key[0] + names[0]].append((key, entries, names[1]))
    stored = state.get_many(located)
    bundles = book.bundles
    by_piece: dict[str, list[Entry]] = defaultdict(list)
    piece_of: dict[str, tuple[DayKey, str, str]] = {}
    for bundle, its_cells in located.items():
        cells = orjson.loads(stored[bundle]) if bundle in stored else {}
        added = altered = False  # new single-observation cells; changed cells
        for key, entries, day in its_cells:
            found = cells.get(day)
            if found is None and len(entries) == 1 and entries[0][2] is not None:
                # A new day with one observation (a daily fix, mostly).
                quoter, when, rate, position = entries[0]
                cells[day] = [position, {quoter: {str(when // _MOMENT_HOUR): [when, rate]}}, []]
                added = True
                continue
            cell = DayCell() if found is None else DayCell(*found)
            fresh = _fresh(entries, cell.last_position)
            if not fresh:
                continue  # all of it applied by an earlier delivery
            book.changed[key] = (cell, fresh[-1][3])
            altered = True
            if len(fresh) == 1:
                quoter, when, rate = fresh[0][:3]
                hour = str(when // _MOMENT_HOUR)
                closes = cell.hours.get(quoter)
                if rate is not None and (closes is None or hour not in closes):
                    # The first observation of its hour, alone in the batch: it is the hour's
                    # close, and there is no piece to read or write.
                    cell.hours.setdefault(quoter, {})[hour] = [when, rate]
                    continue
            for (quoter, hour_number), group in _by_piece(fresh).items():
                hour = str(hour_number)
                piece = f"{key[0]}|{key[1]}#{hour}#{quoter}"
                by_piece[piece] = group
                piece_of[piece] = (key, quoter, hour)
        if altered:
            bundles[bundle] = cells
        elif added:
            book.encoded[bundle] = orjson.dumps(cells)
        # else all of it was applied by an earlier delivery: the bundle stays as stored
    # A piece exists only where its hour already has a close (two observations or more).
    changed = book.changed
    pieces = state.get_many(
        piece
        for piece, (key, quoter, hour) in piece_of.items()
        if hour in changed[key][0].hours.get(quoter, ())
    )
    for piece, entries in by_piece.items():
        key, quoter, hour = piece_of[piece]
        cell = changed[key][0]
        closes = cell.hours.setdefault(quoter, {})
        observations: dict[int, str]
        if piece in pieces:
            moments, rates = orjson.loads(pieces[piece])
            observations = dict(zip(moments, rates, strict=True))
        elif hour in closes:  # a lone observation lives in the cell only
            when, text = closes[hour]
            observations = {when: text}
        else:
            observations = {}
        if None in map(_rate, entries):
            for _quoter, when, rate, _applied in entries:
                if rate is None:
                    observations.pop(when, None)
                else:
                    observations[when] = rate
        else:  # settings only (most pieces): the same, without a Python step per entry
            observations.update(zip(map(_moment, entries), map(_rate, entries), strict=True))
        if observations:
            close = max(observations)
            closes[hour] = [close, observations[close]]
        else:
            closes.pop(hour, None)
        if not closes:
            del cell.hours[quoter]
        if len(observations) > 1:
            state.put(piece, orjson.dumps([list(observations), list(observations.values())]))
        elif piece in pieces:
            state.delete(piece)
    return book


def _by_piece(entries: Sequence[Entry]) -> dict[tuple[str, int], list[Entry]]:
    """The entries of each quoter and hour (a piece), in order, pieces by first entry.

    An entry usually falls in the same hour as the last one of its quoter (ticks), so each
    quoter's current piece and its bounds are kept at hand: most entries cost two comparisons
    and an append, not a key, a division and a look-up.
    """
    groups: dict[tuple[str, int], list[Entry]] = {}
    current: dict[str, tuple[int, int, list[Entry]]] = {}  # quoter -> its last piece
    quoter = None
    low, high, group = _NO_PIECE
    for entry in entries:
        when = entry[1]
        if entry[0] is not quoter:
            quoter = entry[0]
            low, high, group = current.get(quoter, _NO_PIECE)
        if low <= when < high:
            group.append(entry)
            continue
        hour = when // _MOMENT_HOUR
        low, high = hour * _MOMENT_HOUR, (hour + 1) * _MOMENT_HOUR
        found = groups.get((quoter, hour))
        if found is None:
            group = groups[(quoter, hour)] = [entry]
        else:
            group = found
            group.append(entry)
        current[quoter] = (low, high, group)
    return groups


_NO_PIECE: tuple[int, int, list[Entry]] = (0, 0, [])  # an empty range: never appended to
_moment = operator.itemgetter(1)
_rate = operator.itemgetter(2)
_position = operator.itemgetter(3)


def _fresh(entries: Sequence[Entry], last_position: int) -> Sequence[Entry]:
    """The entries after ``last_position`` (the rest were applied by an earlier delivery), in
    position order (stable: the two images of an update share one, removal first).

    Sorted first and cut where the fresh ones start: the same entries, in the same order, as
    filtering and then sorting, with no Python call per entry.
    """
    if len(entries) < 2:
        return entries if entries and entries[0][3] > last_position else ()
    ordered = sorted(entries, key=_position)
    if ordered[0][3] > last_position:
        return ordered
    return ordered[bisect.bisect_right(ordered, last_position, key=_position) :]
