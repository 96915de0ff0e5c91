"""Binary COPY rows of quotes: every field as PostgreSQL's binary format has it.

psycopg's own binary dumpers and loaders are the reference here (the same wire format, written
independently); the real server reads these rows in tests/integration/test_ingestion_distributed.py.
"""

from __future__ import annotations

import decimal
import struct
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg import adapters
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import Format

from fxcortex.core import Currency, Pair, Quote, QuoteKind
from fxcortex.core.testing import quote
from fxcortex.runtime.adapters.pgcopy import (
    COLUMNS,
    SIGNATURE,
    TRAILER,
    copy_chunks,
    numeric_field,
)

_TRANSFORMER = Transformer()
_TYPES = ("text", "text", "text", "text", "timestamptz", "numeric")
_EXACT_CONTEXT = decimal.Context(prec=decimal.MAX_PREC)  # trimming without rounding

finite_decimals = st.decimals(allow_nan=False, allow_infinity=False).filter(
    lambda d: d.adjusted() < 120  # numeric's weight is an int16 of base-10000 digits
)
rates = st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e12"), places=None).filter(
    lambda d: d.is_finite() and d > 0
)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def reference_numeric(value: Decimal) -> bytes:
    """psycopg's binary ``numeric`` of the trimmed value, with its length."""
    trimmed = value.normalize(_EXACT_CONTEXT)
    dumped = bytes(_TRANSFORMER.get_dumper(trimmed, PyFormat.BINARY).dump(trimmed))
    return struct.pack(">i", len(dumped)) + dumped


def read_rows(data: bytes) -> list[tuple[object, ...]]:
    """Parse binary COPY data with psycopg's loaders, checking its framing on the way."""
    assert data.startswith(SIGNATURE) and data.endswith(TRAILER)
    loaders = [_TRANSFORMER.get_loader(adapters.types[name].oid, Format.BINARY) for name in _TYPES]
    at, end, rows = len(SIGNATURE), len(data) - len(TRAILER), []
    while at < end:
        (count,) = struct.unpack_from(">h", data, at)
        assert count == len(COLUMNS)
        at += 2
        row = []
        for loader in loaders:
            (length,) = struct.unpack_from(">i", data, at)
            at += 4
            row.append(loader.load(data[at : at + length]))
            at += length
        rows.append(tuple(row))
    assert at == end
    return rows


@given(finite_decimals)
def test_a_numeric_is_what_psycopg_sends_for_the_trimmed_value(value: Decimal) -> None:
    assert numeric_field(value) == reference_numeric(value)


@pytest.mark.parametrize(
    "text",
    [
        "1.10",
        "0.0012",
        "0.00012",
        "100",
        "10000",
        "1045000.0",
        "9999.9999",
        "0",
        "-0.50",
        "123456789012345678901234567890.1234567890123456789",
        "1E-20",
        "1E+30",
    ],
)
def test_numerics_of_every_shape(text: str) -> None:
    assert numeric_field(Decimal(text)) == reference_numeric(Decimal(text))


def test_only_finite_numbers_are_written() -> None:
    for value in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError, match="not a finite number"):
            numeric_field(Decimal(value))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["EUR/USD", "USD/IRR", "EUR/JPY"]),
            rates,
            moments,
            st.sampled_from(["ecb", "bonbast", "قیمت"]),  # a non-ASCII source name too
            st.sampled_from(list(QuoteKind)),
        ),
        max_size=30,
    )
)
def test_encoded_quotes_read_back_as_the_quotes_with_trimmed_rates(
    specs: list[tuple[str, Decimal, datetime, str, QuoteKind]],
) -> None:
    quotes = [
        quote(pair, str(rate), when, source, kind) for pair, rate, when, source, kind in specs
    ]
    rows = read_rows(b"".join(copy_chunks(quotes)))
    assert rows == [
        (q.source, q.pair.base.code, q.pair.quote.code, q.kind.value, q.observed_at, q.rate)
        for q in quotes
    ]
    # trimmed: one text per number, as the store keeps it (1.10 as 1.1)
    for *_, rate in rows:
        _, digits, exponent = rate.as_tuple()
        assert exponent == 0 or digits[-1] != 0, rate


def test_a_large_load_is_cut_into_chunks_that_join_into_one_copy() -> None:
    start = datetime(1999, 12, 31, 23, 0, tzinfo=UTC)  # before the server's epoch, too
    quotes: list[Quote] = [
        quote("EUR/USD", f"1.{i % 997:03d}0", start + timedelta(microseconds=7 * i))
        for i in range(40_000)
    ]
    chunks = list(copy_chunks(quotes))
    assert len(chunks) > 1
    rows = read_rows(b"".join(chunks))
    assert [row[4] for row in rows] == [q.observed_at for q in quotes]
    assert [row[5] for row in rows] == [q.rate for q in quotes]


def test_no_quotes_is_an_empty_copy() -> None:
    assert b"".join(copy_chunks([])) == SIGNATURE + TRAILER


def test_a_pair_made_where_a_freed_one_was_keeps_its_own_codes() -> None:
    # The series cache is keyed by the pair's identity. A generator's quotes may be freed as
    # they are encoded, and a new Pair then made at a freed one's address (this generator does
    # exactly that); each quote must still be written with its own codes.
    rate, when = Decimal("1.5"), datetime(2024, 1, 1, tzinfo=UTC)

    def two_batches() -> Iterator[Quote]:
        for base, quote_code in (("EUR", "USD"), ("GBP", "JPY")):
            batch = [
                # a new object each time, not Pair.of
                Quote(
                    pair=Pair(Currency.of(base), Currency.of(quote_code)),
                    rate=rate,
                    observed_at=when,
                    source="ecb",
                )
                for _ in range(100)
            ]
            yield from batch
            del batch

    rows = read_rows(b"".join(copy_chunks(two_batches())))
    assert [(row[1], row[2]) for row in rows] == [("EUR", "USD")] * 100 + [("GBP", "JPY")] * 100
