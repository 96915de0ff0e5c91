"""Per pair and UTC day, each quoter's observations and their close: the state of `spread` and
`triangulation`.

A *quoter* is whatever one side of a comparison is (``"bonbast|sell"``, ``"t|ecb|mid|EUR"``).
Both analytics need each quoter's last observation of the day (its close), and when that one is
revised or deleted, the one before it. Keeping a whole day of ticks in one state value made every
batch re-read and re-write it (quadratic in the day's length), so observations are kept in hour
pieces:

- the day cell (``key``): per quoter, the close of each hour that has observations, the rows it
  last wrote, and the position of the last change applied (kept when empty, so a re-delivered,
  since-deleted observation does not come back);
- a piece (``key#hour#quoter``): that quoter's observations in that hour — stored only when there
  are two or more, since a lone observation is its hour's close, already in the cell. A daily
  source therefore costs one state value per day, as before.

A batch reads the cells it touches and only the pieces of the hours it touches.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Context, Decimal
from typing import Any

from fxcortex.analytics.buckets import HOUR_US
from fxcortex.core import AnalyzerState

_DIVISION = Context(prec=40)
_SCALE = Decimal("1e-18")  # the tables' Decimal(38, 18)

Entry = tuple[str, str, str | None, bool, int]
"""(quoter, moment ``"µs|inverted"``, rate text or None for a removal, inverted, position)"""


def _instant(moment: str) -> tuple[int, int]:
    """(µs, orientation) of a moment: the day's close is the greatest."""
    micros, inverted = moment.split("|")
    return int(micros), int(inverted)


class DayCell:
    """One pair on one day: each quoter's hourly closes, and the row names it last wrote.

    A plain slotted class: one is built per pair and day a batch touches, hundreds of thousands
    in a history load.
    """

    __slots__ = ("hours", "last_position", "written")

    def __init__(
        self,
        last_position: int = -1,
        hours: dict[str, dict[str, list[Any]]] | None = None,
        written: list[str] | None = None,
    ) -> None:
        self.last_position = last_position
        # quoter -> {hour number: [moment, rate text, inverted]}, the close of each hour
        self.hours: dict[str, dict[str, list[Any]]] = {} if hours is None else hours
        self.written: list[str] = [] if written is None else written

    def encode(self) -> bytes:
        return json.dumps([self.last_position, self.hours, self.written]).encode()

    @classmethod
    def decode(cls, raw: bytes) -> DayCell:
        last_position, hours, written = json.loads(raw)
        return cls(last_position, hours, written)

    def closes(self) -> dict[str, Decimal]:
        """Each quoter's last rate of the day, inverted where the moment says so."""
        closes = {}
        for quoter, by_hour in self.hours.items():
            if not by_hour:
                continue
            if len(by_hour) == 1:  # a daily source: one hour, one observation
                ((_moment, text, inverted),) = by_hour.values()
            else:
                _moment, text, inverted = max(by_hour.values(), key=lambda c: _instant(c[0]))
            rate = Decimal(text)
            if inverted:  # 1 / rate, to the tables' 18 decimals
                rate = _DIVISION.divide(Decimal(1), rate).quantize(_SCALE, context=_DIVISION)
            closes[quoter] = rate
        return closes


def apply(
    days: Mapping[str, Sequence[Entry]], state: AnalyzerState
) -> dict[str, tuple[DayCell, int]]:
    """Apply each cell's entries (in position order); the changed cells and their newest position.

    The caller writes the cells' rows, then stores each with `store` (its ``written`` updated).
    """
    stored = state.get_many(days)
    cells: dict[str, tuple[DayCell, int]] = {}
    by_piece: dict[str, list[Entry]] = defaultdict(list)
    piece_of: dict[str, tuple[str, str, str]] = {}
    for key, entries in days.items():
        cell = DayCell.decode(stored[key]) if key in stored else DayCell()
        fresh = [e for e in entries if e[4] > cell.last_position]
        if not fresh:
            continue  # all of it applied by an earlier delivery
        if len(fresh) > 1:
            fresh.sort(key=lambda e: e[4])
        cells[key] = (cell, fresh[-1][4])
        for entry in fresh:
            quoter, moment, rate = entry[0], entry[1], entry[2]
            hour = str(int(moment[: moment.index("|")]) // HOUR_US)
            closes = cell.hours.get(quoter)
            if rate is not None and len(fresh) == 1 and (closes is None or hour not in closes):
                # The first observation of its hour, alone in the batch (a daily fix): it is
                # the hour's close, and there is no piece to read or write.
                cell.hours.setdefault(quoter, {})[hour] = [moment, rate, entry[3]]
                continue
            piece = f"{key}#{hour}#{quoter}"
            by_piece[piece].append(entry)
            piece_of[piece] = (key, quoter, hour)
    # A piece exists only where its hour already has a close (two observations or more).
    pieces = state.get_many(
        piece
        for piece, (key, quoter, hour) in piece_of.items()
        if hour in cells[key][0].hours.get(quoter, ())
    )
    for piece, entries in by_piece.items():
        key, quoter, hour = piece_of[piece]
        cell = cells[key][0]
        closes = cell.hours.setdefault(quoter, {})
        if piece in pieces:
            observations: dict[str, list[Any]] = json.loads(pieces[piece])
        elif hour in closes:  # a lone observation lives in the cell only
            moment, text, inverted = closes[hour]
            observations = {moment: [text, inverted]}
        else:
            observations = {}
        for _quoter, moment, rate, inverted, _position in entries:
            if rate is None:
                observations.pop(moment, None)
            else:
                observations[moment] = [rate, inverted]
        if observations:
            close = (
                next(iter(observations))
                if len(observations) == 1
                else max(observations, key=_instant)
            )
            closes[hour] = [close, *observations[close]]
        else:
            closes.pop(hour, None)
        if not closes:
            del cell.hours[quoter]
        if len(observations) > 1:
            state.put(piece, json.dumps(observations).encode())
        elif piece in pieces:
            state.delete(piece)
    return cells


def store(key: str, cell: DayCell, newest: int, state: AnalyzerState) -> None:
    """Keep a cell after its rows were written (kept when empty: its position guards)."""
    cell.last_position = newest
    state.put(key, cell.encode())
