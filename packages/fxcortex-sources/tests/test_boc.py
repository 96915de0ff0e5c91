"""The Bank of Canada source: the recorded Valet answer, and every way a payload can be bad."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchContext, FetchWindow, Pair, Quote, QuoteKind, Source, SourceError
from fxcortex.sources.boc import BocSource, fxcortex_register_sources, parse
from fxcortex.sources.testing import recorded_transport

FIXTURES = Path(__file__).parent / "fixtures" / "http"
URL = "https://www.bankofcanada.ca/valet/observations/group/FX_RATES_DAILY/json"
TODAY = date(2026, 11, 28)


def document(observations: list[dict[str, Any]]) -> dict[str, Any]:
    """A Valet group document shaped like the recorded one."""
    return {
        "terms": {"url": "https://www.bankofcanada.ca/terms/"},
        "groupDetail": {"label": "Daily exchange rates", "description": "…", "link": None},
        "seriesDetail": {
            "FXUSDCAD": {
                "label": "USD/CAD",
                "description": "US dollar to Canadian dollar daily exchange rate",
                "dimension": {"key": "d", "name": "Date"},
            }
        },
        "observations": observations,
    }


def encoded(observations: list[dict[str, Any]]) -> bytes:
    return json.dumps(document(observations)).encode()


GOOD = encoded(
    [
        {"d": "2026-01-15", "FXUSDCAD": {"v": "1.3880"}, "FXEURCAD": {"v": "1.6150"}},
        {"d": "2026-01-16", "FXUSDCAD": {"v": "1.3902"}, "FXJPYCAD": {"v": "0.008790"}},
    ]
)


def fetch_recorded(window: FetchWindow) -> list[Quote]:
    context = FetchContext(http_transport=recorded_transport(FIXTURES / "boc"))
    return list(BocSource().fetch(window, context))


def refusal(payload: bytes, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        parse(payload, label="valet.json", today=TODAY, **options)  # type: ignore[arg-type]
    assert caught.value.source == "boc"
    return caught.value


# The source


def test_the_source_declares_its_schedule_in_toronto_its_currencies_and_history() -> None:
    source = BocSource()

    assert isinstance(source, Source)
    assert source.name == "boc"
    assert source.schedule.cron == "30 16 * * 1-5"
    assert source.schedule.timezone == "America/Toronto"
    assert source.history_since == date(2017, 1, 3)
    assert source.observation_interval == timedelta(days=1)
    assert len(source.currencies) == 26 and "USD" in source.currencies
    assert "CAD" not in source.currencies


def test_the_plugin_registers_the_boc_source() -> None:
    registered: list[object] = []

    fxcortex_register_sources(registered.append)

    assert registered == [BocSource()]


def test_the_url_asks_for_the_window_and_leaves_an_open_end_open() -> None:
    source = BocSource()

    assert source.url(FetchWindow(since=date(2026, 3, 12))) == f"{URL}?start_date=2026-03-12"
    assert source.url(FetchWindow(since=date(2026, 3, 12), until=date(2026, 3, 13))) == (
        f"{URL}?start_date=2026-03-12&end_date=2026-03-13"
    )
    assert source.url(FetchWindow()) == f"{URL}?start_date=2017-01-03"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"series": "FXUSDCAD"}, "unknown options ['series']"),
        ({"timeout": "-3"}, "timeout '-3' is not a positive number of seconds"),
        ({"max_attempts": "two"}, "max_attempts 'two' is not a whole number of at least 1"),
    ],
)
def test_configure_refuses_unknown_options_and_bad_values(
    options: dict[str, str], reason: str
) -> None:
    with pytest.raises(SourceError) as caught:
        BocSource().configure(**options)

    assert caught.value.source == "boc"
    assert reason in caught.value.reason


def test_configure_sets_the_http_options_on_a_copy() -> None:
    source = BocSource().configure(timeout="5", max_attempts="2", backoff="0")

    assert (source.timeout, source.max_attempts, source.backoff) == (5.0, 2, 0.0)
    assert BocSource().max_attempts == 5


# The recorded answer


def test_the_recorded_answer_gives_23_currencies_in_cad_on_5_days() -> None:
    quotes = fetch_recorded(FetchWindow(since=date(2026, 3, 12)))

    assert len(quotes) == 23 * 5
    assert {quote.pair.quote.code for quote in quotes} == {"CAD"}
    assert set(Counter(quote.pair.base.code for quote in quotes).values()) == {5}
    assert {quote.kind for quote in quotes} == {QuoteKind.MID}
    # THB and VND are listed in seriesDetail but carry no value on these days
    assert not {"THB", "VND"} & {quote.pair.base.code for quote in quotes}


def test_fxusdcad_is_canadian_dollars_per_us_dollar_published_at_1630_toronto() -> None:
    quotes = fetch_recorded(FetchWindow(since=date(2026, 3, 12)))

    usd = [quote for quote in quotes if quote.pair == Pair.of("USD", "CAD")]
    assert [quote.rate for quote in usd] == [
        Decimal("1.3617"),
        Decimal("1.3716"),
        Decimal("1.3675"),
        Decimal("1.3699"),
        Decimal("1.3706"),
    ]
    # daylight saving time began on 2026-03-08: 16:30 EDT is 20:30 UTC
    assert usd[0].observed_at == datetime(2026, 3, 12, 20, 30, tzinfo=UTC)
    assert usd[-1].observed_at == datetime(2026, 3, 18, 20, 30, tzinfo=UTC)


def test_small_values_keep_every_digit_as_written() -> None:
    payload = (FIXTURES / "boc" / "000.body").read_bytes()

    quotes = parse(payload, window=FetchWindow(since=date(2026, 3, 16), until=date(2026, 3, 16)))

    rates = {quote.pair.base.code: quote.rate for quote in quotes}
    assert rates["JPY"] == Decimal("0.008590") and str(rates["JPY"]) == "0.008590"
    assert rates["IDR"] == Decimal("0.000080")
    assert rates["EUR"] == Decimal("1.5721")
    assert len(rates) == 23


def test_a_winter_day_is_published_at_2130_utc() -> None:
    quotes = parse(GOOD, today=TODAY)

    assert {quote.observed_at for quote in quotes} == {
        datetime(2026, 1, 15, 21, 30, tzinfo=UTC),
        datetime(2026, 1, 16, 21, 30, tzinfo=UTC),
    }
    assert [(str(quote.pair), quote.rate) for quote in quotes] == [
        ("USD/CAD", Decimal("1.3880")),
        ("EUR/CAD", Decimal("1.6150")),
        ("USD/CAD", Decimal("1.3902")),
        ("JPY/CAD", Decimal("0.008790")),
    ]


def test_the_window_keeps_only_its_days() -> None:
    quotes = parse(GOOD, window=FetchWindow(since=date(2026, 1, 16)), today=TODAY)

    assert {quote.observed_at.date() for quote in quotes} == {date(2026, 1, 16)}


def test_empty_values_and_series_that_are_not_currencies_are_skipped() -> None:
    payload = encoded(
        [
            {
                "d": "2026-01-15",
                "FXUSDCAD": {"v": ""},
                "CEER_BROAD": {"v": "104.2"},
                "FXEURCAD": {"v": "1.6150"},
            }
        ]
    )

    quotes = parse(payload, today=TODAY)

    assert [str(quote.pair) for quote in quotes] == ["EUR/CAD"]


def test_a_json_number_is_read_as_a_decimal_never_a_float() -> None:
    payload = b'{"observations":[{"d":"2026-01-15","FXUSDCAD":{"v":1.3880000000000000001}}]}'

    (quote,) = parse(payload, today=TODAY)

    assert quote.rate == Decimal("1.3880000000000000001")


def test_no_observations_is_no_quotes() -> None:
    assert parse(encoded([]), today=TODAY) == []


def test_an_unchanged_answer_yields_nothing() -> None:
    context = FetchContext(http_transport=httpx.MockTransport(lambda request: httpx.Response(304)))

    assert list(BocSource().fetch(FetchWindow(since=date(2026, 3, 12)), context)) == []


# Bad payloads


def test_an_html_page_served_as_data_is_refused() -> None:
    error = refusal(b"<!DOCTYPE html>\n<html><head><title>Maintenance</title></head></html>")

    assert error.location == "valet.json"
    assert "HTML page" in error.reason


@pytest.mark.parametrize(
    "payload",
    [GOOD[: len(GOOD) // 2], b"", '{"observations": []}'.encode("utf-16")[:-1], b"\xff\xfe{"],
)
def test_truncated_or_undecodable_json_is_refused(payload: bytes) -> None:
    error = refusal(payload)

    assert error.location == "valet.json"
    assert "not valid JSON" in error.reason


@pytest.mark.parametrize(
    "payload", [b"[]", b'{"seriesDetail": {}}', b'{"observations": {"d": "2026-01-15"}}']
)
def test_a_document_without_an_observations_list_is_refused(payload: bytes) -> None:
    assert "no 'observations' list" in refusal(payload).reason


@pytest.mark.parametrize(
    ("observation", "reason"),
    [
        ({"FXUSDCAD": {"v": "1.3880"}}, "the date 'd' is missing"),
        ({"d": "15/01/2026", "FXUSDCAD": {"v": "1.3880"}}, "'15/01/2026' is not a date"),
        ({"d": "2026-01-15", "FXUSDCAD": {"v": "1,3880"}}, "rate '1,3880' is not a number"),
        ({"d": "2026-01-15", "FXUSDCAD": {"v": "-1.3880"}}, "rate '-1.3880' is not a positive"),
        ({"d": "2026-01-15", "FXUSDCAD": {"v": "0"}}, "rate '0' is not a positive number"),
        ({"d": "2026-01-15", "FXUSDCAD": {"v": True}}, "rate True is not a number"),
        ({"d": "2026-01-15", "FXUSDCAD": "1.3880"}, "not an object {'v': …}"),
        ({"d": "2026-01-15", "FXUSDXYZ": {"v": "1.3880"}}, "unknown currency code 'XYZ'"),
        ({"d": "2026-01-15", "FXCADCAD": {"v": "1"}}, "quotes CAD against itself"),
        ({"d": "2026-12-15", "FXUSDCAD": {"v": "1.3880"}}, "2026-12-15 is in the future"),
    ],
)
def test_a_bad_observation_is_refused_naming_it(observation: dict[str, Any], reason: str) -> None:
    error = refusal(encoded([{"d": "2026-01-14", "FXUSDCAD": {"v": "1.3871"}}, observation]))

    assert reason in error.reason
    assert error.location is not None
    assert error.location.startswith("valet.json observations[1]")


def test_the_location_names_the_day_and_the_series() -> None:
    error = refusal(encoded([{"d": "2026-01-15", "FXUSDCAD": {"v": "n/a"}}]))

    assert error.location == "valet.json observations[0] d=2026-01-15 FXUSDCAD"


def test_a_nan_number_is_refused() -> None:
    error = refusal(b'{"observations":[{"d":"2026-01-15","FXUSDCAD":{"v":NaN}}]}')

    assert "is not a positive number" in error.reason


def test_the_same_day_twice_is_refused() -> None:
    observation = {"d": "2026-01-15", "FXUSDCAD": {"v": "1.3880"}}

    error = refusal(encoded([observation, observation]))

    assert error.location == "valet.json observations[1] d=2026-01-15"
    assert "2026-01-15 appears twice" in error.reason


def test_the_same_series_twice_on_a_day_is_refused() -> None:
    payload = (
        b'{"observations":[{"d":"2026-01-15","FXUSDCAD":{"v":"1.3880"},"FXUSDCAD":{"v":"1.39"}}]}'
    )

    error = refusal(payload)

    assert error.reason == "key 'FXUSDCAD' appears twice in one object"
    assert error.location == "valet.json"


def test_an_observation_that_is_not_an_object_is_refused() -> None:
    assert "not an object" in refusal(encoded(["2026-01-15"])).reason  # type: ignore[list-item]


# HTTP failures


def test_a_404_is_a_source_error_naming_the_url() -> None:
    context = FetchContext(http_transport=httpx.MockTransport(lambda request: httpx.Response(404)))

    with pytest.raises(SourceError) as caught:
        list(BocSource().fetch(FetchWindow(since=date(2026, 3, 12)), context))

    assert caught.value.source == "boc"
    assert "HTTP 404" in caught.value.reason
    assert caught.value.location == f"{URL}?start_date=2026-03-12"


def test_server_errors_fail_after_the_configured_attempts() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(502)

    source = BocSource().configure(max_attempts="2", backoff="0")

    with pytest.raises(SourceError, match="after 2 attempts: HTTP 502"):
        list(source.fetch(FetchWindow(), FetchContext(http_transport=httpx.MockTransport(handler))))
    assert len(calls) == 2


# Anything else is a SourceError, never another exception


def check_outcome(payload: bytes) -> None:
    """Parsing either gives valid quotes in CAD or raises a `SourceError` of this source."""
    try:
        quotes = parse(payload, label="fuzzed", today=TODAY)
    except SourceError as error:
        refused: SourceError | None = error
        quotes = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "boc"
        assert refused.reason
        assert refused.location and refused.location.startswith("fuzzed")
    for quote in quotes:
        assert quote.pair.base != quote.pair.quote
        assert quote.rate.is_finite() and quote.rate > 0
        assert quote.kind is QuoteKind.MID
        assert quote.observed_at.tzinfo is UTC
        assert quote.observed_at.date() <= TODAY + timedelta(days=2)
    assert len({quote.key for quote in quotes}) == len(quotes)


def mutate(payload: bytes, changes: list[tuple[str, int, bytes]]) -> bytes:
    data = bytearray(payload)
    for kind, position, chunk in changes:
        at = position % (len(data) + 1)
        if kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(min_value=0, max_value=1000),
        st.binary(min_size=1, max_size=6)
        | st.sampled_from([b"{", b"]", b'"', b",", b"null", b"1e9999", b"-", b"NaN", b"\xff"]),
    ),
    min_size=1,
    max_size=4,
)


@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=300).map(lambda tail: b'{"observations":[' + tail),
    )
)
def test_arbitrary_bytes_parse_to_valid_quotes_or_a_source_error(payload: bytes) -> None:
    check_outcome(payload)


@given(mutations)
def test_a_mutated_document_parses_to_valid_quotes_or_a_source_error(
    changes: list[tuple[str, int, bytes]],
) -> None:
    check_outcome(mutate(GOOD, changes))


@given(
    st.recursive(
        st.none() | st.booleans() | st.text(max_size=12) | st.integers() | st.floats(),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(["d", "v", "FXUSDCAD", "observations"]), children)
        ),
        max_leaves=12,
    )
)
def test_any_json_shape_parses_to_valid_quotes_or_a_source_error(value: object) -> None:
    check_outcome(json.dumps({"observations": [value]}).encode())
