"""Gaps: weekends and missed days carried forward, intraday silences, streaming equals batch."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics import gaps
from fxcortex.core import FetchWindow
from fxcortex.core.strategies import build_log, deliveries, operations, recompute
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

DAILY = {"test": timedelta(days=1)}


def day(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def fixes(days: list[date], rate: str = "1.1") -> ChangeLog:
    log = ChangeLog()
    for d in days:
        log.upsert(quote(rate=rate, observed_at=day(d) + timedelta(hours=14)))
    return log


def test_a_weekend_between_two_fixes_is_two_weekend_rows_carrying_fridays_rate() -> None:
    harness = AnalyzerHarness(gaps.analyzer(), intervals=DAILY)
    harness.feed(fixes([date(2024, 1, 5), date(2024, 1, 8)]).changes)  # Friday, Monday
    rows = {key[4].date(): row for key, row in harness.rows("gaps").items()}
    assert list(rows) == [date(2024, 1, 6), date(2024, 1, 7)]
    assert [r["reason"] for r in rows.values()] == [gaps.WEEKEND, gaps.WEEKEND]
    assert [r["age_days"] for r in rows.values()] == [1.0, 2.0]
    assert all(r["carried_rate"] == pytest.approx(1.1) for r in rows.values())


def test_a_weekday_without_a_fix_is_missed_and_a_long_gap_goes_stale() -> None:
    harness = AnalyzerHarness(gaps.analyzer(), intervals=DAILY)
    harness.feed(fixes([date(2024, 1, 1), date(2024, 1, 12)]).changes)
    rows = {key[4].date(): row for key, row in harness.rows("gaps").items()}
    assert rows[date(2024, 1, 2)]["reason"] == gaps.MISSED
    assert rows[date(2024, 1, 8)]["carried_rate"] == pytest.approx(1.1)  # 7 days: still carried
    assert rows[date(2024, 1, 9)]["carried_rate"] is None  # 8 days: stale
    assert len(rows) == 10


def test_a_late_fix_closes_its_gap_and_a_delete_reopens_it() -> None:
    log = fixes([date(2024, 1, 1), date(2024, 1, 3)])
    harness = AnalyzerHarness(gaps.analyzer(), intervals=DAILY)
    harness.feed(log.changes)
    assert len(harness.rows("gaps")) == 1
    late = quote(rate="1.2", observed_at=day(date(2024, 1, 2)) + timedelta(hours=14))
    created = log.upsert(late)
    assert created is not None
    harness.feed([created])
    assert harness.rows("gaps") == {}
    deleted = log.delete(late.key)
    assert deleted is not None
    harness.feed([deleted])
    assert len(harness.rows("gaps")) == 1


def test_an_intraday_silence_is_one_row_at_the_tick_that_ends_it() -> None:
    log = ChangeLog()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for second in [*range(0, 30), *range(100, 110)]:
        log.upsert(quote(rate="1.1", observed_at=start + timedelta(seconds=second)))
    harness = AnalyzerHarness(gaps.analyzer(), intervals={"test": timedelta(seconds=1)})
    harness.feed(log.changes)
    ((key, row),) = harness.rows("gaps").items()
    assert key[4] == start + timedelta(seconds=100)
    assert row["reason"] == gaps.SILENCE
    assert row["age_days"] == pytest.approx(71 / 86_400)


@given(data=st.data(), intraday=st.booleans())
def test_streamed_gaps_equal_gaps_recomputed_from_the_final_observations(
    data: st.DataObject, intraday: bool
) -> None:
    ops = data.draw(
        operations(("EUR/USD", "USD/IRR"), intraday=intraday, days=2 if intraday else 30)
    )
    log = build_log(ops)
    intervals = {"test": timedelta(minutes=1) if intraday else timedelta(days=1)}
    streamed = AnalyzerHarness(gaps.analyzer(), intervals=intervals)
    for batch, commit in data.draw(deliveries(log.changes)):
        streamed.feed(batch, commit_state=commit)
    assert streamed.rows("gaps") == recompute(gaps.analyzer(), log, intervals).rows("gaps")


def test_on_the_real_ecb_history_weekends_are_weekends_and_christmas_is_missed() -> None:
    from fxcortex.sources.ecb import EcbSource

    usd = sorted(
        (
            q
            for q in EcbSource().configure(location="bundled").fetch(FetchWindow())
            if q.pair.quote.code == "USD"
        ),
        key=lambda q: q.observed_at,
    )
    log = ChangeLog()
    for q in usd:
        log.upsert(q)
    harness = AnalyzerHarness(gaps.analyzer(), intervals={"ecb": timedelta(days=1)})
    for start in range(0, len(log.changes), 2_000):
        harness.feed(log.changes[start : start + 2_000])
    rows = {key[4].date(): row for key, row in harness.rows("gaps").items()}
    observed = {q.observed_at.date() for q in usd}
    first, last = min(observed), max(observed)
    calendar = {first + timedelta(days=n) for n in range((last - first).days + 1)}
    assert set(rows) == calendar - observed
    assert all(r["reason"] == gaps.WEEKEND for d, r in rows.items() if d.weekday() >= 5)
    assert rows[date(2023, 12, 25)]["reason"] == gaps.MISSED
    assert rows[date(2023, 12, 26)]["age_days"] == 4.0  # carried from Friday 22 December
