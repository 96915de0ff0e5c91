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
from typing import Any, TypeVar

from fxcortex.core import FxCortexError
from fxcortex.core.batch import row_from_change, to_micros
from fxcortex.core.models import ChangeOp, Pair, Quote, QuoteKind, RateChange

OFFSET_BITS = 40
"""Offsets below 2**40 (a trillion messages per partition) keep positions of partitions apart."""
_DECIMAL_SCHEMA = "org.apache.kafka.connect.data.Decimal"
_OPS = {op.value: op for op in ChangeOp}
_K = TypeVar("_K")
_V = TypeVar("_V")


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
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:30+01:00: the instant is before year 1 in UTC
        raise _Bad(f"observed_at {value!r} is out of range in UTC") from None


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
    # ValueError covers JSONDecodeError, UnicodeDecodeError and a number too long to convert
    # (over sys.get_int_max_str_digits() digits).
    except (ValueError, RecursionError) as error:
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
#
# That fast path is what the analyzer pays per event, so it does as few Python operations as it
# can: msgspec reads the message into typed structs (`_Payload`), and then a handful of dict
# lookups finish it. What repeats from message to message — a series' (source, base, quote,
# kind), observed_at texts (a tick's time is shared by every pair, a revision repeats its row's),
# rate texts — is checked once, by the full decoder's rules, and then looked up in a cache of
# checked values. A value the caches do not hold is checked and added; anything the fast path
# does not expect (a missing key, a list or an object where text belongs, an unusual timestamp)
# sends the message to `decode`, which accepts it or names what is wrong. The caches only ever
# hold texts that passed those checks, so a hit is always a value `decode` takes.

try:  # in the distributed extra, as the Kafka client is: without it every message is `decode`d
    import msgspec
except ImportError:  # pragma: no cover - a lean install, which has no Kafka feed either
    msgspec = None  # type: ignore[assignment]

_ZERO = Decimal(0)
_ABSENT = (None, None, None, None, None, None)
_OFFSET_END = 1 << OFFSET_BITS
_TS_MS_END = 2**32 * 1000
"""Commit times before 2**32 s (year 2106) take the fast path: there ``ts_ms * 1000`` is exactly
the µs of `decode`'s ``datetime.fromtimestamp(ts_ms / 1000)``, the float's error staying under
half a µs; later ones (never a real commit time) go through `decode`, so both say the same."""

_SHAPES: dict[str, tuple[str, bool, bool]] = {
    "c": ("c", False, True),
    "r": ("r", False, True),
    "u": ("u", True, True),
    "d": ("d", True, False),
}
"""op → (the op, whether it has a before image, whether it has an after image); a create or a
read with a before image is valid but rare (`decode` checks that image, then drops it)."""

_CACHE_LIMIT = 65_536
"""Entries per cache: every series and a working set of times and rates fit. A full cache is
emptied rather than kept in LRU order, which would cost on every hit; a flood of distinct values
(a history load) then only refills it, and memory stays bounded."""
_SERIES: dict[tuple[Any, ...], tuple[str, str, str, str]] = {}
"""Checked (source, base, quote, kind) → itself: every row of a series holds the same four
strings, whose hashes are then computed once for all the analytics' grouping, not per message."""
_MICROS: dict[str, int] = {}
"""A checked UTC observed_at text → µs since the epoch."""
_RATES: dict[str, str] = {}
"""A checked rate text → its row text, ``str(Decimal(text))`` as `row_from_change` has it."""


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    """``value``, kept in ``cache`` under ``key`` (emptying the cache first when it is full)."""
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def _checked_series(key: tuple[Any, ...]) -> tuple[str, str, str, str] | None:
    """``key`` if `decode` takes it as a series (text, a known pair, a kind), remembered."""
    source, base, quote, kind = key
    if type(source) is not str or type(base) is not str or type(quote) is not str:
        return None
    if type(kind) is not str or not source:
        return None
    try:
        Pair.of(base, quote)
        QuoteKind(kind)
    except (FxCortexError, ValueError):
        return None
    return _remember(_SERIES, key, (source, base, quote, kind))


