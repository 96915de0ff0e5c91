"""Hypothesis strategies for the streaming-equals-batch property of an analytic.

Needs the ``testing`` extra (``pip install fxcortex-core[testing]``). A property test draws a
random history of upserts and deletes, replays it as a consistent change stream (`ChangeLog`), and
feeds it to an `AnalyzerHarness` in random batches with crashes and re-deliveries::

    @given(data=st.data())
    def test_streaming_equals_batch(data):
        log = build_log(data.draw(operations(pairs=("EUR/USD", "EUR/JPY"))))
        streamed = AnalyzerHarness(MyAnalyzer())
        for batch, commit in data.draw(deliveries(log.changes)):
            streamed.feed(batch, commit_state=commit)
        assert streamed.rows("mine") == recompute(MyAnalyzer(), log).rows("mine")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from fxcortex.core.models import ChangeOp, RateChange
from fxcortex.core.ports import Analyzer
from fxcortex.core.testing import AnalyzerHarness, ChangeLog, quote

Operation = tuple[str, Any]

RATES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("99999"), places=4).filter(
    lambda d: d > 0
)


def moments(first: date, days: int, intraday: bool) -> st.SearchStrategy[datetime]:
    """Instants over ``days`` days from ``first``: quarter hours, or one fixing time a day.

    Few distinct instants on purpose: revisions of an observation need the same instant twice.
    """
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    if intraday:
        return st.integers(0, days * 96 - 1).map(lambda q: start + timedelta(minutes=15 * q))
    return st.integers(0, days - 1).map(lambda d: start + timedelta(days=d, hours=13, minutes=15))


def operations(
    pairs: Sequence[str] = ("EUR/USD", "EUR/JPY", "USD/IRR"),
    *,
    sources: Sequence[str] = ("test",),
    first: date = date(2024, 1, 22),
    days: int = 45,
    intraday: bool = False,
    rates: st.SearchStrategy[Decimal] = RATES,
    max_size: int = 60,
) -> st.SearchStrategy[list[Operation]]:
    """Upserts (creates and revisions, in any time order) and deletes of existing rows."""
    when = moments(first, days, intraday)
    upsert = st.tuples(
        st.just("upsert"),
        st.tuples(st.sampled_from(list(pairs)), rates, when, st.sampled_from(list(sources))),
    )
    delete = st.tuples(st.just("delete"), st.integers(0, 10_000))
    return st.lists(st.one_of(upsert, upsert, delete), min_size=1, max_size=max_size)


def build_log(ops: Sequence[Operation]) -> ChangeLog:
    """The change stream a store would emit for these operations."""
    log = ChangeLog()
    for kind, argument in ops:
        if kind == "upsert":
            pair, rate, when, source = argument
            log.upsert(quote(pair=pair, rate=str(rate), observed_at=when, source=source))
        elif log.rows:
            keys = sorted(log.rows, key=repr)
            log.delete(keys[argument % len(keys)])
    return log


@st.composite
def deliveries(draw: st.DrawFn, changes: list[RateChange]) -> list[tuple[list[RateChange], bool]]:
    """Batches in order, with re-deliveries and crashes (a batch processed without its state).

    Each item is (batch, commit_state); ``False`` is a crash after the writes and before the
    state commit, always followed by the same batch delivered again.
    """
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(changes) - 1)), max_size=6)))
    batches = [changes[a:b] for a, b in zip([0, *cuts], [*cuts, len(changes)], strict=True)]
    plan: list[tuple[list[RateChange], bool]] = []
    for index, batch in enumerate(batches):
        if draw(st.booleans()) and draw(st.booleans()):
            plan.append((batch, False))
        plan.append((batch, True))
        if index and draw(st.integers(0, 4)) == 0:
            plan.append((batches[draw(st.integers(0, index))], True))  # an old batch again
    return plan


def recompute(
    analyzer: Analyzer, log: ChangeLog, intervals: Mapping[str, timedelta] | None = None
) -> AnalyzerHarness:
    """A fresh harness fed the final observations of ``log`` once, as creates in one batch."""
    harness = AnalyzerHarness(analyzer, intervals=dict(intervals or {}))
    finals = sorted(log.rows.values(), key=lambda q: (q.observed_at, q.key))
    harness.feed(
        [
            RateChange(
                op=ChangeOp.CREATE, position=i + 1, committed_at=log.committed_at, after=final
            )
            for i, final in enumerate(finals)
        ]
    )
    return harness


__all__ = ["RATES", "build_log", "deliveries", "moments", "operations", "recompute"]
