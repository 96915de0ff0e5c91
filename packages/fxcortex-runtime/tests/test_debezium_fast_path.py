"""`decode_row`'s fast path (orjson and caches of checked values) against the full decoder.

The fast path must give exactly the row `decode` gives, and refuse exactly what it refuses with the
same error: on envelopes in the connector's real wire format, near the edges of every check, with
its caches cold, warm or emptied half-way.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core.batch import row_from_change
from fxcortex.runtime.adapters import debezium
from fxcortex.runtime.adapters.debezium import DecodeError, decode, decode_row

FIXTURES = Path(__file__).parent / "fixtures" / "debezium"
TOPIC = "fxcortex.fxcortex.rates"


def _source_block(ts_ms: Any) -> dict[str, Any]:
    """The source block as Debezium 3.6 writes it (see fixtures/debezium/bare-*.json)."""
    return {
        "version": "3.6.1.Final",
        "connector": "postgresql",
        "name": "fxdbz0873a50f",
        "ts_ms": ts_ms,
        "snapshot": "false",
        "db": "fxdbz_aff58244b0",
        "sequence": '[null,"30835320"]',
        "ts_us": 1795878718852077,
        "ts_ns": 1795878718852077000,
        "schema": "fxcortex",
        "table": "rates",
        "txId": 733,
        "lsn": 30835320,
        "xmin": None,
        "origin": None,
        "origin_lsn": None,
    }


def _outcome(value: bytes, partition: int, offset: int) -> tuple[Any, ...] | str | None:
    """`decode`'s verdict as a row, None, or the text of its error (coordinates included)."""
    try:
        change = decode(value, topic=TOPIC, partition=partition, offset=offset)
    except DecodeError as error:
        return str(error)
    return None if change is None else row_from_change(change)


def _row_outcome(value: bytes, partition: int, offset: int) -> tuple[Any, ...] | str | None:
    try:
        return decode_row(value, topic=TOPIC, partition=partition, offset=offset)
    except DecodeError as error:
        return str(error)


def _assert_agrees(value: bytes, partition: int = 1, offset: int = 9) -> None:
    expected = _outcome(value, partition, offset)
    assert _row_outcome(value, partition, offset) == expected  # caches as they are
    assert _row_outcome(value, partition, offset) == expected  # now warm with this message


@contextlib.contextmanager
def _tiny_caches() -> Iterator[None]:
    """Caches of two entries, emptied before and after: every few lookups miss and refill."""
    caches = (debezium._SERIES, debezium._MICROS, debezium._RATES)
    limit = debezium._CACHE_LIMIT
    for cache in caches:
        cache.clear()
    debezium._CACHE_LIMIT = 2
    try:
        yield
    finally:
        debezium._CACHE_LIMIT = limit
        for cache in caches:
            cache.clear()


# --------------------------------------------------------------------------- generated envelopes

_moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
_offsets = st.sampled_from([timezone(timedelta(hours=h, minutes=m)) for h, m in ((1, 0), (-5, 0))])


def _zulu(moment: datetime, timespec: str = "microseconds") -> str:
    """A UTC moment as Debezium writes a timestamptz: ``2024-01-02T13:15:00.000000Z``."""
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")


@st.composite
def _observed_at(draw: st.DrawFn) -> Any:
    """ZonedTimestamps as Debezium writes them, other ISO-8601 spellings, and non-timestamps."""
    moment = draw(_moments)
    return draw(
        st.one_of(
            st.just(_zulu(moment)),  # the connector's format
            st.just(_zulu(moment, "seconds")),
            st.just(moment.isoformat()),  # +00:00
            st.just(moment.replace(tzinfo=None).isoformat()),  # naive: refused
            _offsets.map(lambda zone: moment.astimezone(zone).isoformat()),
            st.sampled_from(
                [
                    "0001-01-01T00:30:00+01:00",  # before year 1 in UTC
                    "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC
                    "2024-01-02T13:15:00.123Z",
                    "2024-02-30T13:15:00.000000Z",
                    "2024-01-02T24:00:00.000000Z",
                    "2024-01-02 13:15:00Z",
                    "20240102T131500Z",
                    "2024-01-02T13:15:00.000000z",
                    "２０２４-01-02T13:15:00Z",
                    "",
                ]
            ),
            st.text(max_size=30),
            st.none() | st.integers() | st.lists(st.none(), max_size=1),
        )
    )


# Each part is mostly what the connector writes, else one of the spellings that differ a little
# (the caches and the fast path's shortcuts are where they could be read differently) or junk:
# about half the images are valid, and most of the others fail by one part.


def _mostly(usual: st.SearchStrategy[Any], unusual: st.SearchStrategy[Any]) -> Any:
    """``usual`` about nine times in ten, else ``unusual`` (which examples shrink away from)."""
    return st.integers(0, 9).flatmap(lambda n: unusual if n == 9 else usual)


