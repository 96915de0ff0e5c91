"""Every ECB format reads to the same quotes: history and daily CSV, zipped or not, and the XML."""

from __future__ import annotations

import importlib.resources
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from fxcortex.core import UTC, FetchWindow, Pair, Quote, QuoteKind
from fxcortex.sources.ecb import concertation_time, parse

# The example of SOURCES.md, verbatim: the daily XML as the ECB serves it.
DAILY_XML = b"""<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
 <gesmes:subject>Reference rates</gesmes:subject>
 <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
 <Cube><Cube time='2026-09-04'>
   <Cube currency='USD' rate='1.1622'/><Cube currency='JPY' rate='181.59'/><Cube currency='GBP' rate='0.85898'/>
 </Cube></Cube></gesmes:Envelope>
"""  # noqa: E501

DAILY_CSV = b"Date, USD, JPY, \n30 October 2026, 1.1172, 175.68, \n"

SEPT_4_2026 = datetime(2026, 9, 4, 12, 15, tzinfo=UTC)  # 14:15 CEST
OCT_30_2026 = datetime(2026, 10, 30, 13, 15, tzinfo=UTC)  # 14:15 CET, after the clocks went back


def rates(quotes: list[Quote]) -> dict[tuple[str, date], str]:
    return {(q.pair.quote.code, q.observed_at.date()): str(q.rate) for q in quotes}


# XML


def test_the_daily_xml_reads_to_one_euro_mid_quote_per_currency() -> None:
    quotes = parse(DAILY_XML, label="eurofxref-daily.xml")

    assert quotes == [
        Quote(
            pair=Pair.of("EUR", code),
            rate=Decimal(rate),
            observed_at=SEPT_4_2026,
            source="ecb",
            kind=QuoteKind.MID,
        )
        for code, rate in [("USD", "1.1622"), ("JPY", "181.59"), ("GBP", "0.85898")]
    ]


def test_the_90_day_xml_reads_every_day(payloads: Any) -> None:
    document = payloads.xml(
        {
            "2026-09-04": {"USD": "1.1622", "JPY": "181.59"},
            "2026-09-03": {"USD": "1.1615", "JPY": "181.02"},
            "2026-09-02": {"USD": "1.1601", "JPY": "180.7"},
        }
    )

    quotes = parse(document, label="eurofxref-hist-90d.xml")

    assert rates(quotes) == {
        ("USD", date(2026, 9, 4)): "1.1622",
        ("JPY", date(2026, 9, 4)): "181.59",
        ("USD", date(2026, 9, 3)): "1.1615",
        ("JPY", date(2026, 9, 3)): "181.02",
        ("USD", date(2026, 9, 2)): "1.1601",
        ("JPY", date(2026, 9, 2)): "180.7",
    }


def test_the_xml_reads_legacy_currencies(payloads: Any) -> None:
    quotes = parse(payloads.xml({"2007-12-31": {"CYP": "0.585274", "MTL": "0.4293"}}))

    assert rates(quotes) == {
        ("CYP", date(2007, 12, 31)): "0.585274",
        ("MTL", date(2007, 12, 31)): "0.4293",
    }
    assert all(q.pair.quote.is_legacy for q in quotes)


def test_the_format_is_recognised_from_the_bytes_not_the_name(payloads: Any) -> None:
    as_xml = parse(DAILY_XML, label="eurofxref-hist.zip")
    csv = payloads.history_csv(["USD"], [("2026-09-04", ["1.1622"])])
    as_csv = parse(csv, label="eurofxref-daily.xml")

    assert len(as_xml) == 3
    assert rates(as_csv) == {("USD", date(2026, 9, 4)): "1.1622"}


def test_xml_after_leading_whitespace_is_still_xml() -> None:
    assert len(parse(b"\n\n  " + DAILY_XML)) == 3


# CSV


def test_the_history_csv_reads_every_rate_of_every_day(payloads: Any) -> None:
    csv = payloads.history_csv(
        ["USD", "JPY", "CYP"],
        [("2024-01-03", ["1.0919", "155.79", "N/A"]), ("2024-01-02", ["1.0956", "159.17", "N/A"])],
    )

    quotes = parse(csv)

    assert rates(quotes) == {
        ("USD", date(2024, 1, 3)): "1.0919",
        ("JPY", date(2024, 1, 3)): "155.79",
        ("USD", date(2024, 1, 2)): "1.0956",
        ("JPY", date(2024, 1, 2)): "159.17",
    }
    assert {q.pair.base.code for q in quotes} == {"EUR"}
    assert {q.kind for q in quotes} == {QuoteKind.MID}


def test_the_daily_csv_variant_reads_its_written_out_date_and_spaced_cells() -> None:
    quotes = parse(DAILY_CSV, label="eurofxref.csv")

    assert rates(quotes) == {
        ("USD", date(2026, 10, 30)): "1.1172",
        ("JPY", date(2026, 10, 30)): "175.68",
    }
    assert {q.observed_at for q in quotes} == {OCT_30_2026}


def test_the_real_daily_csv_reads_its_29_currencies() -> None:
    resource = importlib.resources.files("currency_converter") / "eurofxref.csv"

    quotes = parse(resource.read_bytes(), label="eurofxref.csv")

    assert len(quotes) == 29
    assert rates(quotes)[("USD", date(2026, 10, 30))] == "1.1172"
    assert rates(quotes)[("GBP", date(2026, 10, 30))] == "0.83380"  # trailing zero kept


