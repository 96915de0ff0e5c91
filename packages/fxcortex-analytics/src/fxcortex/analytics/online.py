"""Online (learning) analytics per series: models that see each observation once, in order.

An online model cannot unlearn, so these analytics follow the stream rather than the final set of
observations: only an observation later than the series' latest is learned from; revisions and
deletes of the past are counted and left to the raw tables. What they promise instead is
determinism: the same ordered stream gives the same rows whatever the batch split, with crashes
and re-deliveries in between, because each series' model and the position of the last change it
applied live together in the Cache port (pickled) and a change at or below that position is
skipped.

`OnlineAnalyzer` does the bookkeeping; an analytic supplies a `SeriesLearner`, which makes a
fresh per-series state and turns each new observation into rows.
"""

from __future__ import annotations

import pickle
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from fxcortex.core import AnalyzerContext, RateChange, TableSpec, TableWrite
from fxcortex.core.batch import Series
from fxcortex.core.batch import images as change_images


@attrs.define
class OnlineState:
    """What every online series keeps besides its model."""

    model: Any
    last_position: int = -1
    last_time: int | None = None  # µs of the latest observation learned from
    ignored: int = 0  # revisions and deletes of the past, not unlearned


class SeriesLearner(Protocol):
    """The model side of an online analytic."""

    @property
    def table(self) -> TableSpec:
        """The table its rows go to."""
        ...

    def new_state(self) -> OnlineState:
        """A fresh state for a series never seen."""
        ...

    def new_rows(self) -> Any:
        """An empty collector for one batch's rows."""
        ...

    def observe(
        self,
        state: OnlineState,
        series: Series,
        micros: int,
        rate: float,
        position: int,
        rows: Any,
    ) -> None:
        """Learn from one new observation (later than ``state.last_time``), adding rows."""
        ...

    def write(self, rows: Any) -> TableWrite | None:
        """The collected rows as a write (None when there are none)."""
        ...


@attrs.frozen
class OnlineAnalyzer:
    """An `Analyzer` running a `SeriesLearner` over each series' new observations in order."""

    name: str
    description: str
    learner: SeriesLearner

    @property
    def tables(self) -> Sequence[TableSpec]:
        """The learner's table."""
        return (self.learner.table,)

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        """Learn from the batch's new observations, series by series, in position order."""
        grouped: dict[Series, list[tuple[int, str | None, int]]] = defaultdict(list)
        for series, micros, rate, position in change_images(changes):
            grouped[series].append((micros, rate, position))
        if not grouped:
            return []
        keys = {"|".join(series): series for series in grouped}
        stored = context.state.get_many(keys)
        rows = self.learner.new_rows()
        for key, series in keys.items():
            state: OnlineState = (
                pickle.loads(stored[key]) if key in stored else self.learner.new_state()
            )
            applied_before = state.last_position
            changed = False
            for micros, rate, position in grouped[series]:
                if position <= applied_before:
                    continue  # applied by an earlier delivery
                changed = True
                state.last_position = position
                if rate is None or (state.last_time is not None and micros <= state.last_time):
                    state.ignored += 1  # the past is not unlearned
                    continue
                self.learner.observe(state, series, micros, float(rate), position, rows)
                state.last_time = micros
            if changed:
                context.state.put(key, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        write = self.learner.write(rows)
        return [write] if write is not None else []
