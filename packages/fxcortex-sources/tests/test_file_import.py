"""The file source: a user's CSV or Parquet rates, read exactly, refused line by line."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow
import pyarrow.parquet
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fxcortex.core import (
    FetchWindow,
    MissingExtraError,
    Quote,
    QuoteKind,
    SourceError,
)
from fxcortex.sources.file_import import FileSource, Reading, fxcortex_register_sources, parse

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
WARSAW = Reading(timezone=ZoneInfo("Europe/Warsaw"))
GOOD_CSV = (
    b"observed_at,base,quote,rate,kind\n"
    b"2026-03-02T14:15:00+01:00,EUR,USD,1.0812,mid\n"
    b"2026-03-02T14:15:00+01:00,EUR,JPY,161.25,\n"
    b"2026-03-03T09:30:00Z,USD,PLN,3.9871,bid\n"
)


def read(payload: bytes, **options: Any) -> list[Quote]:
    options.setdefault("now", NOW)
    options.setdefault("label", "rates.csv")
    return parse(payload, **options)


def refusal(payload: bytes, **options: Any) -> SourceError:
    with pytest.raises(SourceError) as caught:
        read(payload, **options)
    assert caught.value.source == "file"
    return caught.value


def parquet(table: dict[str, Any], schema: pyarrow.Schema | None = None) -> bytes:
    buffer = io.BytesIO()
    pyarrow.parquet.write_table(pyarrow.table(table, schema=schema), buffer)
    return buffer.getvalue()


# Reading CSV


def test_a_csv_with_offsets_reads_to_exact_quotes_in_utc() -> None:
    quotes = read(GOOD_CSV)

    assert quotes == [
        Quote.of("EUR/USD", "1.0812", datetime(2026, 3, 2, 13, 15, tzinfo=UTC), "file", "mid"),
        Quote.of("EUR/JPY", "161.25", datetime(2026, 3, 2, 13, 15, tzinfo=UTC), "file", "mid"),
        Quote.of("USD/PLN", "3.9871", datetime(2026, 3, 3, 9, 30, tzinfo=UTC), "file", "bid"),
    ]
    assert str(quotes[0].rate) == "1.0812"


def test_a_pair_column_replaces_base_and_quote_in_any_spelling() -> None:
    payload = (
        b"pair,observed_at,rate\n"
        b"EUR/USD,2026-03-02T13:00:00Z,1.08\n"
        b"gbpusd,2026-03-02T13:00:00Z,1.27\n"
        b"USD-JPY,2026-03-02T13:00:00Z,150.1\n"
        b"EUR/USDT,2026-03-02T13:00:00Z,1.079\n"
    )

    assert [str(q.pair) for q in read(payload)] == ["EUR/USD", "GBP/USD", "USD/JPY", "EUR/USDT"]


def test_dates_are_read_at_the_time_option_in_the_timezone_option() -> None:
    payload = b"observed_at,base,quote,rate\n2026-07-01,EUR,PLN,4.2612\n2026-01-02,EUR,PLN,4.27\n"
    reading = Reading(timezone=ZoneInfo("Europe/Warsaw"), day_time=datetime(1, 1, 1, 11, 45).time())

    quotes = read(payload, reading=reading)

    # 11:45 Warsaw is 09:45 UTC in summer (CEST) and 10:45 UTC in winter (CET)
    assert [q.observed_at for q in quotes] == [
        datetime(2026, 7, 1, 9, 45, tzinfo=UTC),
        datetime(2026, 1, 2, 10, 45, tzinfo=UTC),
    ]


def test_naive_times_are_read_in_the_timezone_option() -> None:
    payload = b"observed_at,base,quote,rate\n2026-03-02 14:15,EUR,PLN,4.29\n"

    assert read(payload, reading=WARSAW)[0].observed_at == datetime(2026, 3, 2, 13, 15, tzinfo=UTC)


def test_headers_are_matched_without_case_or_spaces_and_other_columns_are_ignored() -> None:
    payload = (
        "\ufeff Observed_At ; BASE;Quote ; Rate;comment\n"
        "2026-03-02T13:00:00Z;eur;usd;1.08;from the bank\n"
    ).encode()

    assert read(payload) == [
        Quote.of("EUR/USD", "1.08", datetime(2026, 3, 2, 13, tzinfo=UTC), "file")
    ]


def test_blank_lines_are_skipped_and_line_numbers_count_them() -> None:
    payload = (
        b"observed_at,base,quote,rate\n\n2026-03-02T13:00:00Z,EUR,USD,1.08\n\n2026-03-02,EUR\n"
    )

    error = refusal(payload)

    assert error.location == "rates.csv line 5"


def test_every_kind_is_read_and_a_blank_one_is_mid() -> None:
    rows = "".join(
        f"2026-03-02T13:00:00Z,EUR,USD,1.08,{kind}\n"
        for kind in ("MID", "bid", "ask", "buy", "sell")
    )
    payload = ("observed_at,base,quote,rate,kind\n" + rows).encode()

    assert [q.kind for q in read(payload)] == list(QuoteKind)


# Reading Parquet


def test_a_parquet_file_with_aware_timestamps_and_decimal_rates_reads_exactly() -> None:
    payload = parquet(
        {
            "observed_at": pyarrow.array(
                [datetime(2026, 3, 2, 13, 15, tzinfo=UTC)], pyarrow.timestamp("us", tz="UTC")
            ),
            "base": ["EUR"],
            "quote": ["USD"],
            "rate": pyarrow.array([Decimal("1.081234")], pyarrow.decimal128(12, 6)),
            "kind": ["ask"],
        }
    )

    assert read(payload, label="rates.parquet") == [
        Quote.of("EUR/USD", "1.081234", datetime(2026, 3, 2, 13, 15, tzinfo=UTC), "file", "ask")
    ]


def test_parquet_naive_timestamps_and_dates_need_and_use_the_timezone() -> None:
    payload = parquet(
        {
            "observed_at": pyarrow.array([datetime(2026, 3, 2, 14, 15)], pyarrow.timestamp("ms")),
            "pair": ["EUR/PLN"],
            "rate": ["4.29"],
        }
    )
    dated = parquet({"observed_at": [date(2026, 3, 2)], "pair": ["EUR/PLN"], "rate": ["4.29"]})

    assert read(payload, reading=WARSAW)[0].observed_at == datetime(2026, 3, 2, 13, 15, tzinfo=UTC)
    assert read(dated, reading=WARSAW)[0].observed_at == datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    assert "has no UTC offset" in refusal(payload).reason
    assert "is a date" in refusal(dated).reason


def test_a_parquet_float_rate_is_read_through_its_shortest_decimal_form() -> None:
    payload = parquet(
        {"observed_at": ["2026-03-02T13:00:00Z"], "pair": ["EUR/USD"], "rate": [1.0812]}
    )

    assert read(payload)[0].rate == Decimal("1.0812")


def test_a_parquet_row_error_names_the_row_and_column() -> None:
    payload = parquet(
        {
            "observed_at": ["2026-03-02T13:00:00Z", "2026-03-03T13:00:00Z"],
            "pair": ["EUR/USD", "EUR/USD"],
            "rate": ["1.08", "-1"],
        }
    )

    error = refusal(payload, label="rates.parquet")

    assert error.location == "rates.parquet row 2 column rate"
    assert "not a positive number" in error.reason


def test_a_truncated_parquet_file_is_refused() -> None:
    payload = parquet({"observed_at": ["2026-03-02T13:00:00Z"], "pair": ["EUR/USD"], "rate": ["1"]})

    error = refusal(payload[: len(payload) // 2], label="rates.parquet")

    assert error.location == "rates.parquet"
    assert "not a readable Parquet file" in error.reason


def test_a_parquet_code_column_of_numbers_is_refused() -> None:
    payload = parquet(
        {"observed_at": ["2026-03-02T13:00:00Z"], "base": [978], "quote": ["USD"], "rate": ["1"]}
    )

    assert "must be text, got int 978" in refusal(payload).reason


# Fetching


def test_fetch_reads_the_file_at_location_and_keeps_the_window(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_bytes(GOOD_CSV)
    source = FileSource(now=lambda: NOW).configure(location=str(path))

    quotes = list(source.fetch(FetchWindow(since=date(2026, 3, 3))))

    assert [(str(q.pair), q.rate) for q in quotes] == [("USD/PLN", Decimal("3.9871"))]


def test_fetch_reads_parquet_by_its_bytes_whatever_the_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.dat"
    path.write_bytes(
        parquet({"observed_at": ["2026-03-02T13:00:00Z"], "pair": ["EUR/USD"], "rate": ["1.08"]})
    )

    quotes = list(FileSource(now=lambda: NOW).configure(location=str(path)).fetch(FetchWindow()))

    assert quotes == [Quote.of("EUR/USD", "1.08", datetime(2026, 3, 2, 13, tzinfo=UTC), "file")]


def test_fetch_with_options_reads_dates_in_the_given_timezone_and_time(tmp_path: Path) -> None:
    path = tmp_path / "fixes.csv"
    path.write_bytes(b"observed_at,pair,rate\n2026-03-02,EUR/PLN,4.29\n")
    source = FileSource(now=lambda: NOW).configure(
        location=str(path), timezone="Europe/Warsaw", time="11:00"
    )

    assert next(iter(source.fetch(FetchWindow()))).observed_at == datetime(
        2026, 3, 2, 10, 0, tzinfo=UTC
    )


def test_a_missing_file_is_a_source_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.csv"

    with pytest.raises(SourceError) as caught:
        FileSource().configure(location=str(path)).fetch(FetchWindow())

    assert caught.value.location == str(path)
    assert "cannot read the file" in caught.value.reason


def test_a_fetch_without_location_says_to_set_it() -> None:
    with pytest.raises(SourceError, match="set the location option"):
        FileSource().fetch(FetchWindow())


def test_reading_parquet_without_pyarrow_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "mine.parquet"
    path.write_bytes(
        parquet({"observed_at": ["2026-03-02T13:00:00Z"], "pair": ["EUR/USD"], "rate": ["1.08"]})
    )
    csv_path = tmp_path / "mine.csv"
    csv_path.write_bytes(GOOD_CSV)
    monkeypatch.setitem(sys.modules, "pyarrow", None)

    with pytest.raises(MissingExtraError, match=r"pip install 'fxcortex-sources\[parquet\]'"):
        FileSource().configure(location=str(path)).fetch(FetchWindow())
    # a CSV needs no extra
    assert (
        len(
            list(FileSource(now=lambda: NOW).configure(location=str(csv_path)).fetch(FetchWindow()))
        )
        == 3
    )


def test_interval_sets_the_observation_interval() -> None:
    assert FileSource().configure(interval="15m").observation_interval == timedelta(minutes=15)
    assert FileSource().observation_interval == timedelta(days=1)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"timezone": "Mars/Olympus"}, "not an IANA timezone"),
        ({"time": "noon"}, "not a time of day"),
        ({"interval": "0d"}, "not a positive duration"),
        ({"interval": "weekly"}, "not a positive duration"),
        ({"path": "x.csv"}, "unknown options ['path']"),
    ],
)
def test_bad_options_are_refused(options: dict[str, str], reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        FileSource().configure(**options)

    assert reason in caught.value.reason


def test_the_plugin_registers_the_file_source() -> None:
    registered: list[FileSource] = []
    fxcortex_register_sources(registered.append)

    assert [source.name for source in registered] == ["file"]


# Refusals, each naming the line and column


HEADER = b"observed_at,base,quote,rate,kind\n"


@pytest.mark.parametrize(
    ("payload", "location", "reason"),
    [
        (HEADER + b"2026-03-02T13:00:00Z,EUR,USD\n", "rates.csv line 2", "3 cells for 5 columns"),
        (
            HEADER + b"2026-03-02T13:00:00Z,EUR,USD,1.08,mid,extra\n",
            "rates.csv line 2",
            "6 cells for 5 columns",
        ),
        (
            HEADER + b"2026-03-02T13:00:00Z,EUR,USD,1.0x,\n",
            "rates.csv line 2 column rate",
            "'1.0x' is not a number",
        ),
        (
            HEADER + b"2026-03-02T13:00:00Z,EUR,USD,-1.08,\n",
            "rates.csv line 2 column rate",
            "not a positive number",
        ),
        (HEADER + b"2026-03-02T13:00:00Z,EUR,USD,0,\n", "rates.csv line 2 column rate", "positive"),
        (
            HEADER + b"2026-03-02T13:00:00Z,EUR,USD,NaN,\n",
            "rates.csv line 2 column rate",
            "positive",
        ),
        (HEADER + b"2026-03-02T13:00:00Z,EUR,USD,,\n", "rates.csv line 2 column rate", "empty"),
        (
            HEADER + b"2026-03-02T13:00:00Z,EUR,XYZ,1.08,\n",
            "rates.csv line 2 column quote",
            "unknown currency code 'XYZ'",
        ),
        (
            HEADER + b"2026-03-02T13:00:00Z,EUR,EUR,1.08,\n",
            "rates.csv line 2 column quote",
            "base and quote are both EUR",
        ),
        (
            HEADER + b"2026-03-02T13:00:00Z,EUR,USD,1.08,fix\n",
            "rates.csv line 2 column kind",
            "kind 'fix' is not one of mid, bid, ask, buy, sell",
        ),
        (
            HEADER + b"02/03/2026,EUR,USD,1.08,\n",
            "rates.csv line 2 column observed_at",
            "not an ISO 8601 date or time",
        ),
        (
            HEADER + b"2026-03-02T13:00:00,EUR,USD,1.08,\n",
            "rates.csv line 2 column observed_at",
            "has no UTC offset",
        ),
        (
            HEADER + b"2026-03-02,EUR,USD,1.08,\n",
            "rates.csv line 2 column observed_at",
            "is a date: set the timezone option",
        ),
        (
            HEADER + b"2026-12-02T13:00:00Z,EUR,USD,1.08,\n",
            "rates.csv line 2 column observed_at",
            "is in the future",
        ),
        (
            HEADER
            + b"2026-03-02T13:00:00Z,EUR,USD,1.08,\n2026-03-02T14:00:00+01:00,EUR,USD,1.09,mid\n",
            "rates.csv line 3",
            "EUR/USD mid at 2026-03-02T13:00:00+00:00 appears twice (first at rates.csv line 2)",
        ),
        (HEADER + b'2026-03-02T13:00:00Z,"EUR"x,USD,1.08,\n', "rates.csv line 2", "malformed CSV"),
        (b"", "rates.csv", "the file is empty"),
        (HEADER, "rates.csv", "no data rows"),
        (b"observed_at,base,rate\n2026-03-02T13:00:00Z,EUR,1.08\n", "rates.csv", "['quote']"),
        (
            b"observed_at,pair,base,quote,rate\n",
            "rates.csv",
            "either a pair column or base and quote",
        ),
        (b"observed_at,rate,rate,pair\n", "rates.csv", "columns ['rate'] appear twice"),
        (
            b"observed_at,pair,rate\n2026-03-02T13:00:00Z,EURO,1.08\n",
            "rates.csv line 2 column pair",
            "not BASE/QUOTE",
        ),
        (
            b"observed_at,pair,rate\n2026-03-02T13:00:00Z,EUR/ABC,1.08\n",
            "rates.csv line 2 column pair",
            "unknown currency code 'ABC'",
        ),
        (b"observed_at,pair,rate\n\xff\xfe1", "rates.csv", "not UTF-8 text"),
        (
            b"<!DOCTYPE html><html><body>Not found</body></html>",
            "rates.csv",
            "an HTML page, not a CSV file",
        ),
        (b"observed_at,pair,rate\x00\n", "rates.csv", "NUL bytes"),
    ],
)
def test_broken_files_are_refused_naming_line_column_and_reason(
    payload: bytes, location: str, reason: str
) -> None:
    error = refusal(payload)

    assert error.location == location
    assert reason in error.reason


def valid_quotes_or_source_error(payload: bytes) -> None:
    try:
        quotes = read(payload)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "file"
        assert refused.location and refused.location.startswith("rates.csv")
    else:
        assert quotes
    assert all(q.rate > 0 and q.observed_at.tzinfo is UTC for q in quotes)


@given(st.binary(max_size=300))
@example(b"PAR1")
@example(b"PAR1\x00\x00\x00\x00PAR1")
@example(b"observed_at,pair,rate\n9999-12-31T23:59:59-23:59,EUR/USD,1\n")
@example(b"observed_at,pair,rate\n0001-01-01T00:00:00+23:59,EUR/USD,1\n")
def test_arbitrary_bytes_parse_or_raise_a_source_error(payload: bytes) -> None:
    valid_quotes_or_source_error(payload)


Mutation = Callable[[bytes], bytes]


@st.composite
def mutations(draw: st.DrawFn, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(0, len(data) - 1)))
        action = draw(st.sampled_from(["replace", "delete", "insert", "truncate"]))
        if action == "replace" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "delete" and data:
            del data[at]
        elif action == "insert":
            data[at:at] = draw(st.sampled_from([b",", b"\n", b'"', b"-", b"9", b"\xd9", b" "]))
        else:
            del data[at:]
    return bytes(data)


@given(mutations(GOOD_CSV))
def test_mutations_of_a_valid_csv_parse_or_raise_a_source_error(payload: bytes) -> None:
    valid_quotes_or_source_error(payload)


GOOD_PARQUET = parquet(
    {
        "observed_at": ["2026-03-02T13:00:00Z", "2026-03-03T13:00:00Z"],
        "pair": ["EUR/USD", "EUR/USD"],
        "rate": pyarrow.array([Decimal("1.08"), Decimal("1.09")], pyarrow.decimal128(8, 4)),
    }
)


@given(mutations(GOOD_PARQUET))
def test_mutations_of_a_valid_parquet_file_parse_or_raise_a_source_error(payload: bytes) -> None:
    valid_quotes_or_source_error(payload)
