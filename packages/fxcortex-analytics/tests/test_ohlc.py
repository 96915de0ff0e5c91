"""OHLC bars: formulas, resolutions, and streaming equals batch under any delivery."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics.buckets import Resolution
from fxcortex.analytics.ohlc import OhlcAnalyzer, layout_for
from fxcortex.core import ChangeOp, Quote, RateChange
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

DAILY = {"test": timedelta(days=1)}
TICKS = {"test": timedelta(seconds=1)}


def naive_bucket(resolution: str, moment: datetime) -> datetime:
    """An independent bucket rule, written with calendar arithmetic rather than numpy."""
    if resolution == "minute":
        return moment.replace(second=0, microsecond=0)
    if resolution == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if resolution == "day":
        return day
    if resolution == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def naive_bars(
    quotes: list[Quote], resolutions: tuple[str, ...]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """OHLC recomputed once from a final set of observations, one quote at a time."""
    groups: dict[tuple[Any, ...], list[Quote]] = defaultdict(list)
    for q in quotes:
        for resolution in resolutions:
            key = (*q.series, resolution, naive_bucket(resolution, q.observed_at))
            groups[key].append(q)
    bars = {}
    for key, members in groups.items():
        members.sort(key=lambda q: q.observed_at)
        rates = [q.rate for q in members]
        bars[key] = {
            "open": rates[0],
            "high": max(rates),
            "low": min(rates),
            "close": rates[-1],
            "observations": len(members),
        }
    return bars


def visible(harness: AnalyzerHarness) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {
        key: {name: row[name] for name in ("open", "high", "low", "close", "observations")}
        for key, row in harness.rows("ohlc").items()
    }


def test_a_week_of_daily_fixes_makes_one_weekly_bar_with_its_extremes() -> None:
    log = ChangeLog()
    for day, rate in zip(range(8, 13), ["1.10", "1.15", "1.05", "1.12", "1.11"], strict=True):
        log.upsert(quote(rate=rate, observed_at=datetime(2024, 1, day, 13, 15, tzinfo=UTC)))
    harness = AnalyzerHarness(OhlcAnalyzer(), intervals=DAILY)
    harness.feed(log.changes)
    week = harness.rows("ohlc")[
        ("test", "EUR", "USD", "mid", "week", datetime(2024, 1, 8, tzinfo=UTC))
    ]
    assert (week["open"], week["high"], week["low"], week["close"]) == (
        Decimal("1.10"),
        Decimal("1.15"),
        Decimal("1.05"),
        Decimal("1.11"),
    )
    assert week["observations"] == 5


def test_daily_fixes_get_weekly_and_monthly_bars_and_ticks_get_every_resolution() -> None:
    assert layout_for(timedelta(days=1))[0] == (Resolution.WEEK, Resolution.MONTH)
    assert layout_for(timedelta(seconds=1))[0] == tuple(Resolution)
    assert layout_for(None)[0] == tuple(Resolution)


def test_revision_of_a_past_fix_rewrites_its_monthly_bar() -> None:
    log = ChangeLog()
    first = quote(rate="1.10", observed_at="2024-02-01T13:15:00+00:00")
    log.upsert(first)
    log.upsert(quote(rate="1.20", observed_at="2024-02-02T13:15:00+00:00"))
    harness = AnalyzerHarness(OhlcAnalyzer(), intervals=DAILY)
    harness.feed(log.changes)
    revision = log.upsert(quote(rate="1.30", observed_at="2024-02-01T13:15:00+00:00"))
    assert revision is not None
    harness.feed([revision])
    month = harness.rows("ohlc")[
        ("test", "EUR", "USD", "mid", "month", datetime(2024, 2, 1, tzinfo=UTC))
    ]
    assert (month["open"], month["high"], month["close"]) == (
        Decimal("1.30"),
        Decimal("1.30"),
        Decimal("1.20"),
    )


def test_deleting_the_only_fix_of_a_month_withdraws_its_bars() -> None:
    log = ChangeLog()
    lone = quote(observed_at="2024-03-05T13:15:00+00:00")
    log.upsert(lone)
    harness = AnalyzerHarness(OhlcAnalyzer(), intervals=DAILY)
    harness.feed(log.changes)
    assert len(harness.rows("ohlc")) == 2
    deletion = log.delete(lone.key)
    assert deletion is not None
    writes = harness.feed([deletion])
    assert harness.rows("ohlc") == {}
    assert all(writes[0].deleted)


def test_a_redelivered_batch_after_a_newer_one_changes_nothing() -> None:
    log = ChangeLog()
    log.upsert(quote(rate="1.10"))
    old_batch = list(log.changes)
    log.upsert(quote(rate="1.50"))  # a revision of the same fix
    harness = AnalyzerHarness(OhlcAnalyzer(), intervals=DAILY)
    harness.feed(log.changes)
    before = visible(harness)
    harness.feed(old_batch)
    assert visible(harness) == before
    assert next(iter(before.values()))["close"] == Decimal("1.50")


def test_an_update_that_moves_an_observation_to_another_month_moves_its_bars() -> None:
    moved_from = quote(rate="1.1", observed_at="2024-01-31T13:15:00+00:00")
    moved_to = quote(rate="1.1", observed_at="2024-02-01T13:15:00+00:00")
    changes = [
        RateChange(
            op=ChangeOp.CREATE, position=1, committed_at=moved_from.observed_at, after=moved_from
        ),
        RateChange(
            op=ChangeOp.UPDATE,
            position=2,
            committed_at=moved_from.observed_at,
            before=moved_from,
            after=moved_to,
        ),
    ]
    harness = AnalyzerHarness(OhlcAnalyzer(), intervals=DAILY)
    harness.feed(changes[:1])
    harness.feed(changes[1:])
    months = {key[5] for key in harness.rows("ohlc") if key[4] == "month"}
    assert months == {datetime(2024, 2, 1, tzinfo=UTC)}


# --- streaming equals batch ---------------------------------------------------------------

PAIRS = ["EUR/USD", "EUR/JPY", "USD/IRR"]
RATES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4).filter(
    lambda d: d > 0
)


def _moments(first: date, days: int, intraday: bool) -> st.SearchStrategy[datetime]:
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    if intraday:
        return st.integers(0, days * 86_400 - 1).map(lambda s: start + timedelta(seconds=s))
    return st.integers(0, days - 1).map(lambda d: start + timedelta(days=d, hours=13, minutes=15))


def operations(intraday: bool) -> st.SearchStrategy[list[tuple[str, Any]]]:
    # Late January to early March: weekly buckets straddle month ends.
    when = _moments(date(2024, 1, 22), 3 if intraday else 45, intraday)
    upsert = st.tuples(st.just("upsert"), st.tuples(st.sampled_from(PAIRS), RATES, when))
    delete = st.tuples(st.just("delete"), st.integers(0, 10_000))
    return st.lists(st.one_of(upsert, upsert, delete), min_size=1, max_size=60)


def build_log(ops: list[tuple[str, Any]]) -> ChangeLog:
    log = ChangeLog()
    for kind, argument in ops:
        if kind == "upsert":
            pair, rate, when = argument
            log.upsert(quote(pair=pair, rate=str(rate), observed_at=when))
        elif log.rows:
            keys = sorted(log.rows, key=repr)
            log.delete(keys[argument % len(keys)])
    return log


@st.composite
def deliveries(draw: st.DrawFn, changes: list[RateChange]) -> list[tuple[list[RateChange], bool]]:
    """Batches in order, with re-deliveries and crashes (a batch processed without its state)."""
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(changes) - 1)), max_size=6)))
    batches = [changes[a:b] for a, b in zip([0, *cuts], [*cuts, len(changes)], strict=True)]
    plan: list[tuple[list[RateChange], bool]] = []
    for index, batch in enumerate(batches):
        if draw(st.booleans()) and draw(st.booleans()):
            plan.append((batch, False))  # crashed after writing, before committing its state
        plan.append((batch, True))
        if index and draw(st.integers(0, 4)) == 0:
            plan.append((batches[draw(st.integers(0, index))], True))  # an old batch re-delivered
    return plan


@given(data=st.data(), intraday=st.booleans())
def test_streamed_bars_equal_bars_recomputed_from_the_final_observations(
    data: st.DataObject, intraday: bool
) -> None:
    log = build_log(data.draw(operations(intraday)))
    intervals = TICKS if intraday else DAILY
    harness = AnalyzerHarness(OhlcAnalyzer(), intervals=intervals)
    for batch, commit in data.draw(deliveries(log.changes)):
        harness.feed(batch, commit_state=commit)
    resolutions = tuple(r.value for r in layout_for(intervals["test"])[0])
    assert visible(harness) == naive_bars(list(log.rows.values()), resolutions)


@given(
    micros=st.integers(-2_000_000_000_000_000, 4_000_000_000_000_000),
    resolution=st.sampled_from(list(Resolution)),
)
def test_one_timestamp_and_an_array_of_them_fall_in_the_same_bucket(
    micros: int, resolution: Resolution
) -> None:
    from fxcortex.analytics.buckets import bucket_end, bucket_start, bucket_starts, from_micros

    start = bucket_start(resolution, micros)
    assert start == int(bucket_starts(resolution, np.array([micros], dtype=np.int64))[0])
    assert start <= micros < bucket_end(resolution, start)
    assert from_micros(start) == naive_bucket(resolution.value, from_micros(micros))


@given(
    seconds=st.lists(st.integers(0, 3 * 86_400), min_size=1, max_size=300, unique=True),
    data=st.data(),
    resolution=st.sampled_from(list(Resolution)),
)
def test_bars_of_many_observations_equal_bars_of_few(
    seconds: list[int], data: st.DataObject, resolution: Resolution
) -> None:
    # Partitions of more than a few observations take the vectorised path, smaller ones plain
    # Python: both must find the same bars.
    from fxcortex.analytics.ohlc import _few_pieces, _pieces

    start = 1_706_745_600_000_000  # 2024-02-01T00:00:00Z
    times = np.array(sorted(start + s * 1_000_000 for s in seconds), dtype=np.int64)
    rates = data.draw(st.lists(RATES, min_size=len(times), max_size=len(times), unique=True))
    texts = [str(rate) for rate in rates]
    floats = np.array(texts, dtype=np.float64)
    vectorised = dict(_pieces(resolution, times, floats, texts))
    plain = dict(_few_pieces(resolution, times.tolist(), floats.tolist(), texts))
    assert vectorised == plain


def test_a_bucket_of_many_observations_takes_the_last_high_and_the_first_low_of_equal_rates() -> (
    None
):
    # equal as floats, different as decimals: which one a bar shows must not depend on chance
    from fxcortex.analytics.ohlc import _FEW, _pieces

    start = 1_706_745_600_000_000  # 2024-02-01T00:00:00Z, a minute bucket of one-second ticks
    count = _FEW + 6
    texts = ["1.5"] * count
    texts[3], texts[40] = "1.2", "1.20000000000000000001"  # the lows
    texts[10], texts[50] = "1.9", "1.90000000000000000001"  # the highs
    times = np.array([start + n * 1_000_000 for n in range(count)], dtype=np.int64)
    floats = np.array(texts, dtype=np.float64)

    (bucket, bar), *rest = _pieces(Resolution.HOUR, times, floats, texts)

    assert not rest and bucket == start
    assert bar[5] == "1.90000000000000000001" and bar[7] == "1.2"
    assert bar[8] == count
