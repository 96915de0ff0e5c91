"""Decoding Debezium's envelopes of fxcortex.rates: goldens, every encoding, malformed input."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import ChangeOp
from fxcortex.core.batch import change_from_row, row_from_change
from fxcortex.runtime.adapters.debezium import DecodeError, decode, decode_row, position_of

FIXTURES = Path(__file__).parent / "fixtures" / "debezium"
TOPIC = "fxcortex.fxcortex.rates"


def _row(rate: Any = "1.0850", **overrides: Any) -> dict[str, Any]:
    row = {
        "source": "ecb",
        "base": "EUR",
        "quote": "USD",
        "kind": "mid",
        "observed_at": "2024-01-02T13:15:00Z",
        "rate": rate,
    }
    row.update(overrides)
    return row


def _envelope(op: str = "c", before: Any = None, after: Any = None, **extra: Any) -> dict[str, Any]:
    payload = {
        "before": before,
        "after": _row() if after is None and op in "cru" else after,
        "source": {
            "connector": "postgresql",
            "schema": "fxcortex",
            "table": "rates",
            "ts_ms": 1_704_201_300_000,
            "lsn": 123,
        },
        "op": op,
        "ts_ms": 1_704_201_300_100,
    }
    payload.update(extra)
    return payload


def _decode(document: Any, offset: int = 7, partition: int = 0) -> Any:
    value = document if isinstance(document, bytes) else json.dumps(document).encode()
    return decode(value, topic=TOPIC, partition=partition, offset=offset)


def test_insert_as_strings() -> None:
    change = _decode(_envelope("c"))
    assert change.op is ChangeOp.CREATE
    assert change.after.rate == Decimal("1.0850")
    assert str(change.after.pair) == "EUR/USD"
    assert change.after.observed_at.isoformat() == "2024-01-02T13:15:00+00:00"
    assert change.committed_at.timestamp() == 1_704_201_300
    assert change.position == 7


def test_update_delete_and_snapshot_read() -> None:
    update = _decode(_envelope("u", before=_row("1.08"), after=_row("1.09")))
    assert (update.before.rate, update.after.rate) == (Decimal("1.08"), Decimal("1.09"))
    delete = _decode(_envelope("d", before=_row("1.09"), after=None))
    assert delete.op is ChangeOp.DELETE and delete.after is None
    assert _decode(_envelope("r")).op is ChangeOp.READ


def test_tombstones_heartbeats_and_schema_changes_are_nothing() -> None:
    assert decode(None, topic=TOPIC, partition=0, offset=1) is None
    assert decode(b"", topic=TOPIC, partition=0, offset=1) is None
    assert _decode({"ts_ms": 1_704_201_300_000}) is None
    assert _decode({"schema": {"type": "struct"}, "payload": {"ts_ms": 1}}) is None
    assert _decode({"schema": {"type": "struct"}, "payload": None}) is None
    assert _decode({"source": {}, "ddl": "ALTER TABLE ...", "tableChanges": []}) is None


def _rate_schema(rate: dict[str, Any]) -> dict[str, Any]:
    columns = [{"field": name, "type": "string"} for name in ("source", "base", "quote", "kind")]
    columns.append(
        {"field": "observed_at", "type": "string", "name": "io.debezium.time.ZonedTimestamp"}
    )
    columns.append({"field": "rate", **rate})
    image = {"type": "struct", "fields": columns, "optional": True}
    return {
        "type": "struct",
        "fields": [{**image, "field": "before"}, {**image, "field": "after"}],
    }


def _b64(unscaled: int) -> str:
    size = (unscaled.bit_length() + 8) // 8
    return base64.b64encode(unscaled.to_bytes(size, "big", signed=True)).decode()


def test_precise_decimal_with_the_scale_in_the_schema() -> None:
    schema = _rate_schema(
        {
            "type": "bytes",
            "name": "org.apache.kafka.connect.data.Decimal",
            "parameters": {"scale": "4"},
        }
    )
    change = _decode({"schema": schema, "payload": _envelope("c", after=_row(_b64(10850)))})
    assert change.after.rate == Decimal("1.0850")


def test_variable_scale_decimal_struct() -> None:
    rate = {"scale": 6, "value": _b64(1_085_012)}
    assert _decode(_envelope("c", after=_row(rate))).after.rate == Decimal("1.085012")


def test_zoned_timestamps_with_offsets_and_fractions() -> None:
    row = _row(observed_at="2024-01-02T14:15:00.123456+01:00")
    when = _decode(_envelope("c", after=row)).after.observed_at
    assert when.isoformat() == "2024-01-02T13:15:00.123456+00:00"


def test_positions_grow_with_the_offset_and_keep_partitions_apart() -> None:
    assert position_of(0, 5) < position_of(0, 6) < position_of(1, 0)
    first = _decode(_envelope("r"), offset=3)
    assert _decode(_envelope("r"), offset=3).position == first.position  # a re-delivery
    assert _decode(_envelope("r"), offset=4).position > first.position  # same LSN, later read


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"{not json", "not JSON"),
        ([], "not an object"),
        ({"op": "x", "source": {}}, "op 'x'"),
        (_envelope("c", after=_row("abc")), "not a number"),
        (_envelope("c", after=_row("-1")), "positive"),
        (_envelope("c", after=_row(observed_at="2024-01-02T13:15:00")), "no zone"),
        (_envelope("c", after=_row(base="E1R")), "E1R"),
        (_envelope("u", before=None), "update needs both images"),
        (_envelope("c", source={"schema": "public", "table": "other", "ts_ms": 1}), "not fxcortex"),
    ],
)
def test_malformed_envelopes_name_where_and_why(document: Any, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as caught:
        _decode(document, offset=42, partition=2)
    assert (caught.value.topic, caught.value.partition, caught.value.offset) == (TOPIC, 2, 42)
    assert str(caught.value).startswith(f"{TOPIC}[2]@42: ")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(["before", "after", "source", "op", "ts_ms", "schema", "payload"])


@given(
    st.one_of(
        st.binary(max_size=64),
        _json.map(lambda doc: json.dumps(doc).encode()),
        st.dictionaries(_keys, _json, max_size=6).map(lambda doc: json.dumps(doc).encode()),
        st.builds(
            lambda key, value: json.dumps({**_envelope("u", before=_row()), key: value}).encode(),
            _keys,
            _json,
        ),
        st.builds(
            lambda key, value: json.dumps(_envelope("c", after={**_row(), key: value})).encode(),
            st.sampled_from(["source", "base", "quote", "kind", "observed_at", "rate"]),
            _json,
        ),
    )
)
def test_generated_envelopes_decode_or_raise_decode_error(value: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(value, topic=TOPIC, partition=0, offset=1)
    _assert_row_decoding_agrees(value)


def _assert_row_decoding_agrees(value: bytes) -> None:
    """`decode_row` accepts, refuses and reads exactly what `decode` does."""
    try:
        change = decode(value, topic=TOPIC, partition=1, offset=9)
    except DecodeError as error:
        refused = error
    else:
        refused = None
    if refused is not None:
        with pytest.raises(DecodeError, match=re.escape(refused.reason)):
            decode_row(value, topic=TOPIC, partition=1, offset=9)
        return
    row = decode_row(value, topic=TOPIC, partition=1, offset=9)
    assert row == (None if change is None else row_from_change(change))
    if row is not None:
        assert change_from_row(row) == change


_images = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["ecb", "", "bonbast"]),
        "base": st.sampled_from(["EUR", "USD", "IRR", "XXQ", "eur"]),
        "quote": st.sampled_from(["USD", "JPY", "EUR"]),
        "kind": st.sampled_from(["mid", "sell", "nope"]),
        "observed_at": st.sampled_from(
            ["2024-01-02T13:15:00Z", "2024-01-02T13:15:00.123456+03:30", "2024-01-02T13:15:00"]
        ),
        "rate": st.sampled_from(["1.0850", "0", "-1", "NaN", "1e3", "abc", "1050000"]),
    }
)


@given(
    op=st.sampled_from(["c", "u", "d", "r", "x"]),
    before=st.none() | _images,
    after=st.none() | _images,
)
def test_row_decoding_agrees_with_full_decoding_on_near_valid_envelopes(
    op: str, before: Any, after: Any
) -> None:
    _assert_row_decoding_agrees(json.dumps(_envelope(op, before=before, after=after)).encode())


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda path: path.stem)
def test_row_decoding_agrees_on_the_captured_envelopes(path: Path) -> None:
    _assert_row_decoding_agrees(path.read_bytes())


def _fixture_cases() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


@pytest.mark.parametrize("path", _fixture_cases(), ids=lambda path: path.stem)
def test_captured_envelopes(path: Path) -> None:
    change = decode(path.read_bytes(), topic=TOPIC, partition=0, offset=1)
    label = path.stem.split("-", 1)[1]
    if label == "heartbeat":
        assert change is None
        return
    expected = {"read": "r", "create": "c", "update": "u", "delete": "d"}[label]
    assert change is not None and change.op.value == expected
    assert change.quote.pair.base.code in {"EUR", "GBP"}
    assert change.quote.rate > 0