@pytest.mark.parametrize(
    ("member", "content"),
    [
        ("eurofxref.csv", DAILY_CSV),
        ("eurofxref-hist.csv", b"Date,USD,JPY,\n2026-10-30,1.1172,175.68,\n"),
    ],
)
def test_a_zipped_csv_reads_like_the_csv_itself(payloads: Any, member: str, content: bytes) -> None:
    assert parse(payloads.zipped({member: content})) == parse(content)


def test_a_zip_may_hold_other_files_beside_its_csv(payloads: Any) -> None:
    archive = payloads.zipped({"README.txt": b"hello", "eurofxref.csv": DAILY_CSV})

    assert parse(archive) == parse(DAILY_CSV)


@pytest.mark.parametrize(
    "variant",
    [b"\xef\xbb\xbf" + DAILY_CSV, DAILY_CSV.replace(b"\n", b"\r\n"), DAILY_CSV + b"\n\n,\n"],
    ids=["byte-order-mark", "crlf", "blank-lines-at-the-end"],
)
def test_csv_dressing_does_not_change_the_quotes(variant: bytes) -> None:
    assert parse(variant) == parse(DAILY_CSV)


def test_na_cells_are_skipped(payloads: Any) -> None:
    csv = payloads.history_csv(
        ["USD", "BGN", "RUB"],
        [("2026-10-30", ["1.1172", "N/A", "N/A"]), ("2022-02-28", ["1.1199", "1.9558", "N/A"])],
    )

    assert rates(parse(csv)) == {
        ("USD", date(2026, 10, 30)): "1.1172",
        ("USD", date(2022, 2, 28)): "1.1199",
        ("BGN", date(2022, 2, 28)): "1.9558",
    }


def test_a_day_with_no_rate_at_all_is_no_error(payloads: Any) -> None:
    csv = payloads.history_csv(["CYP", "USD"], [("2026-10-30", ["N/A", "N/A"])])

    assert parse(csv) == []


# Windows


@pytest.fixture
def five_days(payloads: Any) -> bytes:
    made: bytes = payloads.history_csv(
        ["USD"], [(f"2024-01-{day:02d}", [f"1.0{day}"]) for day in (8, 5, 4, 3, 2)]
    )
    return made


@pytest.mark.parametrize(
    ("window", "days"),
    [
        (FetchWindow(), [2, 3, 4, 5, 8]),
        (FetchWindow(since=date(2024, 1, 4)), [4, 5, 8]),
        (FetchWindow(until=date(2024, 1, 4)), [2, 3, 4]),
        (FetchWindow(since=date(2024, 1, 3), until=date(2024, 1, 5)), [3, 4, 5]),
        (FetchWindow(since=date(2024, 1, 6), until=date(2024, 1, 7)), []),
        (FetchWindow(since=date(2024, 1, 9)), []),
    ],
)
def test_only_days_inside_the_window_both_ends_included_are_read(
    five_days: bytes, window: FetchWindow, days: list[int]
) -> None:
    quotes = parse(five_days, window=window)

    assert sorted(q.observed_at.day for q in quotes) == days


def test_the_window_filters_xml_too(payloads: Any) -> None:
    document = payloads.xml({"2026-09-04": {"USD": "1.1622"}, "2026-09-03": {"USD": "1.1615"}})

    quotes = parse(document, window=FetchWindow(until=date(2026, 9, 3)))

    assert rates(quotes) == {("USD", date(2026, 9, 3)): "1.1615"}


def test_quotes_carry_the_source_name_they_are_parsed_for(payloads: Any) -> None:
    quotes = parse(payloads.history_csv(["USD"], [("2024-01-02", ["1.1"])]), source="ecb-mirror")

    assert {q.source for q in quotes} == {"ecb-mirror"}


# Observation time


@pytest.mark.parametrize(
    ("day", "utc_hour"),
    [
        (date(2024, 1, 15), 13),  # winter: CET, UTC+1
        (date(2024, 7, 15), 12),  # summer: CEST, UTC+2
        (date(2024, 3, 29), 13),  # the Friday before clocks go forward on 31 March
        (date(2024, 4, 2), 12),
        (date(2024, 10, 25), 12),  # the Friday before clocks go back on 27 October
        (date(2024, 10, 28), 13),
        (date(1999, 1, 4), 13),
    ],
)
def test_a_fix_is_observed_at_14_15_frankfurt_time_in_utc(day: date, utc_hour: int) -> None:
    expected = datetime(day.year, day.month, day.day, utc_hour, 15, tzinfo=UTC)

    assert concertation_time(day) == expected
    assert concertation_time(day).tzinfo is UTC


@pytest.mark.parametrize(("day", "utc_hour"), [("2024-01-15", 13), ("2024-07-15", 12)])
def test_parsed_quotes_are_observed_at_the_concertation(
    payloads: Any, day: str, utc_hour: int
) -> None:
    (quote,) = parse(payloads.history_csv(["USD"], [(day, ["1.09"])]))

    assert quote.observed_at == datetime.fromisoformat(day).replace(
        hour=utc_hour, minute=15, tzinfo=UTC
    )
    assert quote.observed_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_a_fix_dated_tomorrow_is_accepted(payloads: Any) -> None:
    # Tomorrow in UTC terms can already be today in Asia; only further ahead is an error.
    csv = payloads.history_csv(["USD"], [("2024-01-03", ["1.09"])])

    assert len(parse(csv, today=date(2024, 1, 2))) == 1
