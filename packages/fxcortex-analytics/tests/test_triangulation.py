"""Triangulation consistency: triangulated crosses against direct quotes, streaming equals batch."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics.triangulation import TriangulationAnalyzer
from fxcortex.core.state import BatchContext, BufferedState
from fxcortex.core.strategies import RATES, build_log, deliveries, operations, recompute
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

ECB_FIX = datetime(2024, 5, 6, 12, 15, tzinfo=UTC)
FED_NOON = datetime(2024, 5, 6, 16, tzinfo=UTC)
FIRST = datetime(2024, 1, 22, 13, 15, tzinfo=UTC)  # the fixing time `operations` draws


def _day(log: ChangeLog) -> AnalyzerHarness:
    harness = AnalyzerHarness(TriangulationAnalyzer())
    harness.feed(log.changes)
    return harness


def _ecb(log: ChangeLog, usd: str, jpy: str, gbp: str = "0.86") -> None:
    for pair, rate in (("EUR/USD", usd), ("EUR/JPY", jpy), ("EUR/GBP", gbp)):
        log.upsert(quote(pair=pair, rate=rate, observed_at=ECB_FIX, source="ecb"))


def test_usd_jpy_through_the_euro_beside_the_feds_direct_quote() -> None:
    log = ChangeLog()
    _ecb(log, "1.08", "162")  # USD/JPY = 162 / 1.08 = 150
    log.upsert(quote(pair="USD/JPY", rate="149.85", observed_at=FED_NOON, source="fed-h10"))
    rows = _day(log).rows("triangulation")
    (row,) = rows.values()
    assert (row["base"], row["quote"], row["day"]) == ("USD", "JPY", date(2024, 5, 6))
    assert (row["source"], row["via"], row["direct_source"]) == ("ecb", "EUR", "fed-h10")
    assert (row["triangulated"], row["direct"]) == (Decimal(150), Decimal("149.85"))
    assert row["deviation"] == pytest.approx(150 / 149.85 - 1)
    assert row["deviation_bp"] == pytest.approx((150 / 149.85 - 1) * 10_000)


def test_a_pair_before_usd_in_market_order_is_compared_as_x_usd() -> None:
    log = ChangeLog()
    _ecb(log, "1.08", "162", gbp="0.864")  # USD/GBP = 0.8, so GBP/USD = 1.25
    log.upsert(quote(pair="GBP/USD", rate="1.2500", observed_at=FED_NOON, source="fed-h10"))
    rows = _day(log).rows("triangulation")
    (row,) = rows.values()
    assert (row["base"], row["quote"]) == ("GBP", "USD")
    assert row["triangulated"] == Decimal("1.25")
    assert row["deviation"] == pytest.approx(0.0)


def test_a_revision_moves_the_deviation_and_a_delete_withdraws_the_row() -> None:
    log = ChangeLog()
    _ecb(log, "1.08", "162")
    log.upsert(quote(pair="USD/JPY", rate="150", observed_at=FED_NOON, source="fed-h10"))
    harness = AnalyzerHarness(TriangulationAnalyzer())
    harness.feed(log.changes)
    assert next(iter(harness.rows("triangulation").values()))["deviation"] == 0.0
    before = len(log.changes)
    log.upsert(quote(pair="EUR/JPY", rate="163.62", observed_at=ECB_FIX, source="ecb"))
    harness.feed(log.changes[before:])
    (row,) = harness.rows("triangulation").values()
    assert row["triangulated"] == Decimal("151.5")
    assert row["deviation"] == pytest.approx(0.01)
    before = len(log.changes)
    log.delete(quote(pair="USD/JPY", rate="150", observed_at=FED_NOON, source="fed-h10").key)
    harness.feed(log.changes[before:])
    assert harness.rows("triangulation") == {}


def test_a_source_is_not_compared_with_itself_and_other_days_do_not_meet() -> None:
    log = ChangeLog()
    _ecb(log, "1.08", "162")
    log.upsert(quote(pair="USD/JPY", rate="150", observed_at=ECB_FIX, source="norges-bank"))
    next_day = FED_NOON + timedelta(days=1)
    log.upsert(quote(pair="USD/JPY", rate="150", observed_at=next_day, source="fed-h10"))
    rows = _day(log).rows("triangulation")
    assert {(r["direct_source"], r["day"]) for r in rows.values()} == {
        ("norges-bank", date(2024, 5, 6))
    }


def test_a_triangulated_observation_is_kept_as_its_quotes_and_divided_when_compared() -> None:
    log = ChangeLog()
    _ecb(log, "1.08", "162")
    harness = _day(log)
    (cells,) = (
        orjson.loads(value)
        for key, value in harness.cache.values.items()
        if key.startswith("triangulation:d|USD|JPY#")
    )
    ((_position, hours, _written),) = cells.values()
    ((_moment, kept),) = hours["t|ecb|mid|EUR"].values()
    assert kept == "162/1.08"  # EUR/JPY / EUR/USD, undivided: no other source quotes it yet
    log.upsert(quote(pair="USD/JPY", rate="149.85", observed_at=FED_NOON, source="fed-h10"))
    harness.feed(log.changes[3:])
    (row,) = harness.rows("triangulation").values()
    assert row["triangulated"] == Decimal(150)


def test_day_cells_holding_the_quotient_as_an_earlier_version_kept_it_are_still_read() -> None:
    log = ChangeLog()
    _ecb(log, "1.08", "162.0")
    harness = _day(log)
    (key,) = (k for k in harness.cache.values if k.startswith("triangulation:d|USD|JPY#"))
    cells = orjson.loads(harness.cache.values[key])
    ((_position, hours, _written),) = cells.values()
    (close,) = hours["t|ecb|mid|EUR"].values()
    assert close[1] == "162.0/1.08"
    close[1] = "150.000000000000000000"  # the quotient, as the earlier version kept it
    harness.cache.values[key] = orjson.dumps(cells)
    log.upsert(quote(pair="USD/JPY", rate="149.85", observed_at=FED_NOON, source="fed-h10"))
    harness.feed(log.changes[3:])
    (row,) = harness.rows("triangulation").values()
    assert row["triangulated"] == Decimal(150)
    assert row["deviation"] == pytest.approx(150 / 149.85 - 1)
    # A revision after the upgrade replaces the old close as usual.
    log.upsert(quote(pair="EUR/JPY", rate="163.62", observed_at=ECB_FIX, source="ecb"))
    harness.feed(log.changes[4:])
    (row,) = harness.rows("triangulation").values()
    assert row["triangulated"] == Decimal("151.5")


def test_a_revision_that_keeps_the_quotient_rewrites_nothing() -> None:
    log = ChangeLog()
    _ecb(log, "1.08", "162")
    log.upsert(quote(pair="USD/JPY", rate="150", observed_at=FED_NOON, source="fed-h10"))
    harness = _day(log)
    log.upsert(quote(pair="EUR/JPY", rate="162.00", observed_at=ECB_FIX, source="ecb"))
    assert harness.feed(log.changes[4:]) == []  # other quotes, the same 150: no row again


def test_a_re_delivered_batch_writes_no_state() -> None:
    log = ChangeLog()
    _ecb(log, "1.08", "162")
    log.upsert(quote(pair="USD/JPY", rate="150", observed_at=FED_NOON, source="fed-h10"))
    harness = _day(log)
    state = BufferedState(harness.cache, "triangulation")
    assert TriangulationAnalyzer().process(log.changes, BatchContext(state, {})) == []
    assert (state.puts, state.deletes) == ({}, set())


@given(data=st.data(), intraday=st.booleans())
def test_streamed_deviations_equal_deviations_recomputed_from_the_final_observations(
    data: st.DataObject, intraday: bool
) -> None:
    # Both days start with the ECB's three euro rates and the Fed's two dollar rates, so there is
    # something to compare; then revisions, deletes and quotes in the other's way, in any order.
    seed = [
        ("upsert", (pair, data.draw(RATES), FIRST + timedelta(days=day), source))
        for day in (0, 1)
        for pair, source in (
            ("EUR/USD", "ecb"),
            ("EUR/JPY", "ecb"),
            ("EUR/GBP", "ecb"),
            ("USD/JPY", "fed-h10"),
            ("GBP/USD", "fed-h10"),
        )
    ]
    pairs = ("EUR/USD", "EUR/JPY", "EUR/GBP", "USD/JPY", "JPY/USD", "GBP/USD")
    more = operations(pairs, sources=("ecb", "fed-h10"), days=2, intraday=intraday, max_size=30)
    ops = data.draw(st.permutations(seed)) + data.draw(more)
    log = build_log(ops)
    streamed = AnalyzerHarness(TriangulationAnalyzer())
    for batch, commit in data.draw(deliveries(log.changes)):
        streamed.feed(batch, commit_state=commit)
    expected = recompute(TriangulationAnalyzer(), log, {}).rows("triangulation")
    assert streamed.rows("triangulation") == expected


RECORDED = Path(__file__).resolve().parents[2] / "fxcortex-sources/tests/fixtures/http"


def test_norges_banks_euro_in_dollars_against_the_ecbs_on_the_recorded_days() -> None:
    from fxcortex.sources import ecb_sdmx, norges_bank

    nb_payload = (RECORDED / "nb/000.body").read_bytes()
    ecb_payload = (RECORDED / "ecb_recent/000.body").read_bytes()
    log = ChangeLog()
    for q in norges_bank.parse(nb_payload) + ecb_sdmx.parse(ecb_payload):
        log.upsert(q)
    rows = _day(log).rows("triangulation")
    eur_usd = {
        r["day"]: r
        for r in rows.values()
        if (r["base"], r["quote"], r["source"], r["via"]) == ("EUR", "USD", "norges-bank", "NOK")
    }
    # the recorded days both sources published (the ECB's recording ends on the 18th)
    assert sorted(eur_usd) == [date(2026, 3, 16), date(2026, 3, 17), date(2026, 3, 18)]

    # The same from the raw CSV, independently: EUR/USD = (EUR/NOK) / (USD/NOK), against the ECB.
    nb = pd.read_csv(io.BytesIO(nb_payload))
    nok = nb[nb.QUOTE_CUR == "NOK"].pivot(
        index="TIME_PERIOD", columns="BASE_CUR", values="OBS_VALUE"
    )
    ecb = pd.read_csv(io.BytesIO(ecb_payload))
    ecb_usd = ecb[ecb.CURRENCY == "USD"].set_index("TIME_PERIOD")["OBS_VALUE"]
    for day, row in eur_usd.items():
        key = day.isoformat()
        expected = nok.loc[key, "EUR"] / nok.loc[key, "USD"] / ecb_usd.loc[key] - 1
        assert row["deviation"] == pytest.approx(expected, abs=1e-9)
        assert row["direct_source"] == "ecb-sdmx" and row["direct"] == Decimal(str(ecb_usd[key]))
        assert abs(row["deviation_bp"]) < 50  # same day, same pair: close, whatever the time