_rarely = _mostly(st.just(False), st.just(True))

_RATE_SPELLINGS = [
    "1.0850", "1e3", "1E-7", "0.0000001", " 1.5", "1_000", "01.50", "+2", "1.", ".5", "0", "-0",
    "-1", "NaN", "Infinity", "0x10", "abc", "",
]  # fmt: skip
_rates = _mostly(
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4).map(str),
    st.sampled_from(_RATE_SPELLINGS)
    | st.decimals(allow_nan=True, allow_infinity=True).map(str)
    | st.none()
    | st.integers()
    | st.floats()
    | st.dictionaries(st.just("scale"), st.integers()),
)


def _image(good: bool) -> st.SearchStrategy[Any]:
    image = st.fixed_dictionaries(
        {
            "source": _mostly(
                st.sampled_from(["test", "ecb"]), st.sampled_from(["", "Test", None])
            ),
            "base": _mostly(
                st.sampled_from(["EUR", "GBP"]), st.sampled_from(["XXQ", "eur", "USD"])
            ),
            "quote": _mostly(st.sampled_from(["USD", "JPY"]), st.sampled_from(["EUR", "", []])),
            "kind": _mostly(st.sampled_from(["mid", "bid"]), st.sampled_from(["nope", "MID", 1])),
            "observed_at": _mostly(
                _moments.map(_zulu),
                _observed_at(),
            ),
            "rate": _rates,
        }
    )
    return image if good else image | st.none() | st.sampled_from([[], "image", 1, {}])


_shapes = {"c": (False, True), "r": (False, True), "u": (True, True), "d": (True, False)}

_ts_ms = _mostly(
    st.integers(1_700_000_000_000, 1_800_000_000_000),
    st.sampled_from([0, 2**32 * 1000 - 1, 2**32 * 1000, 253_402_300_799_999, 253_402_300_800_000])
    | st.integers(-(10**3), 253_402_300_800_000 + 10**3)
    | st.sampled_from([-1, None, "1", 1.5, True]),
)


@st.composite
def _envelopes(draw: st.DrawFn) -> bytes:
    op = draw(
        _mostly(st.sampled_from(["c", "u", "d", "r"]), st.sampled_from(["x", "", None, ["c"]]))
    )
    has_before, has_after = _shapes.get(op, (True, True)) if isinstance(op, str) else (True, True)
    if not draw(_rarely):  # the images the op calls for
        before = draw(_image(good=True)) if has_before else None
        after = draw(_image(good=True)) if has_after else None
    else:  # any
        before, after = draw(_image(good=False)), draw(_image(good=False))
    source = _source_block(draw(_ts_ms))
    if draw(_rarely):  # another table, or a source without a key
        source[draw(st.sampled_from(["schema", "table", "ts_ms"]))] = draw(
            st.sampled_from(["public", "other", None])
        )
        if draw(st.booleans()):
            del source["table"]
    document: dict[str, Any] = {
        "before": before,
        "after": after,
        "source": source,
        "transaction": None,
        "op": op,
        "ts_ms": 1795878718984,
    }
    if draw(_rarely):
        del document[draw(st.sampled_from(["before", "after", "source", "op"]))]
    return json.dumps(document, separators=(",", ":")).encode()


_partitions = _mostly(st.integers(0, 3), st.sampled_from([-1, 2**20]))
_positions = _mostly(st.integers(0, 10**6), st.sampled_from([0, 2**40 - 1, 2**40, -1]))


@given(value=_envelopes(), partition=_partitions, offset=_positions)
def test_fast_path_gives_the_full_decoders_row_or_error(
    value: bytes, partition: int, offset: int
) -> None:
    _assert_agrees(value, partition, offset)


@given(values=st.lists(_envelopes(), min_size=1, max_size=8))
def test_fast_path_agrees_while_its_caches_miss_fill_and_empty(values: list[bytes]) -> None:
    with _tiny_caches():
        for offset, value in enumerate(values):
            _assert_agrees(value, offset=offset)
        caches = (debezium._SERIES, debezium._MICROS, debezium._RATES)
        assert all(len(cache) <= 2 for cache in caches)  # bounded


_OBSERVED_SPELLINGS = [
    "2024-01-02T13:15:00.000000Z",
    "2024-01-02T13:15:00Z",
    "2024-01-02T13:15:00.123Z",
    "2024-01-02T13:15:00+00:00",
    "2024-01-02T13:15:00-00:00",
    "2024-01-02T14:15:00.5+01:00",
    "2024-01-02T13:15:00",
    "2024-01-02 13:15:00Z",
    "20240102T131500Z",
    "2024-01-02T13:15Z",
    "2024-01-02",
    "2024-02-30T13:15:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
]


