"""Cross rates: triangulation both ways round, and streaming equals batch."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Context, Decimal

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics.cross_rates import CrossRatesAnalyzer, crosses
from fxcortex.core import FetchWindow
from fxcortex.core.strategies import build_log, deliveries, operations, recompute
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

NOON = datetime(2024, 5, 6, 12, tzinfo=UTC)


def test_usd_jpy_from_the_euro_rates() -> None:
    assert crosses({"EUR/USD": "1.08", "EUR/JPY": "162"}) == {("JPY", "EUR"): Decimal("150")}


def test_a_source_quoting_its_own_currency_per_unit_gives_the_crosses_too() -> None:
    # Norges Bank's way: kroner per unit of each currency.
    found = crosses({"USD/NOK": "10.5", "EUR/NOK": "11.55"})
    assert set(found) == {("EUR", "NOK")}
    assert found[("EUR", "NOK")] == pytest.approx(Decimal("10.5") / Decimal("11.55"))


def test_a_direct_usd_quote_is_not_triangulated_by_the_same_source() -> None:
    assert crosses({"EUR/USD": "1.08", "EUR/JPY": "162", "USD/JPY": "151"}) == {}


def test_a_revision_rewrites_and_a_delete_withdraws_the_cross() -> None:
    log = ChangeLog()
    dollar = quote(pair="EUR/USD", rate="1.08", observed_at=NOON, source="ecb")
    log.upsert(dollar)
    log.upsert(quote(pair="EUR/JPY", rate="162", observed_at=NOON, source="ecb"))
    harness = AnalyzerHarness(CrossRatesAnalyzer())
    harness.feed(log.changes)
    revised = log.upsert(quote(pair="EUR/USD", rate="1.2", observed_at=NOON, source="ecb"))
    assert revised is not None
    harness.feed([revised])
    ((key, row),) = harness.rows("cross_rates").items()
    assert key == ("ecb", "mid", "USD", "JPY", "EUR", NOON) and row["rate"] == Decimal("135")
    deleted = log.delete(dollar.key)
    assert deleted is not None
    harness.feed([deleted])
    assert harness.rows("cross_rates") == {}


@given(data=st.data())
def test_streamed_crosses_equal_crosses_recomputed_from_the_final_observations(
    data: st.DataObject,
) -> None:
    ops = data.draw(
        operations(
            ("EUR/USD", "EUR/JPY", "USD/EUR", "JPY/EUR", "NOK/USD", "EUR/NOK"),
            sources=("ecb", "norges-bank"),
            days=2,
            max_size=80,
        )
    )
    log = build_log(ops)
    streamed = AnalyzerHarness(CrossRatesAnalyzer())
    for batch, commit in data.draw(deliveries(log.changes)):
        streamed.feed(batch, commit_state=commit)
    assert streamed.rows("cross_rates") == recompute(CrossRatesAnalyzer(), log).rows("cross_rates")


def test_usd_jpy_on_the_real_ecb_history_matches_pandas() -> None:
    from fxcortex.sources.ecb import EcbSource

    fixes = [
        q
        for q in EcbSource().configure(location="bundled").fetch(FetchWindow())
        if q.pair.quote.code in ("USD", "JPY")
    ]
    log = ChangeLog()
    for q in sorted(fixes, key=lambda q: q.observed_at):
        log.upsert(q)
    harness = AnalyzerHarness(CrossRatesAnalyzer())
    for start in range(0, len(log.changes), 2_000):
        harness.feed(log.changes[start : start + 2_000])
    frame = pd.DataFrame(
        [(q.observed_at, q.pair.quote.code, float(q.rate)) for q in fixes],
        columns=["at", "currency", "rate"],
    ).pivot(index="at", columns="currency", values="rate")
    expected = frame["JPY"] / frame["USD"]
    rows = harness.rows("cross_rates")
    assert len(rows) == len(expected)
    for moment in (expected.index[0], expected.index[3_000], expected.index[-1]):
        row = rows[("ecb", "mid", "USD", "JPY", "EUR", moment)]
        assert float(row["rate"]) == pytest.approx(expected[moment], rel=1e-12)


def _crosses_by_definition(quotes: dict[str, str]) -> dict[tuple[str, str], Decimal]:
    """The module docstring's rule written out plainly: USD/X = (C/X) / (C/USD) for all C, X."""
    context = Context(prec=28)

    def price(of: str, in_: str) -> Decimal | None:  # one `of` in `in_`: direct, else inverted
        if f"{of}/{in_}" in quotes:
            return Decimal(quotes[f"{of}/{in_}"])
        if f"{in_}/{of}" in quotes:
            return context.divide(Decimal(1), Decimal(quotes[f"{in_}/{of}"]))
        return None

    currencies = {code for pair in quotes for code in pair.split("/")}
    out = {}
    for via in currencies - {"USD"}:
        dollars = price(via, "USD")
        if dollars is None:
            continue
        for currency in currencies - {"USD", via}:
            if price(currency, "USD") is not None:
                continue  # quoted against the dollar directly
            rate = price(via, currency)
            if rate is not None:
                out[(currency, via)] = context.divide(rate, dollars).quantize(
                    Decimal("1e-18"), context=context
                )
    return out


@given(
    st.dictionaries(
        st.tuples(
            st.sampled_from(["EUR", "USD", "JPY", "NOK", "GBP", "IRR"]),
            st.sampled_from(["EUR", "USD", "JPY", "NOK", "GBP", "IRR"]),
        ).filter(lambda pair: pair[0] != pair[1]),
        st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4).filter(
            lambda d: d > 0
        ),
        max_size=8,
    )
)
def test_crosses_follow_the_definition_for_any_quotes_in_either_orientation(
    legs: dict[tuple[str, str], Decimal],
) -> None:
    quotes = {f"{base}/{quote}": str(rate) for (base, quote), rate in legs.items()}
    assert crosses(quotes) == _crosses_by_definition(quotes)
