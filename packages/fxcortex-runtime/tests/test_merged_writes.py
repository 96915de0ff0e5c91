"""Writes of numpy columns reach the analytics store as arrays, merged or not."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from fxcortex.core import Column, TableSpec, TableWrite
from fxcortex.runtime.adapters.chdb import ChdbAnalyticsStore

SPEC = TableSpec(
    name="scores",
    description="a numpy-computed table",
    columns=(
        Column(name="pair", type="LowCardinality(String)", description="pair"),
        Column(name="observed_at", type="DateTime64(6, 'UTC')", description="instant"),
        Column(name="score", type="Nullable(Float64)", description="NaN when undefined"),
    ),
    key=("pair", "observed_at"),
)


def scores(pair: str, micros: list[int], values: list[float], first_version: int) -> TableWrite:
    return TableWrite(
        table="scores",
        columns={
            "pair": [pair] * len(micros),
            "observed_at": np.array(micros, dtype=np.int64),
            "score": np.array(values, dtype=np.float64),
        },
        versions=list(range(first_version, first_version + len(micros))),
        deleted=[False] * len(micros),
    )


def test_a_table_written_once_keeps_its_write_and_arrays() -> None:
    only = scores("EUR/USD", [1, 2], [0.5, math.nan], 1)
    other = TableWrite(table="other", columns={"x": [1]}, versions=[1], deleted=[False])

    merged = TableWrite.merge([only, other])

    assert merged[0] is only
    assert merged[0].columns["score"] is only.columns["score"]


def test_arrays_of_several_writes_join_into_one_array_nan_kept() -> None:
    first = scores("EUR/USD", [1, 2], [0.5, math.nan], 1)
    second = scores("USD/IRR", [3], [2.5], 10)

    (merged,) = TableWrite.merge([first, second])

    assert isinstance(merged.columns["score"], np.ndarray)
    assert merged.columns["observed_at"].dtype == np.int64
    assert merged.columns["observed_at"].tolist() == [1, 2, 3]
    assert merged.columns["score"][0] == 0.5 and math.isnan(merged.columns["score"][1])
    assert merged.columns["pair"] == ["EUR/USD", "EUR/USD", "USD/IRR"]
    assert merged.versions == [1, 2, 10]
    assert first.columns["score"].tolist()[0] == 0.5 and len(first) == 2  # inputs unchanged


def test_an_array_joined_with_a_list_becomes_a_list_of_plain_values() -> None:
    first = scores("EUR/USD", [1], [0.5], 1)
    listed = TableWrite(
        table="scores",
        columns={"pair": ["GBP/USD"], "observed_at": [7], "score": [1.5]},
        versions=[2],
        deleted=[False],
    )

    (merged,) = TableWrite.merge([first, listed])

    assert merged.columns["score"] == [0.5, 1.5]
    assert all(type(value) is float for value in merged.columns["score"])
    assert merged.columns["observed_at"] == [1, 7]


def test_merged_arrays_reach_chdb_with_nan_as_null(tmp_path: Path) -> None:
    store = ChdbAnalyticsStore(tmp_path / "analytics")
    try:
        store.ensure_tables([SPEC])
        store.write(
            TableWrite.merge(
                [scores("EUR/USD", [1_000_000], [math.nan], 1), scores("USD/IRR", [5], [2.5], 2)]
            )
        )
        result = store.query(
            "SELECT pair, toUnixTimestamp64Micro(observed_at), score FROM scores ORDER BY pair"
        )
    finally:
        store.close()
    assert result.rows == [("EUR/USD", 1_000_000, None), ("USD/IRR", 5, 2.5)]


def test_a_key_written_twice_in_one_insert_reads_as_its_newest_version(tmp_path: Path) -> None:
    # Inserts do not collapse their block by key (optimize_on_insert = 0): the view's FINAL
    # must still show the newest version of a key written twice in one write, and the later
    # row on a tie, as a collapsed block would.
    store = ChdbAnalyticsStore(tmp_path / "analytics")
    try:
        store.ensure_tables([SPEC])
        store.write(
            [
                TableWrite(
                    table="scores",
                    columns={
                        "pair": ["EUR/USD", "EUR/USD", "USD/IRR", "USD/IRR", "GBP/USD", "GBP/USD"],
                        "observed_at": np.array([1, 1, 2, 2, 3, 3], dtype=np.int64),
                        "score": np.array([9.0, 1.0, 5.0, 6.0, 7.0, 7.5]),
                    },
                    versions=[8, 3, 4, 4, 5, 6],
                    deleted=[False, False, False, False, False, True],
                )
            ]
        )
        result = store.query("SELECT pair, score FROM scores ORDER BY pair")
    finally:
        store.close()
    assert result.rows == [("EUR/USD", 9.0), ("USD/IRR", 6.0)]
