"""Splitting a batch's images by series, column by column, against a plain dictionary."""

from __future__ import annotations

import attrs
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics import series as series_module
from fxcortex.analytics.series import column_members
from fxcortex.core import ChangeOp
from fxcortex.core.batch import ChangeRows, Series, row_from_change
from fxcortex.core.strategies import Operation, build_log, operations


def series_members(series_of: list[Series]) -> dict[Series, npt.NDArray[np.intp]] | None:
    """`column_members` of images given a series tuple each."""
    return column_members([list(column) for column in zip(*series_of, strict=True)])


# few values per column, so series repeat and columns are often constant, as in real batches
series_strategy = st.tuples(
    st.sampled_from(["ecb", "bonbast"]),
    st.sampled_from(["EUR", "USD", "IRR"]),
    st.sampled_from(["USD", "JPY", "EUR"]),
    st.sampled_from(["mid", "sell"]),
)


@given(st.lists(series_strategy, min_size=1, max_size=60))
def test_members_are_each_series_images_in_feed_order(series_of: list[Series]) -> None:
    expected: dict[Series, list[int]] = {}
    for index, series in enumerate(series_of):
        expected.setdefault(series, []).append(index)

    members = series_members(series_of)

    if len(expected) == 1:
        assert members is None
    else:
        assert members is not None
        assert list(members) == list(expected)  # series in order of first appearance
        assert {series: its.tolist() for series, its in members.items()} == expected


def test_series_differing_in_several_columns_stay_apart() -> None:
    # (a, b) and (b, a) across two varying columns must not share a combined code
    series_of: list[Series] = [
        ("s", "EUR", "USD", "mid"),
        ("s", "USD", "EUR", "mid"),
        ("t", "EUR", "USD", "mid"),
        ("s", "EUR", "USD", "mid"),
    ]
    members = series_members(series_of)
    assert members is not None
    assert {s: its.tolist() for s, its in members.items()} == {
        ("s", "EUR", "USD", "mid"): [0, 3],
        ("s", "USD", "EUR", "mid"): [1],
        ("t", "EUR", "USD", "mid"): [2],
    }


def test_many_distinct_values_in_every_column_do_not_overflow_the_codes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the combined code is a mixed-radix number: with a tiny limit it must renumber, not wrap
    monkeypatch.setattr(series_module, "_LARGEST_CODE", 8)
    series_of: list[Series] = [(f"s{n % 5}", f"B{n % 3}", f"Q{n % 7}", "mid") for n in range(40)]
    expected: dict[Series, list[int]] = {}
    for index, series in enumerate(series_of):
        expected.setdefault(series, []).append(index)
    members = series_members(series_of)
    assert members is not None
    assert {s: its.tolist() for s, its in members.items()} == expected


def test_no_images_no_series() -> None:
    assert column_members([[], [], [], []]) == {}


@given(operations(sources=("test", "other")), st.booleans())
def test_feed_rows_give_the_image_columns_of_their_changes(
    ops: list[Operation], snapshot: bool
) -> None:
    # Creates, revisions and deletes in any mix (and snapshot reads): read from the rows a
    # column at a time, the images come out as `images` orders them change by change.
    changes = build_log(ops).changes
    if snapshot:  # as a connector's snapshot delivers rows: reads
        changes = [
            attrs.evolve(change, op=ChangeOp.READ) if change.op is ChangeOp.CREATE else change
            for change in changes
        ]
    from_rows = series_module.image_columns(
        ChangeRows([row_from_change(change) for change in changes])
    )
    from_changes = series_module.image_columns(changes)
    if not changes:  # only deletes of rows that were never there
        assert from_rows is None and from_changes is None
        return
    assert from_rows is not None and from_changes is not None
    (row_series, row_times, row_texts, row_positions) = from_rows
    (series, times, texts, positions) = from_changes
    assert row_series == series
    assert row_times.tolist() == times.tolist()
    assert row_texts == texts
    assert row_positions.tolist() == positions.tolist()
