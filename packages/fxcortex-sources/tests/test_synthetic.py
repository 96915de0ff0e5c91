"""The synthetic source: seeded GBM ticks, deterministic, quantised to Decimals, fast."""

from __future__ import annotations

import itertools
import math
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core import FetchWindow, MissingExtraError, Pair, Quote, QuoteKind, SourceError
from fxcortex.sources.synthetic import (
    SyntheticSource,
    default_decimals,
    fxcortex_register_sources,
    parse_pairs,
)

OPEN = FetchWindow()


def generate(window: FetchWindow = OPEN, **options: str) -> list[Quote]:
    return list(SyntheticSource().configure(**options).fetch(window))


def test_the_same_seed_gives_the_same_ticks_and_another_seed_different_ones() -> None:
    first = generate(pairs="EUR/USD=1.08", count="500", seed="42")
    again = generate(pairs="EUR/USD=1.08", count="500", seed="42")
    other = generate(pairs="EUR/USD=1.08", count="500", seed="43")

    assert first == again
    assert [q.rate for q in first] != [q.rate for q in other]


def test_a_longer_run_starts_with_the_ticks_of_a_shorter_one() -> None:
    # more than one chunk of 65,536 ticks, so the chunk boundary is crossed
    short = generate(pairs="EUR/USD=1.08", count="70000", seed="5")
    longer = generate(pairs="EUR/USD=1.08", count="70010", seed="5")

    assert longer[:70000] == short


def test_the_first_tick_is_the_start_rate_at_the_start_instant() -> None:
    quotes = generate(
        pairs="EUR/USD=1.08,USD/JPY=150", count="3", start="2026-03-02T09:00:00+01:00"
    )

    assert quotes[0] == Quote(
        pair=Pair.of("EUR", "USD"),
        rate=Decimal("1.08"),
        observed_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
        source="synthetic",
        kind=QuoteKind.MID,
    )
    assert quotes[1].pair == Pair.of("USD", "JPY") and quotes[1].rate == Decimal(150)


def test_every_pair_gets_one_quote_per_tick_spaced_one_over_rate_seconds() -> None:
    source = SyntheticSource().configure(pairs="EUR/USD=1.08,GBP/USD=1.27", rate="4", count="10")
    quotes = list(source.fetch(OPEN))

    assert len(quotes) == 20
    eur = [q.observed_at for q in quotes if q.pair == Pair.of("EUR", "USD")]
    assert [b - a for a, b in itertools.pairwise(eur)] == [timedelta(seconds=0.25)] * 9
    assert source.observation_interval == timedelta(seconds=0.25)
    assert Counter(q.observed_at for q in quotes) == Counter({moment: 2 for moment in eur})


def test_a_fractional_rate_rounds_tick_times_to_the_microsecond() -> None:
    quotes = generate(pairs="EUR/USD=1.08", rate="3", count="4")

    offsets = [q.observed_at - quotes[0].observed_at for q in quotes]
    assert offsets == [timedelta(microseconds=us) for us in (0, 333_333, 666_667, 1_000_000)]


def test_rates_keep_six_significant_digits_of_the_start_rate() -> None:
    quotes = generate(pairs="EUR/USD=1.08,USD/JPY=150,USD/IRR=1050000,JPY/USD=0.0067", count="50")

    exponents = {q.pair.quote.code + q.pair.base.code: q.rate.as_tuple().exponent for q in quotes}
    assert exponents == {"USDEUR": -5, "JPYUSD": -3, "IRRUSD": 0, "USDJPY": -8}
    assert all(type(q.rate) is Decimal for q in quotes)


def test_decimals_overrides_the_precision_of_every_pair() -> None:
    quotes = generate(pairs="EUR/USD=1.08,USD/JPY=150", decimals="2", count="10")

    assert {q.rate.as_tuple().exponent for q in quotes} == {-2}


@pytest.mark.parametrize(
    ("start", "decimals"),
    [("1.08", 5), ("0.92", 6), ("9.99", 5), ("10", 4), ("150", 3), ("1050000", 0), ("0.0067", 8)],
)
def test_default_decimals_follow_the_magnitude_of_the_start_rate(start: str, decimals: int) -> None:
    assert default_decimals(Decimal(start)) == decimals


def test_a_spread_gives_a_bid_below_an_ask_and_no_mid() -> None:
    quotes = generate(pairs="EUR/USD=1.08", count="1000", spread="2", seed="3")

    kinds = Counter(q.kind for q in quotes)
    assert kinds == {QuoteKind.BID: 1000, QuoteKind.ASK: 1000}
    by_time: dict[datetime, dict[QuoteKind, Decimal]] = {}
    for q in quotes:
        by_time.setdefault(q.observed_at, {})[q.kind] = q.rate
    for sides in by_time.values():
        assert sides[QuoteKind.BID] < sides[QuoteKind.ASK]
        # 2 bps of 1.08 is 0.000216: the rounded sides are 21 or 22 units of 0.00001 apart, or 23
        assert (
            Decimal("0.00021") <= sides[QuoteKind.ASK] - sides[QuoteKind.BID] <= Decimal("0.00023")
        )


def test_a_tiny_spread_still_keeps_the_ask_one_decimal_above_the_bid() -> None:
    quotes = generate(pairs="EUR/USD=1.08", count="200", spread="0.001")

    bids = [q.rate for q in quotes if q.kind is QuoteKind.BID]
    asks = [q.rate for q in quotes if q.kind is QuoteKind.ASK]
    assert all(ask - bid >= Decimal("0.00001") for bid, ask in zip(bids, asks, strict=True))


