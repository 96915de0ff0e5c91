"""ML inference: an online anomaly model per series (river's HalfSpaceTrees), beside the z-score.

Each new log return ``r_t`` is scored, then learned from, by a per-series Half-Space Trees model
(6 trees of height 6, small enough for 20,000 events a second; a reference window of 250
observations; a fixed seed), on two features scaled into [0, 1] as the model requires::

    move   = clip(0.5 + r_t / (2 · 0.05), 0, 1)          a ±5 % return reaches the edges
    jump   = clip(|r_t − r_{t-1}| / 0.05, 0, 1)          how abruptly the move changed

    score  = HalfSpaceTrees.score_one(features)          in [0, 1], higher = more unusual
    flag   = 1 when score ≥ 0.8

Unlike the median/MAD z-score of ``anomalies`` (a fixed formula over the last 60 returns), this
model learns what is usual for each series from everything it has seen, in stream order: a
pegged currency learns that nothing moves, a volatile one that large moves are normal. Scores are
meaningful once the first window (250 returns) has been seen; the rows before carry
``warming_up`` = 1.

Online semantics (see `fxcortex.analytics.online`): only observations later than the series'
latest are learned from; the same ordered stream gives the same scores whatever the batch split;
the model lives in the Cache port, so a restarted analyzer continues.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np

from fxcortex.analytics.online import OnlineAnalyzer, OnlineState
from fxcortex.core import Column, TableSpec, TableWrite, hookimpl
from fxcortex.core.batch import Series

NAME = "online_anomaly"
TREES, HEIGHT, WINDOW, SEED = 6, 6, 250, 42
SCALE = 0.05
THRESHOLD = 0.8
MODEL_VERSION = f"river-hst-{TREES}x{HEIGHT}-w{WINDOW}-s{SEED}-v1"

TABLE = TableSpec(
    name=NAME,
    description="Half-Space Trees anomaly score of each log return, learned online per series.",
    columns=(
        Column(name="source", type="LowCardinality(String)", description="source name"),
        Column(name="base", type="LowCardinality(String)", description="base currency"),
        Column(name="quote", type="LowCardinality(String)", description="quote currency"),
        Column(name="kind", type="LowCardinality(String)", description="mid, bid, ask, buy, sell"),
        Column(name="observed_at", type="DateTime64(6, 'UTC')", description="the observation"),
        Column(name="log_return", type="Float64", description="ln(S_t / S_{t-1})"),
        Column(name="score", type="Float64", description="0..1, higher is more unusual"),
        Column(name="flag", type="UInt8", description=f"1 when score >= {THRESHOLD}"),
        Column(name="warming_up", type="UInt8", description=f"1 before {WINDOW} returns"),
        Column(name="model_version", type="LowCardinality(String)", description="model"),
    ),
    key=("source", "base", "quote", "kind", "observed_at"),
)


def new_model() -> Any:
    """A fresh Half-Space Trees model with the fixed parameters above."""
    from river import anomaly

    return anomaly.HalfSpaceTrees(
        n_trees=TREES, height=HEIGHT, window_size=WINDOW, seed=SEED, limits=None
    )


def features(log_return: float, previous: float) -> dict[str, float]:
    """The model's inputs, scaled into [0, 1]."""
    move = min(max(0.5 + log_return / (2 * SCALE), 0.0), 1.0)
    jump = min(abs(log_return - previous) / SCALE, 1.0)
    return {"move": move, "jump": jump}


@attrs.define
class _SeriesModel(OnlineState):
    last_rate: float = 0.0
    previous_return: float = 0.0
    seen: int = 0


@attrs.frozen
class AnomalyLearner:
    """The Half-Space Trees side of `OnlineAnalyzer`."""

    table: TableSpec = TABLE

    def new_state(self) -> _SeriesModel:
        """A fresh model for a series."""
        return _SeriesModel(model=new_model())

    def new_rows(self) -> _Rows:
        """An empty collector."""
        return _Rows()

    def observe(
        self,
        state: OnlineState,
        series: Series,
        micros: int,
        rate: float,
        position: int,
        rows: _Rows,
    ) -> None:
        """Score the new return, then learn from it."""
        assert isinstance(state, _SeriesModel)
        if state.last_time is not None:
            log_return = math.log(rate / state.last_rate)
            x = features(log_return, state.previous_return)
            score = float(state.model.score_one(x))
            state.model.learn_one(x)
            state.seen += 1
            rows.add(series, micros, log_return, score, state.seen <= WINDOW, position)
            state.previous_return = log_return
        state.last_rate = rate

    def write(self, rows: _Rows) -> TableWrite | None:
        """The collected rows, if any."""
        return rows.table_write() if rows.versions else None


@attrs.define
class _Rows:
    series: list[Series] = attrs.Factory(list)
    times: list[int] = attrs.Factory(list)
    returns: list[float] = attrs.Factory(list)
    scores: list[float] = attrs.Factory(list)
    warming: list[int] = attrs.Factory(list)
    versions: list[int] = attrs.Factory(list)

    def add(
        self,
        series: Series,
        micros: int,
        log_return: float,
        score: float,
        warming_up: bool,
        version: int,
    ) -> None:
        self.series.append(series)
        self.times.append(micros)
        self.returns.append(log_return)
        self.scores.append(score)
        self.warming.append(int(warming_up))
        self.versions.append(version)

    def table_write(self) -> TableWrite:
        scores = np.array(self.scores)
        columns: dict[str, Any] = {
            name: [s[index] for s in self.series]
            for index, name in enumerate(("source", "base", "quote", "kind"))
        }
        columns["observed_at"] = np.array(self.times, dtype=np.int64)
        columns["log_return"] = np.array(self.returns)
        columns["score"] = scores
        columns["flag"] = (scores >= THRESHOLD).astype(np.int64).tolist()
        columns["warming_up"] = self.warming
        columns["model_version"] = [MODEL_VERSION] * len(self.versions)
        return TableWrite(
            table=NAME,
            columns=columns,
            versions=self.versions,
            deleted=[False] * len(self.versions),
        )


def analyzer() -> OnlineAnalyzer:
    """The online anomaly model."""
    return OnlineAnalyzer(
        name=NAME,
        description="Half-Space Trees anomaly score of each log return, learned online (river)",
        learner=AnomalyLearner(),
    )


@hookimpl
def fxcortex_register_analyzers(register: Callable[[OnlineAnalyzer], None]) -> None:
    """Register the online anomaly model."""
    register(analyzer())
