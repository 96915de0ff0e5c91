"""The one cattrs converter: models to plain data (JSON-ready) and back.

Decimals travel as strings (never floats), datetimes as ISO 8601 with an offset and come back as
UTC, currencies as their codes and pairs as ``"EUR/USD"``. Unknown keys are refused. A failure
raises `ConversionError` whose messages name the field path, e.g. ``$.after.rate``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import cattrs
from cattrs.preconf.json import make_converter as _make_json_converter
from cattrs.v import format_exception

from fxcortex.core.errors import ConversionError, InvalidValueError
from fxcortex.core.models import Currency, Pair, to_decimal, to_utc

T = TypeVar("T")


def _structure_decimal(value: Any, _: type[Decimal]) -> Decimal:
    if isinstance(value, float):
        raise InvalidValueError(f"decimal given as float {value!r}; send it as a string")
    return to_decimal(value, field="decimal")


def _structure_datetime(value: Any, _: type[datetime]) -> datetime:
    if isinstance(value, datetime):
        return to_utc(value)
    if not isinstance(value, str):
        raise InvalidValueError(f"datetime must be an ISO 8601 string, got {value!r}")
    return to_utc(datetime.fromisoformat(value))


def _structure_date(value: Any, _: type[date]) -> date:
    if not isinstance(value, str):
        raise InvalidValueError(f"date must be an ISO 8601 string, got {value!r}")
    return date.fromisoformat(value)


def _structure_currency(value: Any, _: type[Currency]) -> Currency:
    if not isinstance(value, str):
        raise InvalidValueError(f"currency must be a code string, got {value!r}")
    return Currency.of(value)


def _structure_pair(value: Any, _: type[Pair]) -> Pair:
    if not isinstance(value, str):
        raise InvalidValueError(f"pair must be a string like 'EUR/USD', got {value!r}")
    return Pair.parse(value)


_FIELD_MARK = "\x00"


def _format_exception(error: BaseException, target: type | None) -> str:
    # Our own validators already say what is wrong; cattrs' generic wording would hide it. A
    # validator that names its field gets it appended to the path (see `_move_field_to_path`).
    if isinstance(error, InvalidValueError):
        return f"{error}{_FIELD_MARK}{error.field}" if error.field else str(error)
    return format_exception(error, target)


def _move_field_to_path(message: str) -> str:
    # An attrs validator runs when its whole object is built, so cattrs reports the object's
    # path ("$.after"); the field the validator named completes it ("$.after.rate").
    text, mark, rest = message.partition(_FIELD_MARK)
    if not mark:
        return message
    field, _, path = rest.partition(" @ ")
    return f"{text} @ {path}.{field}" if path else f"{text} @ $.{field}"


def make_converter() -> cattrs.Converter:
    """A fresh converter with FX-Cortex's rules; most code should use `converter`."""
    made = _make_json_converter(forbid_extra_keys=True, prefer_attrib_converters=False)
    made.register_structure_hook(Decimal, _structure_decimal)
    made.register_unstructure_hook(Decimal, str)
    made.register_structure_hook(datetime, _structure_datetime)
    made.register_unstructure_hook(datetime, lambda value: value.isoformat())
    made.register_structure_hook(date, _structure_date)
    made.register_unstructure_hook(date, lambda value: value.isoformat())
    made.register_structure_hook(Currency, _structure_currency)
    made.register_unstructure_hook(Currency, str)
    made.register_structure_hook(Pair, _structure_pair)
    made.register_unstructure_hook(Pair, str)
    return made


converter = make_converter()


def structure(data: Any, target: type[T]) -> T:
    """Build a ``target`` from plain data; errors name every failing field path."""
    try:
        return converter.structure(data, target)
    except (cattrs.BaseValidationError, InvalidValueError) as error:
        if isinstance(error, cattrs.BaseValidationError):
            messages = [
                _move_field_to_path(message)
                for message in cattrs.transform_error(
                    error, path="$", format_exception=_format_exception
                )
            ]
        else:
            messages = [str(error)]
        raise ConversionError(getattr(target, "__name__", str(target)), messages) from error


def unstructure(value: Any) -> Any:
    """Plain data (str, int, dict, list, None) for a model."""
    return converter.unstructure(value)