@pytest.mark.parametrize("rate", _RATE_SPELLINGS)
@pytest.mark.parametrize("observed_at", _OBSERVED_SPELLINGS)
def test_every_spelling_of_a_rate_and_a_time_agrees(rate: str, observed_at: str) -> None:
    after = {"source": "test", "base": "EUR", "quote": "USD", "kind": "mid"}
    document = {
        "before": None,
        "after": {**after, "observed_at": observed_at, "rate": rate},
        "source": _source_block(1795878718852),
        "op": "c",
    }
    with _tiny_caches():
        _assert_agrees(json.dumps(document).encode())


# --------------------------------------------------------------------------- the fast path is taken


def _without_full_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the full decoder was called")

    monkeypatch.setattr(debezium, "decode", refuse)


@pytest.mark.parametrize("label", ["create", "update", "delete", "read"])
def test_captured_wire_format_takes_the_fast_path(
    monkeypatch: pytest.MonkeyPatch, label: str
) -> None:
    """The connector's usual messages never reach `decode`: that is where the time goes."""
    value = (FIXTURES / f"bare-{label}.json").read_bytes()
    expected = _outcome(value, 2, 5)
    _without_full_decoder(monkeypatch)
    debezium._MICROS.clear()  # cold, then warm
    assert decode_row(value, topic=TOPIC, partition=2, offset=5) == expected
    assert decode_row(value, topic=TOPIC, partition=2, offset=5) == expected


def test_rows_share_the_series_strings() -> None:
    """A series' texts are one set of objects for every row (hashed once by the analytics)."""
    create = (FIXTURES / "bare-create.json").read_bytes()
    first = decode_row(create, topic=TOPIC, partition=0, offset=1)
    second = decode_row(create, topic=TOPIC, partition=0, offset=2)
    assert first is not None and second is not None
    assert all(a is b for a, b in zip(first[9:13], second[9:13], strict=True))


# --------------------------------------------------------------------------- edges both paths share


def _change(observed_at: str = "2024-01-02T13:15:00Z", ts_ms: int = 1) -> bytes:
    after = {"source": "s", "base": "EUR", "quote": "USD", "kind": "mid", "rate": "1"}
    document = {
        "before": None,
        "after": {**after, "observed_at": observed_at},
        "source": {"schema": "fxcortex", "table": "rates", "ts_ms": ts_ms},
        "op": "c",
    }
    return json.dumps(document).encode()


@pytest.mark.parametrize("observed_at", ["0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"])
def test_an_instant_outside_the_utc_calendar_is_a_decode_error(observed_at: str) -> None:
    for decoder in (decode, decode_row):
        with pytest.raises(DecodeError, match="out of range in UTC"):
            decoder(_change(observed_at), topic=TOPIC, partition=0, offset=1)


def test_a_number_too_long_to_convert_is_a_decode_error() -> None:
    value = b'{"ts_ms": ' + b"9" * 5000 + b"}"
    for decoder in (decode, decode_row):
        with pytest.raises(DecodeError, match="not JSON"):
            decoder(value, topic=TOPIC, partition=0, offset=1)


@pytest.mark.parametrize("ts_ms", [2**32 * 1000 - 1, 2**32 * 1000, 253_402_300_799_997])
def test_commit_times_agree_up_to_year_9999(ts_ms: int) -> None:
    """Past 2**32 s the full decoder's float rounding shows; the fast path leaves those to it."""
    _assert_agrees(_change(ts_ms=ts_ms))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"op": "c\xff", "source": {}}', "not JSON"),  # not UTF-8, where text is read
        (b'{"op": "c"} trailing', "not JSON"),
        (b"[" * 100_000, "not JSON"),  # nested deeper than either parser goes
    ],
)
def test_bytes_the_typed_reader_refuses_get_the_full_decoders_error(
    raw: bytes, reason: str
) -> None:
    for decoder in (decode, decode_row):
        with pytest.raises(DecodeError, match=reason):
            decoder(raw, topic=TOPIC, partition=0, offset=1)


def test_what_only_the_standard_library_reads_is_still_decoded() -> None:
    """A byte-order mark or a lone surrogate escape: msgspec refuses, `decode` reads them."""
    change = _change()
    with_bom = b"\xef\xbb\xbf" + change
    _assert_agrees(with_bom)
    surrogate = change.replace(b'"source": "', b'"source": "\\ud800', 1)
    assert surrogate != change
    _assert_agrees(surrogate)


@given(st.data())
def test_any_bytes_spliced_into_a_message_get_the_same_outcome_from_both_paths(
    data: st.DataObject,
) -> None:
    """Whatever the bytes (broken UTF-8, stray quotes, brackets): the same row or the same error."""
    message = _change()
    at = data.draw(st.integers(min_value=0, max_value=len(message)))
    cut = data.draw(st.integers(min_value=0, max_value=4))
    spliced = message[:at] + data.draw(st.binary(max_size=6)) + message[at + cut :]
    _assert_agrees(spliced)
