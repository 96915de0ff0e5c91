"""The converter: models travel through JSON unchanged, and bad data is refused by field path."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import UTC, ChangeOp, ConversionError, Pair, Quote, QuoteKind, RateChange
from fxcortex.core.convert import structure, unstructure
from fxcortex.core.currencies import KNOWN_CODES
from fxcortex.core.testing import quote

CODES = sorted(KNOWN_CODES)


def positive_decimals() -> st.SearchStrategy[Decimal]:
    """Positive finite decimals, from tiny to huge and with trailing zeros kept."""
    scaled = st.builds(
        lambda digits, exponent: Decimal(digits).scaleb(exponent),
        st.integers(min_value=1, max_value=10**30),
        st.integers(min_value=-30, max_value=30),
    )
    plain = st.decimals(
        min_value=Decimal("0.000001"),
        max_value=Decimal("1e9"),
        allow_nan=False,
        allow_infinity=False,
    ).filter(lambda value: value > 0)
    return st.one_of(scaled, plain)


utc_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@st.composite
def pairs(draw: st.DrawFn) -> Pair:
    base = draw(st.sampled_from(CODES))
    other = draw(st.sampled_from(CODES).filter(lambda code: code != base))
    return Pair.of(base, other)


quotes = st.builds(
    Quote,
    pair=pairs(),
    rate=positive_decimals(),
    observed_at=utc_datetimes,
    source=st.text(min_size=1, max_size=12),
    kind=st.sampled_from(QuoteKind),
)


@st.composite
def rate_changes(draw: st.DrawFn) -> RateChange:
    op = draw(st.sampled_from(ChangeOp))
    before = draw(quotes) if op in (ChangeOp.UPDATE, ChangeOp.DELETE) else None
    after = draw(quotes) if op is not ChangeOp.DELETE else None
    return RateChange(
        op=op,
        position=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        committed_at=draw(utc_datetimes),
        before=before,
        after=after,
    )


def through_json(value: Any) -> Any:
    return json.loads(json.dumps(unstructure(value)))


@given(quotes)
def test_a_quote_round_trips_through_json_unchanged(original: Quote) -> None:
    back = structure(through_json(original), Quote)

    assert back == original
    assert str(back.rate) == str(original.rate)  # the same digits, not only the same value
    assert back.observed_at.tzinfo is UTC


@given(rate_changes())
def test_a_rate_change_round_trips_through_json_unchanged(original: RateChange) -> None:
    back = structure(through_json(original), RateChange)

    assert back == original
    assert unstructure(back) == unstructure(original)


def test_a_quote_unstructures_to_json_ready_text() -> None:
    data = through_json(quote(rate="1.10", observed_at="2024-01-02T13:15:00+00:00"))

    assert data == {
        "pair": "EUR/USD",
        "rate": "1.10",
        "observed_at": "2024-01-02T13:15:00+00:00",
        "source": "test",
        "kind": "mid",
    }


def test_a_datetime_with_another_offset_comes_back_as_utc() -> None:
    data = through_json(quote())
    data["observed_at"] = "2024-01-02T14:15:00+01:00"

    back = structure(data, Quote)

    assert back.observed_at == datetime(2024, 1, 2, 13, 15, tzinfo=UTC)
    assert back.observed_at.utcoffset() == timedelta(0)


def errors_of(data: Any, target: type[Any]) -> list[str]:
    with pytest.raises(ConversionError) as caught:
        structure(data, target)
    assert caught.value.target == target.__name__
    return caught.value.errors


def change_data() -> dict[str, Any]:
    made = RateChange(
        op=ChangeOp.UPDATE,
        position=3,
        committed_at=datetime(2024, 1, 3, tzinfo=UTC),
        before=quote(rate="1.1"),
        after=quote(rate="1.2"),
    )
    data: dict[str, Any] = through_json(made)
    return data


def test_an_unknown_key_is_refused_naming_it() -> None:
    data = through_json(quote())
    data["bid"] = "1.0"

    assert errors_of(data, Quote) == ["extra fields found (bid) @ $"]


def test_an_unknown_key_in_a_nested_image_is_refused_at_its_path() -> None:
    data = change_data()
    data["after"]["venue"] = "x"

    assert errors_of(data, RateChange) == ["extra fields found (venue) @ $.after"]


def test_a_float_rate_is_refused_at_its_path() -> None:
    data = through_json(quote())
    data["rate"] = 1.1

    (error,) = errors_of(data, Quote)
    assert error.endswith("@ $.rate")
    assert "float" in error


@pytest.mark.parametrize("image", ["before", "after"])
def test_a_float_rate_in_an_image_is_refused_at_its_full_path(image: str) -> None:
    data = change_data()
    data[image]["rate"] = 1.2

    (error,) = errors_of(data, RateChange)
    assert error.endswith(f"@ $.{image}.rate")


def test_every_failing_field_is_named() -> None:
    data = change_data()
    data["after"]["rate"] = 1.2
    data["after"]["pair"] = "EUR/ABC"
    data["committed_at"] = "yesterday"

    paths = {error.rpartition(" @ ")[2] for error in errors_of(data, RateChange)}

    assert paths == {"$.after.rate", "$.after.pair", "$.committed_at"}


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("rate", "abc", "'abc' is not a number"),
        ("observed_at", "2024-01-02T13:15:00", "naive datetime"),
        ("observed_at", 1704201300, "ISO 8601"),
        ("pair", "EUR/ABC", "'ABC' is not an ISO 4217 currency code"),
        ("pair", ["EUR", "USD"], "pair must be a string"),
        ("kind", "mean", "QuoteKind"),
    ],
)
def test_a_bad_field_is_refused_at_its_path_saying_what_is_wrong(
    field: str, value: Any, says: str
) -> None:
    data = through_json(quote())
    data[field] = value

    (error,) = errors_of(data, Quote)
    assert error.endswith(f"@ $.{field}")
    assert says in error


def test_a_missing_field_is_refused_at_its_path() -> None:
    data = through_json(quote())
    del data["source"]

    (error,) = errors_of(data, Quote)
    assert error.endswith("@ $.source")


def test_a_negative_rate_in_an_image_is_refused_at_the_rate_s_full_path() -> None:
    # The module promises paths like $.after.rate; a value refused by the model's own validator
    # must be located as precisely as one refused by the converter (a float, above).
    data = change_data()
    data["after"]["rate"] = "-1.2"

    (error,) = errors_of(data, RateChange)
    assert "positive" in error
    assert error.endswith("@ $.after.rate")


def test_images_that_do_not_match_the_op_are_refused() -> None:
    data = change_data()
    data["after"] = None

    (error,) = errors_of(data, RateChange)
    assert "an update needs both images" in error


def test_the_conversion_error_message_names_the_target_and_the_paths() -> None:
    data = through_json(quote())
    data["rate"] = 1.1

    with pytest.raises(ConversionError, match=r"cannot build Quote: .*@ \$\.rate"):
        structure(data, Quote)
