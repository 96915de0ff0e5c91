"""The rate mirror: the analytics store ends up with exactly the rate store's final observations."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from hypothesis import given
from hypothesis import strategies as st

from fxcortex.core.strategies import build_log, deliveries, operations
from fxcortex.core.testing import AnalyzerHarness, ChangeLog
from fxcortex.runtime import Pipeline, Settings
from fxcortex.runtime.mirror import RateMirror


def _final(log: ChangeLog) -> set[tuple[Any, ...]]:
    return {
        (q.source, q.pair.base.code, q.pair.quote.code, q.kind.value, q.observed_at, q.rate)
        for q in log.rows.values()
    }


@given(data=st.data())
def test_the_mirror_holds_the_final_observations_whatever_the_delivery(
    data: st.DataObject,
) -> None:
    log = build_log(data.draw(operations(("EUR/USD", "USD/IRR"), intraday=True, days=2)))
    mirror = AnalyzerHarness(RateMirror())
    for batch, commit in data.draw(deliveries(log.changes)):
        mirror.feed(batch, commit_state=commit)
    rows = {
        (r["source"], r["base"], r["quote"], r["kind"], r["observed_at"], r["rate"])
        for r in mirror.rows("rates_mirror").values()
    }
    assert rows == _final(log)


def test_the_embedded_pipeline_mirrors_the_rate_store_after_revisions_and_deletes(
    tmp_path: Path, ecb_extract: Callable[[int], Path]
) -> None:
    with Pipeline.open(Settings(home=tmp_path)) as pipeline:
        pipeline.fetch("ecb", options={"location": str(ecb_extract(20))})
        pipeline.analyze()
        stored = list(pipeline.rates.quotes())
        revised = [attrs.evolve(q, rate=q.rate * 2) for q in stored[:5]]
        pipeline.rates.upsert(revised)
        pipeline.rates.delete(stored[5:9])
        pipeline.analyze()
        expected = {
            (q.source, q.pair.base.code, q.pair.quote.code, q.kind.value, q.rate)
            for q in pipeline.rates.quotes()
        }
        mirrored = pipeline.query("SELECT source, base, quote, kind, rate FROM rates_mirror").rows
        assert len(mirrored) == len(stored) - 4
        assert {(*row[:4], Decimal(row[4]).normalize()) for row in mirrored} == {
            (*key[:4], key[4].normalize()) for key in expected
        }
