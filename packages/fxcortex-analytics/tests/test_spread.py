"""Cross-source spread: premiums, orientation, day closes, and streaming equals batch."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics.spread import SpreadAnalyzer, canonical
from fxcortex.core.strategies import build_log, deliveries, operations, recompute
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

DAY = datetime(2024, 5, 6, tzinfo=UTC)


def at(hour: int) -> datetime:
    return DAY.replace(hour=hour)


def test_the_free_market_rial_premium_over_an_official_rate() -> None:
    log = ChangeLog()
    log.upsert(quote(pair="USD/IRR", rate="42000", observed_at=at(9), source="nbp-b"))
    log.upsert(
        quote(pair="USD/IRR", rate="588000", observed_at=at(10), source="bonbast", kind="sell")
    )
    harness = AnalyzerHarness(SpreadAnalyzer())
    harness.feed(log.changes)
    ((key, row),) = harness.rows("spread").items()
    assert key == ("USD", "IRR", date(2024, 5, 6), "bonbast", "sell", "nbp-b", "mid")
    assert row["premium"] == pytest.approx(588000 / 42000 - 1)  # 1,300 % over the official rate
    assert row["premium_bp"] == pytest.approx(130_000)


def test_a_pair_published_the_other_way_round_is_inverted_first() -> None:
    assert canonical("IRR", "USD") == ("USD", "IRR", True)
    assert canonical("USD", "EUR") == ("EUR", "USD", True)
    assert canonical("NOK", "DKK") == ("DKK", "NOK", True)  # neither listed: alphabetical
    log = ChangeLog()
    log.upsert(quote(pair="EUR/USD", rate="1.08", observed_at=at(14), source="ecb"))
    log.upsert(quote(pair="USD/EUR", rate="0.9", observed_at=at(17), source="fed-h10"))
    harness = AnalyzerHarness(SpreadAnalyzer())
    harness.feed(log.changes)
    ((key, row),) = harness.rows("spread").items()
    assert key[:2] == ("EUR", "USD")
    assert row["rate_b"] == Decimal(1) / Decimal("0.9") or row["rate_b"] == pytest.approx(
        Decimal(1) / Decimal("0.9")
    )
    assert row["premium"] == pytest.approx(1.08 / (1 / 0.9) - 1)


def test_the_days_last_observation_counts_and_a_delete_withdraws_the_row() -> None:
    log = ChangeLog()
    log.upsert(quote(pair="USD/IRR", rate="580000", observed_at=at(8), source="tgju"))
    log.upsert(quote(pair="USD/IRR", rate="590000", observed_at=at(16), source="tgju"))
    official = quote(pair="USD/IRR", rate="42000", observed_at=at(9), source="nbp-b")
    log.upsert(official)
    harness = AnalyzerHarness(SpreadAnalyzer())
    harness.feed(log.changes)
    (row,) = harness.rows("spread").values()
    assert row["rate_b"] == Decimal("590000")  # ("nbp-b", "tgju") order: tgju is b
    deletion = log.delete(official.key)
    assert deletion is not None
    harness.feed([deletion])
    assert harness.rows("spread") == {}


@given(data=st.data())
def test_streamed_spreads_equal_spreads_recomputed_from_the_final_observations(
    data: st.DataObject,
) -> None:
    ops = data.draw(
        operations(
            ("USD/IRR", "IRR/USD", "EUR/USD"),
            sources=("bonbast", "tgju", "nbp-b"),
            days=3,
            intraday=True,
            max_size=80,
        )
    )
    log = build_log(ops)
    streamed = AnalyzerHarness(SpreadAnalyzer())
    for batch, commit in data.draw(deliveries(log.changes)):
        streamed.feed(batch, commit_state=commit)
    assert streamed.rows("spread") == recompute(SpreadAnalyzer(), log).rows("spread")
