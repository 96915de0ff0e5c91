"""The value types: currencies, pairs, quotes, changes and fetch windows keep their contracts."""

from __future__ import annotations

import string
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import (
    UTC,
    ChangeOp,
    Currency,
    FetchWindow,
    InvalidValueError,
    Pair,
    Quote,
    QuoteKind,
    RateChange,
)
from fxcortex.core.currencies import ACTIVE_CODES, CRYPTO_CODES, KNOWN_CODES, LEGACY_CODES
from fxcortex.core.testing import quote

WHEN = datetime(2024, 1, 2, 13, 15, tzinfo=UTC)
EUR_USD = Pair.of("EUR", "USD")
ISO_CODES = ACTIVE_CODES | LEGACY_CODES
ECB_LEGACY = ["CYP", "EEK", "LTL", "LVL", "MTL", "ROL", "SIT", "SKK", "TRL", "HRK", "BGN"]


# Currency


@pytest.mark.parametrize("code", ["EUR", "USD", "JPY", "CHF", "XAU", "ZWG", "VED"])
def test_an_active_iso_code_is_a_currency_that_is_not_legacy(code: str) -> None:
    currency = Currency(code)

    assert currency.code == code
    assert str(currency) == code
    assert not currency.is_legacy


@pytest.mark.parametrize("code", ECB_LEGACY)
def test_a_withdrawn_code_of_the_ecb_history_is_a_legacy_currency(code: str) -> None:
    currency = Currency(code)

    assert currency.code == code
    assert currency.is_legacy


@pytest.mark.parametrize("code", ["ABC", "usd", "Usd", "US", "USDX", "", " USD", "EURO"])
def test_an_unknown_code_is_refused_naming_the_code(code: str) -> None:
    with pytest.raises(InvalidValueError, match="not an ISO 4217 currency code") as caught:
        Currency(code)

    assert repr(code) in str(caught.value)


@given(st.text(alphabet=string.ascii_uppercase, min_size=3, max_size=3))
def test_three_letters_are_a_currency_exactly_when_iso_4217_knows_them(code: str) -> None:
    if code in KNOWN_CODES:
        assert Currency(code).is_legacy == (code in LEGACY_CODES)
    else:
        with pytest.raises(InvalidValueError):
            Currency(code)


def test_no_code_is_both_active_and_legacy() -> None:
    assert not ACTIVE_CODES & LEGACY_CODES


@pytest.mark.parametrize("code", ["BTC", "USDT", "AEUR"])
def test_a_crypto_asset_is_a_currency_that_is_not_iso(code: str) -> None:
    asset = Currency(code)

    assert not asset.is_iso
    assert not asset.is_legacy


@pytest.mark.parametrize("code", ["EUR", "HRK"])
def test_active_and_legacy_codes_are_iso(code: str) -> None:
    assert Currency(code).is_iso


def test_crypto_codes_are_neither_active_nor_legacy_iso_codes() -> None:
    assert not CRYPTO_CODES & ISO_CODES


def test_currency_of_shares_one_instance_per_code() -> None:
    assert Currency.of("USD") is Currency.of("USD")
    assert Currency.of("USD") == Currency("USD")


def test_currency_of_refuses_an_unknown_code_too() -> None:
    with pytest.raises(InvalidValueError):
        Currency.of("QQQ")


def test_currencies_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        Currency("USD").code = "JPY"  # type: ignore[misc]


# Pair


@pytest.mark.parametrize(
    "text", ["EUR/USD", "eur/usd", "EURUSD", "eurusd", "EUR-USD", "EUR_USD", "  eur/usd \n"]
)
def test_pair_parse_reads_every_spelling_of_a_pair(text: str) -> None:
    assert Pair.parse(text) == EUR_USD


@pytest.mark.parametrize("text", ["EUR", "EURUSDX", "EU/USD", "EUR/", "/USD", "", "EUR/ABC", "E-U"])
def test_pair_parse_refuses_text_that_is_not_two_currencies(text: str) -> None:
    with pytest.raises(InvalidValueError):
        Pair.parse(text)


def test_pair_parse_reads_legacy_currencies() -> None:
    pair = Pair.parse("EUR/CYP")

    assert pair.quote.is_legacy
    assert str(pair) == "EUR/CYP"


@pytest.mark.parametrize("text", ["EUR/EUR", "usdusd"])
def test_a_pair_with_equal_base_and_quote_is_refused(text: str) -> None:
    with pytest.raises(InvalidValueError, match="base and quote are both"):
        Pair.parse(text)


def test_a_pair_built_directly_with_equal_base_and_quote_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="both JPY"):
        Pair(Currency("JPY"), Currency("JPY"))


