"""ML inference: an online forecaster of each series' next log return (river).

Per series (source, base, quote, kind) an online linear model on standardised inputs predicts the
next observation's log return from the last ``K = 5`` ones::

    x_t    = (r_t, r_{t-1}, …, r_{t-4})                     the latest log returns
    ŷ_t    = model(x_t)                                      prediction made at observation t
    r_{t+1} = ln(S_{t+1} / S_t)                              realised when t + 1 arrives
    error_t = r_{t+1} − ŷ_t
    then   model.learn(x_t, r_{t+1})

The model is river's ``StandardScaler | LinearRegression`` trained by SGD at rate 0.01 with
gradients clipped at 0.01, so a devaluation's return does not throw the weights off.

Each observation with ``K`` returns before it gets a row keyed by the series and ``observed_at``
(the instant the prediction was made) with ``horizon`` 1 (observation), ``predicted`` and
``model_version``; when the next observation arrives the same row is rewritten with ``realised``
and ``error``, so forecast quality is a query (``avg(abs(error))`` per pair and month).

Learning is in stream order and never undone: only an observation later than the series' latest
trains and predicts. A revision or delete of an observation already learned from is not unlearned
(an online model cannot); it is counted in the state and left to the raw tables. The model, the
last returns, the open prediction and the position of the last change applied live in the Cache
port, so a restarted analyzer continues instead of relearning, a re-delivered change does
nothing, and the same ordered stream gives the same predictions whatever the batch split.
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

NAME = "forecast"
LAGS = 5
LEARNING_RATE = 0.01
CLIP_GRADIENT = 0.01
MODEL_VERSION = f"river-linear-sgd{LEARNING_RATE}-clip{CLIP_GRADIENT}-lags{LAGS}-v1"
_FEATURES = tuple(f"lag{k}" for k in range(LAGS))

TABLE = TableSpec(
    name=NAME,
    description="One-step-ahead log-return forecasts per observation, with the realised error.",
    columns=(
        Column(name="source", type="LowCardinality(String)", description="source name"),
        Column(name="base", type="LowCardinality(String)", description="base currency"),
        Column(name="quote", type="LowCardinality(String)", description="quote currency"),
        Column(name="kind", type="LowCardinality(String)", description="mid, bid, ask, buy, sell"),
        Column(name="observed_at", type="DateTime64(6, 'UTC')", description="made at"),
        Column(name="horizon", type="UInt16", description="observations ahead"),
        Column(name="predicted", type="Float64", description="predicted next log return"),
        Column(name="realised", type="Nullable(Float64)", description="the actual one"),
        Column(name="error", type="Nullable(Float64)", description="realised - predicted"),
        Column(name="model_version", type="LowCardinality(String)", description="model"),
    ),
    key=("source", "base", "quote", "kind", "observed_at", "horizon"),
)


def new_model() -> Any:
    """A fresh forecaster: standardised lags into a linear model trained by SGD."""
    from river import linear_model, optim, preprocessing

    return preprocessing.StandardScaler() | linear_model.LinearRegression(
        optimizer=optim.SGD(LEARNING_RATE),
        intercept_lr=LEARNING_RATE,
        # A devaluation day's return is hundreds of times a normal one: unclipped, one such
        # gradient throws the weights off for months (the ECB's TRY history: 20x the error).
        clip_gradient=CLIP_GRADIENT,
    )


@attrs.define
class _SeriesModel(OnlineState):
    """One series' forecaster and what it needs to go on."""

    last_rate: float = 0.0
    returns: list[float] = attrs.Factory(list)  # newest first, at most LAGS
    open_time: int | None = None  # the observation the open prediction was made at
    open_prediction: float = 0.0


@attrs.frozen
class ForecastLearner:
    """The forecaster's side of `OnlineAnalyzer`."""

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
        """One new observation: close the open prediction, learn, and predict the next."""
        assert isinstance(state, _SeriesModel)
        if state.last_time is not None:
            realised = math.log(rate / state.last_rate)
            if state.open_time is not None:
                features = dict(zip(_FEATURES, state.returns, strict=True))
                rows.add(series, state.open_time, state.open_prediction, realised, position)
                state.model.learn_one(features, realised)
            state.returns = [realised, *state.returns][:LAGS]
        state.last_rate = rate
        if len(state.returns) == LAGS:
            features = dict(zip(_FEATURES, state.returns, strict=True))
            prediction = float(state.model.predict_one(features))
            state.open_time, state.open_prediction = micros, prediction
            rows.add(series, micros, prediction, None, position)
        else:
            state.open_time = None

    def write(self, rows: _Rows) -> TableWrite | None:
        """The collected rows, if any."""
        return rows.table_write() if rows.versions else None


def analyzer() -> OnlineAnalyzer:
    """The online forecaster."""
    return OnlineAnalyzer(
        name=NAME,
        description="Online linear forecast of the next log return per series (river)",
        learner=ForecastLearner(),
    )


@attrs.define
class _Rows:
    series: list[Series] = attrs.Factory(list)
    times: list[int] = attrs.Factory(list)
    predicted: list[float] = attrs.Factory(list)
    realised: list[float] = attrs.Factory(list)
    versions: list[int] = attrs.Factory(list)

    def add(
        self, series: Series, micros: int, predicted: float, realised: float | None, version: int
    ) -> None:
        self.series.append(series)
        self.times.append(micros)
        self.predicted.append(predicted)
        self.realised.append(math.nan if realised is None else realised)
        self.versions.append(version)

    def table_write(self) -> TableWrite:
        predicted = np.array(self.predicted)
        realised = np.array(self.realised)
        columns: dict[str, Any] = {
            name: [s[index] for s in self.series]
            for index, name in enumerate(("source", "base", "quote", "kind"))
        }
        columns["observed_at"] = np.array(self.times, dtype=np.int64)
        columns["horizon"] = [1] * len(self.versions)
        columns["predicted"] = predicted
        columns["realised"] = realised
        columns["error"] = realised - predicted
        columns["model_version"] = [MODEL_VERSION] * len(self.versions)
        return TableWrite(
            table=NAME,
            columns=columns,
            versions=self.versions,
            deleted=[False] * len(self.versions),
        )


@hookimpl
def fxcortex_register_analyzers(register: Callable[[OnlineAnalyzer], None]) -> None:
    """Register the online forecaster."""
    register(analyzer())