def _checked_micros(observed: Any) -> int | None:
    """The µs of an observed_at `decode` takes, remembered; None for anything else.

    Debezium writes a timestamptz in UTC (``...Z``), the one case kept here; an offset goes
    through `decode`. ``datetime.fromisoformat`` is C: a hand-written parser of the fixed format
    in Python measured slower than it, and the cache spares both on a repeated time.
    """
    if type(observed) is not str:
        return None
    try:
        moment = datetime.fromisoformat(observed)
    except ValueError:
        return None
    if moment.tzinfo is not UTC:  # naive (refused) or another zone: `decode` says which
        return None
    return _remember(_MICROS, observed, to_micros(moment))


def _checked_rate(rate: Any) -> str | None:
    """The row's text of a rate `decode` takes (a positive finite number), remembered."""
    if type(rate) is not str:
        return None
    try:
        value = Decimal(rate)
    except (ValueError, InvalidOperation):
        return None
    if not value.is_finite() or value <= _ZERO:
        return None
    return _remember(_RATES, rate, str(value))


def _image_row(image: Any) -> tuple[Any, ...] | None:
    """The six row columns of an image, or None when it needs the full decoder's verdict."""
    if image is None:
        return None
    key = (image.source, image.base, image.quote, image.kind)
    observed, rate = image.observed_at, image.rate
    series, micros, text = _SERIES.get(key), _MICROS.get(observed), _RATES.get(rate)
    if series is None and (series := _checked_series(key)) is None:
        return None
    if micros is None and (micros := _checked_micros(observed)) is None:
        return None
    if text is None and (text := _checked_rate(rate)) is None:
        return None
    return (*series, micros, text)


def decode_row(
    value: bytes | None, *, topic: str, partition: int, offset: int
) -> tuple[Any, ...] | None:
    """`decode`, as a row laid out as `fxcortex.core.batch.ROW_COLUMNS` (None: nothing to apply)."""
    if not value:
        return None
    if _read_payload is not None and partition >= 0 and 0 <= offset < _OFFSET_END:
        try:
            if not value.isascii():
                # msgspec checks the UTF-8 of what it reads, not of the fields it skips; the
                # standard library refuses a message with any invalid byte, so check it all.
                value.decode()
            payload = _read_payload(value)
        # Not JSON, not the usual shape, not UTF-8 (a UnicodeDecodeError, a ValueError), too
        # deep: the full decoder's turn, which names what is wrong or accepts what msgspec is
        # stricter about (a lone surrogate escape, a byte-order mark).
        except (msgspec.MsgspecError, ValueError, RecursionError):
            payload = None
        if payload is not None:
            row = _fast_row(payload, partition << OFFSET_BITS | offset)
            if row is not None:
                return row
    change = decode(value, topic=topic, partition=partition, offset=offset)
    return None if change is None else row_from_change(change)


def _fast_row(payload: Any, position: int) -> tuple[Any, ...] | None:
    """The row of a bare payload (`_Payload`), or None when it needs the full decoder's verdict.

    A document with an op is never the ``{"schema", "payload"}`` envelope, so it is a bare
    payload to `decode` too.
    """
    shape = _SHAPES.get(payload.op)
    source = payload.source
    ts_ms = source.ts_ms
    if shape is None or source.schema != "fxcortex" or source.table != "rates":
        return None
    if not 0 <= ts_ms < _TS_MS_END:
        return None
    op, has_before, has_after = shape
    before, after = payload.before, payload.after
    if has_before:
        before_row = _image_row(before)
    elif before is None:
        before_row = _ABSENT
    else:
        return None  # a create or read with a before image: the full decoder checks and drops it
    if has_after:
        after_row = _image_row(after)
    elif after is None:
        after_row = _ABSENT
    else:
        return None
    if before_row is None or after_row is None:
        return None
    return (position, op, ts_ms * 1000, *before_row, *after_row)


_read_payload: Callable[[bytes], Any] | None = None
if msgspec is not None:
    # The connector's usual message, typed: msgspec reads it straight into these structs (in C,
    # skipping the fields not named, twice as fast as a parse into dicts) and refuses anything
    # of another shape — a missing key, a number where text belongs — which then goes to
    # `decode` for its verdict. Not tracked by the garbage collector: they hold only texts.

    class _Image(msgspec.Struct, gc=False):
        source: str
        base: str
        quote: str
        kind: str
        observed_at: str
        rate: str

    class _Source(msgspec.Struct, gc=False):
        ts_ms: int
        schema: str
        table: str

    class _Payload(msgspec.Struct, gc=False):
        op: str
        source: _Source
        before: _Image | None = None
        after: _Image | None = None

    _read_payload = msgspec.json.Decoder(_Payload).decode