def test_the_inverse_of_a_pair_swaps_base_and_quote() -> None:
    inverse = EUR_USD.inverse()

    assert inverse == Pair.of("USD", "EUR")
    assert inverse.base.code == "USD"
    assert inverse.quote.code == "EUR"
    assert inverse.inverse() == EUR_USD


@given(st.sampled_from(sorted(KNOWN_CODES)), st.sampled_from(sorted(KNOWN_CODES)))
def test_a_pair_reads_back_from_its_text(base: str, quote_code: str) -> None:
    if base == quote_code:
        return
    pair = Pair.of(base, quote_code)

    assert str(pair) == f"{base}/{quote_code}"
    assert Pair.parse(str(pair)) == pair
    assert Pair.parse(f"{base}-{quote_code}".lower()) == pair


@given(st.sampled_from(sorted(ISO_CODES)), st.sampled_from(sorted(ISO_CODES)))
def test_two_iso_codes_written_together_read_as_a_pair(base: str, quote_code: str) -> None:
    if base == quote_code:
        return

    assert Pair.parse(f"{base}{quote_code}".lower()) == Pair.of(base, quote_code)


# Quote


def make_quote(**changes: object) -> Quote:
    fields: dict[str, object] = {
        "pair": EUR_USD,
        "rate": Decimal("1.1"),
        "observed_at": WHEN,
        "source": "ecb",
    }
    fields.update(changes)
    return Quote(**fields)  # type: ignore[arg-type]


def test_a_quote_keeps_its_decimal_rate_with_every_digit() -> None:
    made = make_quote(rate=Decimal("1.10000"))

    assert str(made.rate) == "1.10000"
    assert made.kind is QuoteKind.MID


@pytest.mark.parametrize("rate", [1.1, 1, True, "1.1"], ids=["float", "int", "bool", "str"])
def test_a_quote_refuses_a_rate_that_is_not_a_decimal(rate: object) -> None:
    with pytest.raises(InvalidValueError, match="rate: must be a Decimal"):
        make_quote(rate=rate)


@pytest.mark.parametrize("text", ["0", "-0", "-1.5", "NaN", "sNaN", "Infinity", "-Infinity"])
def test_a_quote_refuses_a_rate_that_is_not_positive_and_finite(text: str) -> None:
    with pytest.raises(InvalidValueError, match="rate: must be a positive finite number"):
        make_quote(rate=Decimal(text))


def test_a_naive_datetime_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidValueError, match="observed_at: must be timezone-aware UTC"):
        make_quote(observed_at=datetime(2024, 1, 2, 13, 15))


@pytest.mark.parametrize(
    "tz",
    [timezone(timedelta(hours=2)), timezone(timedelta(minutes=-30)), ZoneInfo("Europe/Berlin")],
    ids=["+02:00", "-00:30", "Europe/Berlin"],
)
def test_a_datetime_with_a_non_utc_offset_is_refused(tz: timezone | ZoneInfo) -> None:
    with pytest.raises(InvalidValueError, match="observed_at"):
        make_quote(observed_at=datetime(2024, 1, 2, 14, 15, tzinfo=tz))


def test_a_date_is_not_a_datetime() -> None:
    with pytest.raises(InvalidValueError, match="observed_at: must be a datetime"):
        make_quote(observed_at=date(2024, 1, 2))


@pytest.mark.parametrize("source", ["", None])
def test_a_quote_needs_a_source_name(source: object) -> None:
    with pytest.raises(InvalidValueError, match="source"):
        make_quote(source=source)


def test_quote_of_converts_an_aware_datetime_to_utc() -> None:
    frankfurt = datetime(2024, 7, 15, 14, 15, tzinfo=ZoneInfo("Europe/Berlin"))

    made = Quote.of("EUR/USD", "1.0876", frankfurt, "ecb")

    assert made.observed_at == datetime(2024, 7, 15, 12, 15, tzinfo=UTC)
    assert made.observed_at.utcoffset() == timedelta(0)
    assert made.observed_at.tzinfo is UTC


def test_quote_of_reads_loose_inputs() -> None:
    made = Quote.of("usd-jpy", 150, WHEN, "test", "bid")

    assert made.pair == Pair.of("USD", "JPY")
    assert made.rate == Decimal(150)
    assert type(made.rate) is Decimal
    assert made.kind is QuoteKind.BID


def test_quote_of_keeps_the_digits_of_a_text_rate() -> None:
    assert str(Quote.of(EUR_USD, "0.83380", WHEN, "ecb").rate) == "0.83380"


def test_quote_of_refuses_a_naive_datetime() -> None:
    with pytest.raises(InvalidValueError, match="naive datetime"):
        Quote.of("EUR/USD", "1.1", datetime(2024, 1, 2), "ecb")


