"""How an analytic declares its ClickHouse tables and hands rows to the analytics store.

An analytic declares each table once (`TableSpec`): its columns with ClickHouse types and the key
that identifies a row. The store adds two columns of its own, a version (the change-feed position
that produced the row) and a deleted flag, and keeps the newest version of each key, so a batch
that is delivered twice changes nothing and a row can be withdrawn when its inputs are deleted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from fxcortex.core.errors import InvalidValueError

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
VERSION_COLUMN = "_version"
DELETED_COLUMN = "_deleted"


def _identifier(_: Any, attribute: attrs.Attribute[str], value: str) -> None:
    if not _IDENTIFIER.match(value) or value.startswith("_"):
        raise InvalidValueError(
            f"{attribute.name}: {value!r} must be lower_snake_case and not start with '_'"
        )


@attrs.frozen(kw_only=True)
class Column:
    """One column: a name and its ClickHouse type, e.g. ``Column(name="n", type="UInt32")``."""

    name: str = attrs.field(validator=_identifier)
    type: str
    description: str = ""


def _column_tuple(columns: Iterable[Column]) -> tuple[Column, ...]:
    return tuple(columns)


def _name_tuple(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(names)


@attrs.frozen(kw_only=True)
class TableSpec:
    """A table an analytic writes: columns, the key columns that identify a row, and prose."""

    name: str = attrs.field(validator=_identifier)
    columns: tuple[Column, ...] = attrs.field(converter=_column_tuple)
    key: tuple[str, ...] = attrs.field(converter=_name_tuple)
    description: str = ""

    def __attrs_post_init__(self) -> None:
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names):
            raise InvalidValueError(f"table {self.name}: a column name appears twice")
        missing = [k for k in self.key if k not in names]
        if not self.key or missing:
            raise InvalidValueError(
                f"table {self.name}: key columns {missing or '()'} are not columns"
            )

    @property
    def column_names(self) -> tuple[str, ...]:
        """The declared columns, in order (without the store's own columns)."""
        return tuple(column.name for column in self.columns)


@attrs.define(kw_only=True)
class TableWrite:
    """Rows for one table, column-oriented so stores can insert them in bulk.

    ``columns`` maps every declared column to a list of equal length, or to a one-dimensional
    numpy array (analytics computed in numpy hand them over without building a Python object per
    row): a float array marks a missing value with NaN, and a ``DateTime64`` column given as an
    integer array holds µs since the epoch. ``versions`` gives each row's
    version (the feed position of the newest change it reflects) and ``deleted`` marks rows whose
    key
    no longer has any inputs. The values of a deleted row other than its key are ignored.
    """

    table: str
    columns: dict[str, Any]
    versions: list[int]
    deleted: list[bool]

    def __attrs_post_init__(self) -> None:
        lengths = {len(values) for values in self.columns.values()}
        lengths |= {len(self.versions), len(self.deleted)}
        if len(lengths) > 1:
            raise InvalidValueError(
                f"write to {self.table}: columns have unequal lengths {lengths}"
            )

    def __len__(self) -> int:
        return len(self.versions)

    def check_against(self, spec: TableSpec) -> None:
        """Raise unless this write has exactly the spec's columns."""
        if tuple(self.columns) != spec.column_names:
            raise InvalidValueError(
                f"write to {spec.name}: columns {tuple(self.columns)} differ from the table's "
                f"{spec.column_names}"
            )

    @staticmethod
    def merge(writes: Sequence[TableWrite]) -> list[TableWrite]:
        """One write per table, in first-seen table order; the inputs are left unchanged.

        A table written once keeps that write as it is, numpy columns included: turning them into
        lists here cost the analyzer a Python object per value, which the stores then converted
        back. Columns of several writes are joined: numpy arrays into one array, else as a list.
        """
        by_table: dict[str, list[TableWrite]] = {}
        for write in writes:
            by_table.setdefault(write.table, []).append(write)
        merged = []
        for table, parts in by_table.items():
            if len(parts) == 1:
                merged.append(parts[0])
                continue
            names = parts[0].columns.keys()
            for part in parts[1:]:
                if part.columns.keys() != names:
                    raise InvalidValueError(
                        f"writes to {table} disagree on columns: {sorted(names)} and "
                        f"{sorted(part.columns)}"
                    )
            merged.append(
                TableWrite(
                    table=table,
                    columns={name: _joined([p.columns[name] for p in parts]) for name in names},
                    versions=[v for part in parts for v in part.versions],
                    deleted=[d for part in parts for d in part.deleted],
                )
            )
        return merged


def _joined(columns: Sequence[Any]) -> Any:
    """Columns one after the other: one numpy array if all are arrays, else a new list."""
    if all(hasattr(values, "dtype") for values in columns):
        import numpy  # only ever here with numpy arrays in hand; core does not depend on it

        return numpy.concatenate(columns)
    joined: list[Any] = []
    for values in columns:
        tolist = getattr(values, "tolist", None)  # a numpy array's plain values, NaN kept
        joined.extend(tolist() if tolist is not None else values)
    return joined