def test_the_realised_volatility_matches_the_configured_one() -> None:
    quotes = generate(pairs="USD/IRR=1000000000", count="20000", volatility="0.2", rate="1")

    logs = [math.log(q.rate) for q in quotes]
    returns = [b - a for a, b in itertools.pairwise(logs)]
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    annualised = math.sqrt(variance * 365.25 * 86_400)
    assert annualised == pytest.approx(0.2, rel=0.03)


def test_zero_volatility_holds_the_start_rate() -> None:
    quotes = generate(pairs="EUR/USD=1.08", count="100", volatility="0")

    assert {q.rate for q in quotes} == {Decimal("1.08")}


def test_a_window_starts_at_midnight_utc_of_since_and_ends_before_the_day_after_until() -> None:
    window = FetchWindow(since=date(2026, 5, 4), until=date(2026, 5, 4))
    quotes = generate(window, pairs="EUR/USD=1.08", rate="0.01")  # one tick per 100 s

    assert quotes[0].observed_at == datetime(2026, 5, 4, tzinfo=UTC)
    assert quotes[-1].observed_at == datetime(2026, 5, 4, 23, 58, 20, tzinfo=UTC)
    assert len(quotes) == 864


def test_count_caps_a_window() -> None:
    window = FetchWindow(since=date(2026, 5, 4), until=date(2026, 5, 6))

    assert len(generate(window, pairs="EUR/USD=1.08", count="10")) == 10


def test_without_count_or_until_a_fetch_makes_a_thousand_ticks() -> None:
    assert len(generate(pairs="EUR/USD=1.08")) == 1000


def test_a_window_of_too_many_ticks_is_refused_before_generating() -> None:
    window = FetchWindow(since=date(2020, 1, 1), until=date(2026, 1, 1))

    with pytest.raises(SourceError, match="more than 50,000,000"):
        SyntheticSource().configure(rate="10").fetch(window)


def test_a_million_ticks_generate_in_a_few_seconds() -> None:
    source = SyntheticSource().configure(pairs="EUR/USD=1.08", count="1000000", seed="1")

    started = time.perf_counter()
    count = sum(1 for _ in source.fetch(OPEN))
    elapsed = time.perf_counter() - started

    assert count == 1_000_000
    assert elapsed < 10, f"1,000,000 ticks took {elapsed:.1f} s"


def test_the_currencies_are_those_of_the_pairs() -> None:
    source = SyntheticSource().configure(pairs="EUR/USD=1.08,USD/JPY=150")

    assert source.currencies == ("EUR", "JPY", "USD")


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"pairs": "EUR/USD"}, "no start rate"),
        ({"pairs": "EUR/XYZ=1"}, "'XYZ' is not an ISO 4217"),
        ({"pairs": "EUR/USD=abc"}, "is not a number"),
        ({"pairs": "EUR/USD=-1"}, "is not positive"),
        ({"pairs": "EUR/USD=1,EUR/USD=2"}, "listed twice"),
        ({"pairs": " , "}, "no pairs"),
        ({"rate": "0"}, "not positive"),
        ({"rate": "inf"}, "not a finite number"),
        ({"volatility": "-0.1"}, "negative"),
        ({"seed": "x"}, "not a whole number"),
        ({"count": "0"}, "not between 1"),
        ({"start": "2024-01-01T00:00:00"}, "no UTC offset"),
        ({"start": "yesterday"}, "not an ISO 8601 time"),
        ({"spread": "-1"}, "non-negative"),
        ({"decimals": "13"}, "not between 0 and 12"),
        ({"colour": "red"}, "unknown options ['colour']"),
    ],
)
def test_bad_options_are_refused_naming_the_reason(options: dict[str, str], reason: str) -> None:
    with pytest.raises(SourceError) as caught:
        SyntheticSource().configure(**options)

    assert caught.value.source == "synthetic"
    assert reason in caught.value.reason


def test_without_numpy_a_fetch_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "numpy", None)

    with pytest.raises(MissingExtraError, match=r"pip install 'fxcortex-sources\[synthetic\]'"):
        SyntheticSource().fetch(OPEN)


def test_the_plugin_registers_the_synthetic_source() -> None:
    registered: list[SyntheticSource] = []
    fxcortex_register_sources(registered.append)

    assert [source.name for source in registered] == ["synthetic"]


@given(st.text(max_size=80))
def test_any_pairs_text_reads_to_specs_or_a_source_error(text: str) -> None:
    try:
        specs = parse_pairs(text)
    except SourceError as error:
        refused: SourceError | None = error
        specs = []
    else:
        refused = None
    if refused is not None:
        assert refused.source == "synthetic"
    else:
        assert specs and all(spec.start_rate > 0 for spec in specs)


@given(
    seed=st.integers(0, 2**32),
    volatility=st.floats(0, 2),
    rate=st.floats(0.001, 1000),
    spread=st.sampled_from(["0", "0.5", "10"]),
)
def test_any_seed_volatility_and_rate_give_valid_positive_quotes(
    seed: int, volatility: float, rate: float, spread: str
) -> None:
    quotes = generate(
        pairs="EUR/USD=1.08,USD/JPY=150",
        count="50",
        seed=str(seed),
        volatility=repr(volatility),
        rate=repr(rate),
        spread=spread,
    )

    assert len(quotes) == 100 * (1 if spread == "0" else 2)
    assert all(q.rate > 0 and q.observed_at.tzinfo is UTC for q in quotes)
