"""Table declarations and column-oriented writes refuse shapes the analytics stores cannot hold."""

from __future__ import annotations

import pytest

from fxcortex.core import Column, InvalidValueError, TableSpec, TableWrite

OPEN = Column(name="open", type="Decimal(38, 18)")
BUCKET = Column(name="bucket", type="DateTime64(6, 'UTC')")
PAIR = Column(name="pair", type="LowCardinality(String)")


def spec(**changes: object) -> TableSpec:
    fields: dict[str, object] = {
        "name": "bars",
        "columns": [PAIR, BUCKET, OPEN],
        "key": ["pair", "bucket"],
    }
    fields.update(changes)
    return TableSpec(**fields)  # type: ignore[arg-type]


def write(
    table: str = "bars", rows: int = 2, first_version: int = 1, **extra: list[object]
) -> TableWrite:
    columns: dict[str, list[object]] = {
        "pair": [f"EUR/USD#{first_version + i}" for i in range(rows)],
        "bucket": [first_version + i for i in range(rows)],
        "open": [f"1.{first_version + i}" for i in range(rows)],
    }
    columns.update(extra)
    return TableWrite(
        table=table,
        columns=columns,
        versions=list(range(first_version, first_version + rows)),
        deleted=[False] * rows,
    )


def test_a_table_spec_keeps_its_columns_in_order() -> None:
    made = spec()

    assert made.column_names == ("pair", "bucket", "open")
    assert made.key == ("pair", "bucket")
    assert isinstance(made.columns, tuple)


def test_a_table_spec_refuses_duplicate_columns() -> None:
    with pytest.raises(InvalidValueError, match="table bars: a column name appears twice"):
        spec(columns=[PAIR, BUCKET, OPEN, Column(name="open", type="Float64")])


def test_a_table_spec_refuses_key_columns_that_are_not_columns() -> None:
    with pytest.raises(InvalidValueError, match=r"key columns \['resolution'\] are not columns"):
        spec(key=["pair", "resolution"])


def test_a_table_spec_needs_a_key() -> None:
    with pytest.raises(InvalidValueError, match="table bars: key columns"):
        spec(key=[])


@pytest.mark.parametrize("name", ["_version", "_bars", "Bars", "bars-daily", "1bars", ""])
def test_a_table_name_must_be_lower_snake_case_not_starting_with_underscore(name: str) -> None:
    with pytest.raises(InvalidValueError, match=r"name: .* must be lower_snake_case"):
        spec(name=name)


@pytest.mark.parametrize("name", ["_deleted", "_version", "_open", "Open", "open price"])
def test_a_column_name_must_be_lower_snake_case_not_starting_with_underscore(name: str) -> None:
    # Names starting with '_' are the store's own (_version, _deleted).
    with pytest.raises(InvalidValueError, match="must be lower_snake_case and not start with '_'"):
        Column(name=name, type="String")


@pytest.mark.parametrize(
    ("columns", "versions", "deleted"),
    [
        ({"a": [1, 2], "b": [1]}, [1, 2], [False, False]),
        ({"a": [1, 2]}, [1], [False, False]),
        ({"a": [1, 2]}, [1, 2], [False]),
        ({}, [1, 2], [False]),
    ],
    ids=["columns", "versions", "deleted", "no-columns"],
)
def test_a_table_write_refuses_unequal_column_lengths(
    columns: dict[str, list[object]], versions: list[int], deleted: list[bool]
) -> None:
    with pytest.raises(InvalidValueError, match="write to t: columns have unequal lengths"):
        TableWrite(table="t", columns=columns, versions=versions, deleted=deleted)


def test_the_length_of_a_write_is_its_row_count() -> None:
    assert len(write(rows=3)) == 3
    assert len(TableWrite(table="t", columns={}, versions=[], deleted=[])) == 0


def test_a_write_matches_its_spec_only_with_the_same_columns_in_the_same_order() -> None:
    write().check_against(spec())
    reordered = TableWrite(
        table="bars",
        columns={"bucket": [1], "pair": ["EUR/USD"], "open": ["1.1"]},
        versions=[1],
        deleted=[False],
    )

    with pytest.raises(InvalidValueError, match="differ from the table's"):
        reordered.check_against(spec())
    with pytest.raises(InvalidValueError, match="differ from the table's"):
        write(close=["1", "2"]).check_against(spec())


def test_merge_concatenates_the_writes_of_each_table_in_first_seen_order() -> None:
    bars_1 = write(rows=2, first_version=1)
    other = write("ticks", rows=1)
    bars_2 = write(rows=3, first_version=10)

    merged = TableWrite.merge([bars_1, other, bars_2])

    assert [m.table for m in merged] == ["bars", "ticks"]
    bars = merged[0]
    assert bars.versions == [1, 2, 10, 11, 12]
    assert bars.deleted == [False] * 5
    assert bars.columns["bucket"] == [1, 2, 10, 11, 12]
    assert bars.columns["open"] == ["1.1", "1.2", "1.10", "1.11", "1.12"]
    assert merged[1].columns == other.columns


def test_merge_leaves_its_inputs_unchanged() -> None:
    first, second = write(rows=2), write(rows=1, first_version=5)

    TableWrite.merge([first, second])

    assert first.versions == [1, 2]
    assert first.columns["bucket"] == [1, 2]
    assert len(second) == 1


def test_merge_keeps_deleted_flags_aligned_with_their_rows() -> None:
    kept = write(rows=1)
    withdrawn = TableWrite(
        table="bars",
        columns={"pair": ["EUR/GBP"], "bucket": [9], "open": [None]},
        versions=[9],
        deleted=[True],
    )

    (merged,) = TableWrite.merge([kept, withdrawn])

    assert list(zip(merged.columns["pair"], merged.deleted, strict=True)) == [
        ("EUR/USD#1", False),
        ("EUR/GBP", True),
    ]


def test_merge_of_nothing_is_nothing() -> None:
    assert TableWrite.merge([]) == []


@pytest.mark.parametrize(
    "columns",
    [
        {"pair": ["EUR/JPY"], "bucket": [3]},
        {"pair": ["EUR/JPY"], "bucket": [3], "open": ["1.3"], "close": ["1.4"]},
    ],
    ids=["a-column-missing", "an-extra-column"],
)
def test_merging_writes_to_one_table_with_different_columns_is_refused(
    columns: dict[str, list[object]],
) -> None:
    # Otherwise the merged write has columns of unequal lengths (which TableWrite itself refuses,
    # and which makes a store pair one row's values with another's) or fails with a KeyError.
    odd = TableWrite(table="bars", columns=columns, versions=[3], deleted=[False])

    with pytest.raises(InvalidValueError, match="bars"):
        TableWrite.merge([write(rows=2), odd])
