"""Bad ECB payloads fail with a `SourceError` naming the source, where, and why; never otherwise."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fxcortex.core import UTC, FetchWindow, QuoteKind, SourceError
from fxcortex.sources.ecb import parse

Refusal = Callable[..., SourceError]

GOOD_CSV = b"Date,USD,JPY,CYP,\n2024-01-03,1.0919,155.79,N/A,\n2024-01-02,1.0956,159.17,N/A,\n"
GOOD_XML = (
    b'<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"'
    b' xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">'
    b"<Cube><Cube time='2024-01-03'><Cube currency='USD' rate='1.0919'/>"
    b"<Cube currency='JPY' rate='155.79'/></Cube>"
    b"<Cube time='2024-01-02'><Cube currency='USD' rate='1.0956'/></Cube></Cube>"
    b"</gesmes:Envelope>"
)
TODAY = date(2026, 11, 28)


def zipped(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in members.items():
            # a fixed time keeps the bytes, and so the offsets patched below, the same every run
            archive.writestr(
                zipfile.ZipInfo(name, date_time=(2024, 1, 3, 16, 0, 0)),
                content,
                compress_type=compression,
            )
    return buffer.getvalue()


GOOD_ZIP = zipped({"eurofxref-hist.csv": GOOD_CSV})


# The container


def test_a_truncated_zip_is_refused_naming_the_file(refusal: Refusal) -> None:
    error = refusal(GOOD_ZIP[: len(GOOD_ZIP) // 2], label="eurofxref-hist.zip")

    assert error.source == "ecb"
    assert error.location == "eurofxref-hist.zip"
    assert "not a readable zip" in error.reason


def test_a_zip_without_a_csv_is_refused(refusal: Refusal) -> None:
    error = refusal(zipped({"eurofxref.xml": GOOD_XML}), label="eurofxref.zip")

    assert error.location == "eurofxref.zip"
    assert "expected one CSV in the zip, found none" in error.reason


def test_a_zip_with_two_csvs_is_refused_naming_them(refusal: Refusal) -> None:
    error = refusal(zipped({"a.csv": GOOD_CSV, "b.csv": GOOD_CSV}), label="eurofxref.zip")

    assert "'a.csv'" in error.reason
    assert "'b.csv'" in error.reason


def patched(archive: bytes, anchor: bytes, offset: int, value: bytes) -> bytes:
    """``archive`` with ``value`` written ``offset`` bytes after the last ``anchor``."""
    data = bytearray(archive)
    at = data.rfind(anchor) + offset
    data[at : at + len(value)] = value
    return bytes(data)


LOCAL, CENTRAL, END = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"


@pytest.mark.parametrize(
    "damaged",
    [
        # the CRC and sizes are intact, only the deflate stream is damaged (zlib.error)
        patched(GOOD_ZIP, LOCAL, 30 + len("eurofxref-hist.csv") + 4, b"\xff" * 4),
        # method 99 is what AES-encrypted entries declare (NotImplementedError)
        patched(GOOD_ZIP, CENTRAL, 10, (99).to_bytes(2, "little")),
        # the "encrypted" flag (RuntimeError: password required)
        patched(GOOD_ZIP, CENTRAL, 8, b"\x01"),
        # a zip version from the future (NotImplementedError)
        patched(GOOD_ZIP, CENTRAL, 6, b"\xff\x00"),
        # the central directory said to start past where it is (ValueError: negative seek)
        patched(GOOD_ZIP, END, 16, b"\xff"),
    ],
    ids=[
        "corrupt-deflate-stream",
        "unsupported-method",
        "encrypted",
        "future-version",
        "central-directory-offset-too-large",
    ],
)
def test_a_damaged_zip_is_refused_as_a_source_error(refusal: Refusal, damaged: bytes) -> None:
    error = refusal(damaged, label="eurofxref-hist.zip")

    assert error.source == "ecb"
    assert error.location is not None
    assert error.location.startswith("eurofxref-hist.zip")


def test_a_member_name_is_part_of_the_location_of_an_error_inside_it(refusal: Refusal) -> None:
    archive = zipped({"eurofxref-hist.csv": GOOD_CSV.replace(b"1.0956", b"one")})

    error = refusal(archive, label="eurofxref-hist.zip")

    assert error.location == "eurofxref-hist.zip:eurofxref-hist.csv line 3 column USD"


@pytest.mark.parametrize("payload", [b"", b"   \n\t\r\n"], ids=["empty", "whitespace"])
def test_an_empty_payload_is_refused(refusal: Refusal, payload: bytes) -> None:
    error = refusal(payload, label="eurofxref-daily.xml")

    assert error.location == "eurofxref-daily.xml"
    assert "empty" in error.reason


def test_an_empty_csv_in_a_zip_is_refused(refusal: Refusal) -> None:
    error = refusal(zipped({"eurofxref.csv": b""}), label="eurofxref.zip")

    assert "empty" in error.reason


@pytest.mark.parametrize(
    "page",
    [
        b"<!DOCTYPE html>\n<html><head><title>503</title></head><body><h1>Service Unavailable"
        b"</h1><p>Please retry.<br></p></body></html>",
        b"<html><body><h1>Maintenance</h1></body></html>",
        b"<?xml version='1.0'?><error><message>rate limited</message></error>",
    ],
    ids=["html", "xhtml", "xml-error"],
)
def test_an_error_page_served_in_place_of_data_is_refused(refusal: Refusal, page: bytes) -> None:
    error = refusal(page, label="eurofxref-daily.xml")

    assert error.source == "ecb"
    assert error.location == "eurofxref-daily.xml"


@pytest.mark.parametrize(
    "payload",
    [GOOD_CSV.replace(b"155.79", b"155\xb779"), GOOD_CSV.decode().encode("utf-16")],
    ids=["latin-1-byte", "utf-16"],
)
def test_bytes_that_are_not_utf8_are_refused(refusal: Refusal, payload: bytes) -> None:
    error = refusal(payload, label="eurofxref-hist.csv")

    assert error.location == "eurofxref-hist.csv"
    assert "not UTF-8" in error.reason


# The CSV


@pytest.mark.parametrize(
    "payload",
    [b"2024-01-02,1.1,\n", b"Datum,USD,\n2024-01-02,1.1,\n", b"\n\nDate,USD,\n"],
    ids=["no-header", "wrong-first-column", "header-not-first"],
)
def test_a_csv_without_its_header_is_refused(refusal: Refusal, payload: bytes) -> None:
    error = refusal(payload, label="eurofxref-hist.csv")

    assert error.location == "eurofxref-hist.csv line 1"
    assert "missing header" in error.reason


def test_a_csv_with_a_header_and_no_rows_is_refused(refusal: Refusal) -> None:
    error = refusal(b"Date,USD,JPY,\n", label="eurofxref-hist.csv")

    assert "no data rows" in error.reason


def test_an_unknown_currency_code_in_the_header_is_refused_naming_its_column(
    refusal: Refusal,
) -> None:
    error = refusal(GOOD_CSV.replace(b"JPY", b"XYZ"), label="eurofxref-hist.csv")

    assert error.location == "eurofxref-hist.csv line 1 column 3"
    assert "unknown currency code 'XYZ'" in error.reason


def test_the_euro_in_the_header_is_refused_as_a_source_error(refusal: Refusal) -> None:
    # EUR is a valid code, but EUR/EUR is no pair: the parser must say so, not the model.
    error = refusal(GOOD_CSV.replace(b"JPY", b"EUR"), label="eurofxref-hist.csv")

    assert error.source == "ecb"
    assert "EUR" in error.reason


def test_a_currency_twice_in_the_header_is_refused(refusal: Refusal) -> None:
    # Two columns for one currency would load two rates for one key from a single fetch.
    error = refusal(GOOD_CSV.replace(b"JPY", b"USD"), label="eurofxref-hist.csv")

    assert error.source == "ecb"
    assert error.location is not None
    assert error.location.startswith("eurofxref-hist.csv line 1")
    assert "USD" in error.reason


@pytest.mark.parametrize("text", ["one", "1,09", "1.09.2", "0x1F", "--1"])
def test_a_rate_that_is_not_a_number_is_refused_naming_line_and_currency(
    refusal: Refusal, text: str
) -> None:
    csv = GOOD_CSV.replace(b"159.17", f'"{text}"'.encode())

    error = refusal(csv, label="eurofxref-hist.csv")

    assert error.location == "eurofxref-hist.csv line 3 column JPY"
    assert "is not a number" in error.reason
    assert repr(text) in error.reason


@pytest.mark.parametrize("text", ["-1.0956", "0", "0.0000", "Infinity", "-Infinity"])
def test_a_rate_that_is_not_positive_and_finite_is_refused(refusal: Refusal, text: str) -> None:
    error = refusal(GOOD_CSV.replace(b"1.0919", text.encode()), label="eurofxref-hist.csv")

    assert error.location == "eurofxref-hist.csv line 2 column USD"
    assert "is not a positive number" in error.reason


@pytest.mark.parametrize(
    ("row", "says"),
    [
        (b"2024-01-01,1.09", "1 values for 3 currencies"),
        (b"2024-01-01,1.09,155.1", "2 values for 3 currencies"),
        (b"2024-01-01,1.09,155.1,N/A,7.1,", "4 values for 3 currencies"),
    ],
    ids=["one-value", "two-values", "one-too-many"],
)
def test_a_row_with_the_wrong_number_of_values_is_refused(
    refusal: Refusal, row: bytes, says: str
) -> None:
    error = refusal(GOOD_CSV + row + b"\n", label="eurofxref-hist.csv")

    assert error.location == "eurofxref-hist.csv line 4"
    assert says in error.reason


def test_a_row_with_a_bad_date_is_refused(refusal: Refusal) -> None:
    error = refusal(GOOD_CSV.replace(b"2024-01-02", b"2024-02-30"), label="eurofxref-hist.csv")

    assert error.location == "eurofxref-hist.csv line 3"
    assert "'2024-02-30' is not a date" in error.reason


def test_a_date_that_appears_twice_is_refused_at_its_second_line(refusal: Refusal) -> None:
    error = refusal(GOOD_CSV + b"2024-01-03,1.09,155.1,N/A,\n", label="eurofxref-hist.csv")

    assert error.location == "eurofxref-hist.csv line 4"
    assert "2024-01-03 appears twice" in error.reason


def test_a_date_more_than_a_day_ahead_is_refused_as_the_future(refusal: Refusal) -> None:
    error = refusal(GOOD_CSV, label="eurofxref-hist.csv", today=date(2024, 1, 1))

    assert error.location == "eurofxref-hist.csv line 2"
    assert "2024-01-03 is in the future" in error.reason


def test_a_future_date_is_refused_even_outside_the_window(refusal: Refusal) -> None:
    error = refusal(GOOD_CSV, today=date(2024, 1, 1), window=FetchWindow(until=date(2024, 1, 2)))

    assert "in the future" in error.reason


@pytest.mark.parametrize(
    "payload",
    [b"Date,USD,\r2024-01-02,1.1,\r", b"Date,USD,\n2024-01-02,1.1\r,\n"],
    ids=["old-mac-line-ends", "stray-carriage-return"],
)
def test_a_carriage_return_reads_as_a_line_end_not_as_a_crash(payload: bytes) -> None:
    quotes = parse(payload, label="eurofxref-hist.csv", today=date(2024, 1, 3))

    assert [(q.pair.quote.code, q.rate, q.observed_at.date()) for q in quotes] == [
        ("USD", Decimal("1.1"), date(2024, 1, 2))
    ]


# The XML


def test_a_non_numeric_xml_rate_is_refused_naming_the_day_and_currency(refusal: Refusal) -> None:
    error = refusal(GOOD_XML.replace(b"155.79", b"n/a!"), label="eurofxref-hist-90d.xml")

    assert error.location == "eurofxref-hist-90d.xml Cube time=2024-01-03 currency=JPY"
    assert "'n/a!' is not a number" in error.reason


def test_a_negative_xml_rate_is_refused(refusal: Refusal) -> None:
    error = refusal(GOOD_XML.replace(b"1.0956", b"-1.0956"), label="eurofxref-daily.xml")

    assert error.location == "eurofxref-daily.xml Cube time=2024-01-02 currency=USD"
    assert "not a positive number" in error.reason


def test_an_unknown_xml_currency_is_refused_naming_the_day(refusal: Refusal) -> None:
    error = refusal(GOOD_XML.replace(b"'JPY'", b"'YEN'"), label="eurofxref-daily.xml")

    assert error.location == "eurofxref-daily.xml Cube time=2024-01-03"
    assert "unknown currency code 'YEN'" in error.reason


def test_the_euro_as_an_xml_currency_is_refused_as_a_source_error(refusal: Refusal) -> None:
    error = refusal(GOOD_XML.replace(b"'JPY'", b"'EUR'"), label="eurofxref-daily.xml")

    assert error.source == "ecb"


def test_a_bad_xml_day_is_refused(refusal: Refusal) -> None:
    error = refusal(GOOD_XML.replace(b"2024-01-02", b"yesterday"), label="eurofxref-daily.xml")

    assert error.location == "eurofxref-daily.xml Cube time=yesterday"
    assert "'yesterday' is not a date" in error.reason


def test_an_xml_day_that_appears_twice_is_refused(refusal: Refusal) -> None:
    error = refusal(GOOD_XML.replace(b"2024-01-02", b"2024-01-03"), label="eurofxref-hist.xml")

    assert error.location == "eurofxref-hist.xml Cube time=2024-01-03"
    assert "appears twice" in error.reason


def test_an_xml_day_in_the_future_is_refused(refusal: Refusal) -> None:
    error = refusal(GOOD_XML, label="eurofxref-daily.xml", today=date(2024, 1, 1))

    assert error.location == "eurofxref-daily.xml Cube time=2024-01-03"


def test_truncated_xml_is_refused(refusal: Refusal) -> None:
    error = refusal(GOOD_XML[:-30], label="eurofxref-daily.xml")

    assert error.location == "eurofxref-daily.xml"
    assert "malformed XML" in error.reason


def test_xml_declaring_an_encoding_the_parser_cannot_read_is_refused(refusal: Refusal) -> None:
    payload = b'<?xml version="1.0" encoding="big5"?>' + GOOD_XML

    error = refusal(payload, label="eurofxref-daily.xml")

    assert error.location == "eurofxref-daily.xml"


# Never any other exception


def check_outcome(payload: bytes) -> None:
    """Parsing either gives valid ECB quotes or raises a `SourceError` of the ECB."""
    try:
        quotes = parse(payload, label="fuzzed", today=TODAY)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "ecb"
        assert refused.location
        assert refused.location.startswith("fuzzed")
    for quote in quotes:
        assert quote.pair.base.code == "EUR"
        assert quote.pair.quote.code != "EUR"
        assert quote.rate.is_finite()
        assert quote.rate > 0
        assert quote.kind is QuoteKind.MID
        assert quote.source == "ecb"
        assert quote.observed_at.tzinfo is UTC
        assert quote.observed_at.date() <= date(2026, 11, 29)
    assert len({q.key for q in quotes}) == len(quotes)


INTERESTING = [
    b",",
    b"\n",
    b"\r",
    b'"',
    b"-",
    b".",
    b"0",
    b"9",
    b"E",
    b" ",
    b"N/A",
    b"\x00",
    b"\xff",
    b"<",
    b">",
    b"'",
    b"Date",
    b"EUR",
    b"USD",
    b"2024-01-02",
    b"1e999",
]

mutations = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(min_value=0, max_value=4096),
        st.one_of(st.sampled_from(INTERESTING), st.binary(min_size=1, max_size=4)),
    ),
    min_size=1,
    max_size=6,
)


def mutate(base: bytes, changes: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(base)
    for kind, position, chunk in changes:
        at = position % (len(data) + 1)
        if kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=400).map(lambda tail: b"Date," + tail),
        st.binary(max_size=400).map(lambda tail: b"<" + tail),
        st.binary(max_size=400).map(lambda tail: b"PK\x03\x04" + tail),
    )
)
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(payload: bytes) -> None:
    check_outcome(payload)


@given(mutations)
@example([("insert", 10, b"\r")])
@example([("replace", 9, b"EUR")])
def test_a_mutated_csv_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD_CSV, changes))


@given(mutations)
def test_a_mutated_xml_document_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD_XML, changes))


@given(mutations)
@example([("replace", 52, b"\xff\xff\xff\xff")])
@example([("replace", 190, b"\xff")])
def test_a_mutated_zip_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD_ZIP, changes))
