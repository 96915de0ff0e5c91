"""Debezium's JSON envelopes of ``fxcortex.rates`` decoded into `RateChange` events.

What is read:

- ops ``c`` (insert), ``u`` (update: a revision), ``d`` (delete) and ``r`` (a snapshot read);
- tombstones (a null value after a delete), heartbeats (``{"ts_ms": ...}`` on
  ``__debezium-heartbeat.<prefix>``) and schema-change messages decode to nothing (None);
- payloads with an embedded schema (``{"schema": ..., "payload": ...}``) and without;
- the rate as a string (``decimal.handling.mode=string``), as precise base64 of the unscaled
  big-endian two's complement with the scale from the schema (``org.apache.kafka.connect.data
  .Decimal``), and as the ``VariableScaleDecimal`` struct ``{"scale": s, "value": base64}`` that
  precise mode gives a NUMERIC without a declared scale (ours);
- ``observed_at`` as a ``ZonedTimestamp`` ISO-8601 string (timestamptz).

The position rule: a change's position is its Kafka coordinates, ``partition << 40 | offset``
(`position_of`). Within a partition it grows with every message and a re-delivery carries the same
one — snapshot reads, which all share one LSN, still get distinct offsets, and a transaction
committed later sorts later even when its LSNs are lower (Debezium publishes in commit order, so
``source.lsn`` alone is not monotonic). The message key is the currency pair, so every change of a
pair lands in one partition and per-pair order is the partition's order. Positions of different
partitions are not ordered against each other; nothing compares them, since versions and analyzer
state are kept per pair. Re-creating the topic resets offsets and so needs a full recompute.

Anything else raises `DecodeError`, naming topic, partition, offset and the reason.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fxcortex.core import FxCortexError
from fxcortex.core.batch import to_micros
from fxcortex.core.models import ChangeOp, Pair, Quote, QuoteKind, RateChange

OFFSET_BITS = 40
"""Offsets below 2**40 (a trillion messages per partition) keep positions of partitions apart."""
_DECIMAL_SCHEMA = "org.apache.kafka.connect.data.Decimal"
_OPS = {op.value: op for op in ChangeOp}


class DecodeError(FxCortexError):
    """A message is not a Debezium change of ``fxcortex.rates``; says where it is and why."""

    def __init__(self, topic: str, partition: int, offset: int, reason: str) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.reason = reason
        super().__init__(f"{topic}[{partition}]@{offset}: {reason}")


class _Bad(Exception):
    """Internal: the reason a message is malformed, before its coordinates are attached."""


def position_of(partition: int, offset: int) -> int:
    """The position of the message at ``offset`` of ``partition`` (see the module's rule)."""
    if partition < 0 or not 0 <= offset < 1 << OFFSET_BITS:
        raise ValueError(f"no position for partition {partition}, offset {offset}")
    return partition << OFFSET_BITS | offset


def _field_schemas(schema: Any, image: str) -> dict[str, Mapping[str, Any]]:
    """The column schemas of the ``before``/``after`` image in an embedded envelope schema."""
    if not isinstance(schema, Mapping):
        return {}
    for field in schema.get("fields") or ():
        if isinstance(field, Mapping) and field.get("field") == image:
            return {
                str(column.get("field")): column
                for column in field.get("fields") or ()
                if isinstance(column, Mapping)
            }
    return {}


def _unscaled(text: str) -> int:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _Bad(f"rate {text!r} is neither a number nor base64") from None
    if not raw:
        raise _Bad("rate is empty base64")
    return int.from_bytes(raw, "big", signed=True)


def _scaled(unscaled: int, scale: Any) -> Decimal:
    if type(scale) is not int or abs(scale) > 1000:
        raise _Bad(f"decimal scale {scale!r} is not a whole number")
    return Decimal(unscaled).scaleb(-scale)


def _rate(value: Any, schema: Mapping[str, Any] | None) -> Decimal:
    if isinstance(value, Mapping):  # VariableScaleDecimal: NUMERIC without a scale, precise mode
        encoded = value.get("value")
        if not isinstance(encoded, str):
            raise _Bad("variable-scale rate has no base64 value")
        return _scaled(_unscaled(encoded), value.get("scale"))
    if not isinstance(value, str):
        raise _Bad(f"rate {value!r} is not a string")
    if schema is not None and schema.get("name") == _DECIMAL_SCHEMA:
        parameters = schema.get("parameters") or {}
        try:
            scale = int(str(parameters.get("scale")))
        except (TypeError, ValueError):
            raise _Bad(f"decimal schema without a scale: {parameters!r}") from None
        return _scaled(_unscaled(value), scale)
    try:
        return Decimal(value)
    except InvalidOperation:
        raise _Bad(f"rate {value!r} is not a number") from None


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise _Bad(f"observed_at {value!r} is not a ZonedTimestamp string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad(f"observed_at {value!r} is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        raise _Bad(f"observed_at {value!r} has no zone")
    return moment.astimezone(UTC)


def _text(image: Mapping[str, Any], column: str) -> str:
    value = image.get(column)
    if not isinstance(value, str):
        raise _Bad(f"column {column!r} is {value!r}, not text")
    return value


def _quote(image: Any, columns: Mapping[str, Mapping[str, Any]], which: str) -> Quote | None:
    if image is None:
        return None
    if not isinstance(image, Mapping):
        raise _Bad(f"{which} image is not an object")
    try:
        return Quote(
            pair=Pair.of(_text(image, "base"), _text(image, "quote")),
            rate=_rate(image.get("rate"), columns.get("rate")),
            observed_at=_timestamp(image.get("observed_at")),
            source=_text(image, "source"),
            kind=QuoteKind(_text(image, "kind")),
        )
    except _Bad as bad:
        raise _Bad(f"{which} image: {bad}") from None
    except (FxCortexError, ValueError) as error:
        raise _Bad(f"{which} image: {error}") from None


def _payload(document: Any) -> tuple[Any, Any]:
    """(payload, schema): an envelope with an embedded schema, or a bare payload."""
    if isinstance(document, Mapping) and set(document) == {"schema", "payload"}:
        return document["payload"], document["schema"]
    return document, None


def _change(document: Any, position: int) -> RateChange | None:
    payload, schema = _payload(document)
    if payload is None:  # a tombstone in an embedded-schema envelope
        return None
    if not isinstance(payload, Mapping):
        raise _Bad(f"payload is a {type(payload).__name__}, not an object")
    if "op" not in payload:
        if set(payload) <= {"ts_ms"} and payload:
            return None  # a heartbeat
        if "ddl" in payload or "tableChanges" in payload:
            return None  # a schema-change message
        raise _Bad("payload has no op")
    op = _OPS.get(payload["op"]) if isinstance(payload["op"], str) else None
    if op is None:
        raise _Bad(f"op {payload['op']!r} is not one of c, u, d, r")
    source = payload.get("source")
    if not isinstance(source, Mapping):
        raise _Bad("payload has no source block")
    if (source.get("schema"), source.get("table")) != ("fxcortex", "rates"):
        raise _Bad(
            f"change of {source.get('schema')!r}.{source.get('table')!r}, not fxcortex.rates"
        )
    ts_ms = source.get("ts_ms")
    if type(ts_ms) is not int or not 0 <= ts_ms < 253_402_300_800_000:
        raise _Bad(f"source.ts_ms {ts_ms!r} is not a commit time in milliseconds")
    before = _quote(payload.get("before"), _field_schemas(schema, "before"), "before")
    after = _quote(payload.get("after"), _field_schemas(schema, "after"), "after")
    try:
        return RateChange(
            op=op,
            position=position,
            committed_at=datetime.fromtimestamp(ts_ms / 1000, UTC),
            before=before if op in (ChangeOp.UPDATE, ChangeOp.DELETE) else None,
            after=after,
        )
    except (FxCortexError, ValueError) as error:
        raise _Bad(str(error)) from None


def decode(value: bytes | None, *, topic: str, partition: int, offset: int) -> RateChange | None:
    """The change a message carries, or None for a tombstone, heartbeat or schema change.

    Raises `DecodeError` for anything else; never any other exception.
    """
    if value is None or value == b"":
        return None
    try:
        position = position_of(partition, offset)
    except ValueError as error:
        raise DecodeError(topic, partition, offset, str(error)) from None
    try:
        document = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise DecodeError(topic, partition, offset, f"not JSON: {error}") from None
    try:
        return _change(document, position)
    except _Bad as bad:
        raise DecodeError(topic, partition, offset, str(bad)) from None
    except RecursionError:
        raise DecodeError(topic, partition, offset, "nested too deeply") from None


# ----------------------------------------------------------------------------- rows
# The analyzer reads changes as flat rows (`fxcortex.core.batch.ChangeRows`); building a
# RateChange and two Quotes per message only to take them apart again cost more than the
# analytics. `decode_row` reads the connector's usual message — a bare payload with the rate as
# a string — straight into a row, checking everything the models check; any other shape goes
# through `decode`, so both paths accept and refuse exactly the same messages.

_fast_loads: Callable[[bytes], Any]
try:  # twice as fast as json on these envelopes; in the distributed extra
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - a lean install
    _fast_loads = json.loads

_VALID_SERIES: set[tuple[str, str, str, str]] = set()
_ZERO = Decimal(0)
_ABSENT = (None, None, None, None, None, None)


def _valid_series(source: Any, base: Any, quote: Any, kind: Any) -> bool:
    series = (source, base, quote, kind)
    try:
        if series in _VALID_SERIES:  # only ever holds series of four checked strings
            return True
    except TypeError:  # an unhashable part (a list, an object): not a series
        return False
    if not all(type(part) is str for part in series) or not source:
        return False
    try:
        Pair.of(base, quote)
        QuoteKind(kind)
    except (FxCortexError, ValueError):
        return False
    if len(_VALID_SERIES) < 100_000:  # bounded: a flood of odd names cannot grow it forever
        _VALID_SERIES.add(series)
    return True


def _image_row(image: Any) -> tuple[Any, ...] | None:
    """The six row columns of an image, or None when it needs the full decoder's verdict."""
    if type(image) is not dict:
        return None
    source, base, quote = image.get("source"), image.get("base"), image.get("quote")
    kind, observed, rate = image.get("kind"), image.get("observed_at"), image.get("rate")
    if not _valid_series(source, base, quote, kind) or type(observed) is not str:
        return None
    if type(rate) is not str:
        return None
    try:
        moment = datetime.fromisoformat(observed)
        value = Decimal(rate)
    except (ValueError, InvalidOperation):
        return None
    if moment.tzinfo is None or not value.is_finite() or value <= _ZERO:
        return None
    micros = to_micros(moment)
    return (source, base, quote, kind, micros, str(value))


def row_of(change: RateChange) -> tuple[Any, ...]:
    """A decoded change as a row laid out as `fxcortex.core.batch.ROW_COLUMNS`."""

    def image(quote: Quote | None) -> tuple[Any, ...]:
        if quote is None:
            return _ABSENT
        return (
            quote.source,
            quote.pair.base.code,
            quote.pair.quote.code,
            quote.kind.value,
            to_micros(quote.observed_at),
            str(quote.rate),
        )

    committed = to_micros(change.committed_at)
    return (
        change.position,
        change.op.value,
        committed,
        *image(change.before),
        *image(change.after),
    )


def decode_row(
    value: bytes | None, *, topic: str, partition: int, offset: int
) -> tuple[Any, ...] | None:
    """`decode`, as a row laid out as `fxcortex.core.batch.ROW_COLUMNS` (None: nothing to apply)."""
    if not value:
        return None
    try:
        document = _fast_loads(value)
    except (ValueError, RecursionError):  # orjson's JSONDecodeError is a ValueError too
        document = None  # the full decoder says why
    row = _fast_row(document, partition, offset) if type(document) is dict else None
    if row is not None:
        return row
    change = decode(value, topic=topic, partition=partition, offset=offset)
    return None if change is None else row_of(change)


def _fast_row(document: dict[str, Any], partition: int, offset: int) -> tuple[Any, ...] | None:
    op = document.get("op")
    source = document.get("source")
    if type(op) is not str or op not in _OPS or type(source) is not dict or "schema" in document:
        return None
    if source.get("schema") != "fxcortex" or source.get("table") != "rates":
        return None
    ts_ms = source.get("ts_ms")
    if type(ts_ms) is not int or not 0 <= ts_ms < 253_402_300_800_000:
        return None
    if not 0 <= offset < 1 << OFFSET_BITS or partition < 0:
        return None
    before, after = document.get("before"), document.get("after")
    after_row = _ABSENT if after is None else _image_row(after)
    if op in ("u", "d"):
        before_row = _ABSENT if before is None else _image_row(before)
    elif before is None:
        before_row = _ABSENT
    else:
        return None  # a create or read with a before image: the full decoder checks and drops it
    if after_row is None or before_row is None:
        return None
    has_before, has_after = before_row[0] is not None, after_row[0] is not None
    if op == "u":
        shape_ok = has_after and has_before
    elif op == "d":
        shape_ok = has_before and not has_after
    else:  # a create or a snapshot read
        shape_ok = has_after and not has_before
    if not shape_ok:
        return None  # the full decoder names what is wrong
    return (partition << OFFSET_BITS | offset, op, ts_ms * 1000, *before_row, *after_row)
