"""Quotes as PostgreSQL binary COPY data, built from pieces that repeat.

psycopg formats a COPY row field by field through its dumpers; for a quote that costs about 2 µs,
more than PostgreSQL needs to store the row, and most of it goes on the ``numeric``. Yet most of a
load repeats itself: a load has a handful of series, so the four text columns of a row are one of
a few byte strings; quotes come in time order, so the timestamp is often the previous row's; and
a rate of a few significant digits recurs within a load. `copy_chunks` keeps those pieces
encoded and joins them, which brings a row to well under a microsecond.

The format is PostgreSQL's documented binary COPY format (``COPY … FROM STDIN (FORMAT BINARY)``):
a signature and header, then per row a 16-bit field count and per field a 32-bit length and the
field's binary form (``textsend``, ``timestamptz_send``, ``numeric_send``), then a -1 trailer.
Rates are written canonically, trailing zeros trimmed (1.10 as 1.1), as the rate store keeps them.
"""

from __future__ import annotations

import decimal
import struct
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

from fxcortex.core import Pair, Quote, QuoteKind
from fxcortex.core.batch import to_micros

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # no flags, no header extension
TRAILER = struct.pack(">h", -1)
COLUMNS = ("source", "base", "quote", "kind", "observed_at", "rate")
"""The columns a row fills, in order: name them in the ``COPY`` statement."""

_PG_EPOCH_MICROS = to_micros(datetime(2000, 1, 1, tzinfo=UTC))  # timestamptz counts µs from here
_TIMESTAMP = struct.Struct(">iq")  # length 8, then the µs
_NUMERIC_HEADER = struct.Struct(">ihhHH")  # length, ndigits, weight, sign, dscale
_NUMERIC_DIGIT_BASE = 10_000  # numeric's digits are base-10000, each an int16
_CHUNK_PIECES = 3 * 16_384  # rows of about 60 bytes: chunks of about a megabyte
_RATE_CACHE_LIMIT = 200_000  # distinct rates remembered per load: a few MB at most
# Trimming without rounding: the default context would cut a rate to 28 significant digits.
_EXACT = decimal.Context(prec=decimal.MAX_PREC)


def numeric_field(value: Decimal) -> bytes:
    """The binary COPY field (length included) of a finite ``numeric``, trailing zeros trimmed.

    PostgreSQL's ``numeric`` is a sign, a display scale (digits after the point) and base-10000
    digits with the weight (the power of 10000) of the first one. The value's fraction is padded
    to whole base-10000 digits, split into them, and zero digits at either end are left out, as
    ``numeric_send`` does.
    """
    if not value.is_finite():
        raise ValueError(f"numeric_field: {value} is not a finite number")
    trimmed = value.normalize(_EXACT)
    sign, _, exponent = trimmed.as_tuple()
    assert isinstance(exponent, int)  # finite
    scale = max(-exponent, 0)
    padded = -(-scale // 4) * 4  # the fraction's digits, rounded up to a multiple of four
    coefficient = abs(int(trimmed.scaleb(padded, _EXACT)))  # exact: a whole number
    groups: list[int] = []
    while coefficient:
        coefficient, group = divmod(coefficient, _NUMERIC_DIGIT_BASE)
        groups.append(group)
    groups.reverse()
    weight = len(groups) - 1 - padded // 4
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:  # zero: no digits, and no sign (numeric has no negative zero)
        weight = sign = 0
    header = _NUMERIC_HEADER.pack(8 + 2 * len(groups), len(groups), weight, sign * 0x4000, scale)
    return header + struct.pack(f">{len(groups)}h", *groups)


def text_field(value: str) -> bytes:
    """The binary COPY field (length included) of a ``text``."""
    encoded = value.encode()
    return struct.pack(">i", len(encoded)) + encoded


def copy_chunks(quotes: Iterable[Quote]) -> Iterator[bytes]:
    """Binary COPY data of ``quotes`` for the columns `COLUMNS`, in chunks of about a megabyte.

    Signature to trailer. Pieces that repeat are encoded once per call, that is per load.
    """
    # Keyed by the pair's identity: hashing a Pair (an attrs class) costs more than the rest of
    # the row. The pair is kept in the value, so its id cannot be reused by another object while
    # the cache lives; a kind (an enum member) and a source (a str) hash cheaply.
    series: dict[tuple[str, int, QuoteKind], tuple[bytes, Pair]] = {}
    rates: dict[str, bytes] = {}
    timestamp = _TIMESTAMP.pack
    pending: list[bytes] = [SIGNATURE]
    append = pending.append
    last_time: datetime | None = None
    time_field = b""
    for q in quotes:
        pair = q.pair
        key = (q.source, id(pair), q.kind)
        entry = series.get(key)
        if entry is None:
            # the field count, the four text fields
            texts = (q.source, pair.base.code, pair.quote.code, q.kind.value)
            prefix = struct.pack(">h", len(COLUMNS)) + b"".join(text_field(t) for t in texts)
            entry = series[key] = (prefix, pair)
        prefix = entry[0]
        if q.observed_at != last_time:
            last_time = q.observed_at
            time_field = timestamp(8, to_micros(last_time) - _PG_EPOCH_MICROS)
        # Keyed by the text: a Decimal's own hash is computed on first use, and every quote
        # brings a Decimal of its own, so hashing them would cost more than the encoding saves.
        text = str(q.rate)
        rate = rates.get(text)
        if rate is None:
            if len(rates) >= _RATE_CACHE_LIMIT:
                rates.clear()
            rate = rates[text] = numeric_field(q.rate)
        append(prefix)
        append(time_field)
        append(rate)
        if len(pending) >= _CHUNK_PIECES:
            yield b"".join(pending)
            pending = []
            append = pending.append
    pending.append(TRAILER)
    yield b"".join(pending)