@pytest.mark.parametrize("rate", [1.1, True, None], ids=["float", "bool", "None"])
def test_quote_of_refuses_a_rate_that_has_lost_digits_or_is_missing(rate: object) -> None:
    with pytest.raises(InvalidValueError, match="rate: give a str, int or Decimal"):
        Quote.of("EUR/USD", rate, WHEN, "ecb")  # type: ignore[arg-type]


def test_quote_of_refuses_text_that_is_not_a_number_naming_it() -> None:
    with pytest.raises(InvalidValueError, match="rate: '1,1' is not a number"):
        Quote.of("EUR/USD", "1,1", WHEN, "ecb")


def test_the_key_of_a_quote_is_its_series_and_time_but_not_its_rate() -> None:
    first = quote(rate="1.1")
    revised = attrs.evolve(first, rate=Decimal("1.2"))

    assert first.key == revised.key == ("test", "EUR", "USD", "mid", first.observed_at)
    assert first.series == ("test", "EUR", "USD", "mid")
    assert first != revised


def test_evolve_validates_again() -> None:
    with pytest.raises(InvalidValueError):
        attrs.evolve(quote(), rate=Decimal("-1"))


# RateChange


def change(
    op: ChangeOp, before: Quote | None, after: Quote | None, position: int = 7
) -> RateChange:
    return RateChange(op=op, position=position, committed_at=WHEN, before=before, after=after)


OLD = quote(rate="1.1")
NEW = quote(rate="1.2")


@pytest.mark.parametrize(
    ("op", "before", "after"),
    [
        (ChangeOp.CREATE, None, NEW),
        (ChangeOp.READ, None, NEW),
        (ChangeOp.UPDATE, OLD, NEW),
        (ChangeOp.DELETE, OLD, None),
    ],
)
def test_a_change_with_the_images_of_its_op_is_accepted(
    op: ChangeOp, before: Quote | None, after: Quote | None
) -> None:
    made = change(op, before, after)

    assert made.quote == (after if after is not None else before)


@pytest.mark.parametrize(
    ("op", "before", "after", "message"),
    [
        (ChangeOp.CREATE, None, None, "op CREATE needs an after image"),
        (ChangeOp.READ, None, None, "op READ needs an after image"),
        (ChangeOp.READ, OLD, None, "op READ needs an after image"),
        (ChangeOp.UPDATE, None, NEW, "an update needs both images"),
        (ChangeOp.UPDATE, OLD, None, "an update needs both images"),
        (ChangeOp.DELETE, None, None, "a delete has only a before image"),
        (ChangeOp.DELETE, OLD, NEW, "a delete has only a before image"),
        (ChangeOp.DELETE, None, NEW, "a delete has only a before image"),
    ],
)
def test_a_change_whose_images_do_not_match_its_op_is_refused_naming_its_position(
    op: ChangeOp, before: Quote | None, after: Quote | None, message: str
) -> None:
    with pytest.raises(InvalidValueError, match=message) as caught:
        change(op, before, after, position=42)

    assert "change at 42" in str(caught.value)


@pytest.mark.parametrize("op", [ChangeOp.CREATE, ChangeOp.READ])
def test_a_create_or_snapshot_read_carrying_a_before_image_is_refused(op: ChangeOp) -> None:
    # A created (or snapshot-read) row did not exist before: Debezium sends before=null, and
    # the batch views ignore such a before image, so a producer that sends one is wrong.
    with pytest.raises(InvalidValueError, match="change at 7"):
        change(op, OLD, NEW)


@pytest.mark.parametrize("position", [-1, True, 1.0, "3"])
def test_a_change_position_must_be_a_non_negative_int(position: object) -> None:
    with pytest.raises(InvalidValueError, match="position: must be a non-negative int"):
        change(ChangeOp.CREATE, None, NEW, position=position)  # type: ignore[arg-type]


def test_a_change_committed_at_a_naive_time_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidValueError, match="committed_at"):
        RateChange(op=ChangeOp.CREATE, position=1, committed_at=datetime(2024, 1, 2), after=NEW)


# FetchWindow


def test_a_window_whose_since_is_after_its_until_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="since 2024-01-03 is after until 2024-01-02"):
        FetchWindow(since=date(2024, 1, 3), until=date(2024, 1, 2))


def test_a_window_contains_both_of_its_ends_and_nothing_beyond() -> None:
    window = FetchWindow(since=date(2024, 1, 2), until=date(2024, 1, 4))

    assert window.contains(date(2024, 1, 2))
    assert window.contains(date(2024, 1, 4))
    assert not window.contains(date(2024, 1, 1))
    assert not window.contains(date(2024, 1, 5))


def test_an_open_window_contains_every_day() -> None:
    assert FetchWindow().contains(date(1999, 1, 4))
    assert FetchWindow(since=date(2024, 1, 2)).contains(date(9999, 12, 31))
    assert FetchWindow(until=date(2024, 1, 2)).contains(date(1, 1, 1))
