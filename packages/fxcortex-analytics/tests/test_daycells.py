"""Day cells' batch helpers against their plain definitions, and the feed's shared views."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from fxcortex.analytics import daycells
from fxcortex.analytics.buckets import DAY_US, HOUR_US
from fxcortex.analytics.cross_rates import CrossRatesAnalyzer
from fxcortex.analytics.daycells import Entry
from fxcortex.analytics.spread import SpreadAnalyzer
from fxcortex.analytics.triangulation import TriangulationAnalyzer
from fxcortex.core.batch import ChangeRows, Image, Series, to_micros
from fxcortex.core.models import Quote, RateChange
from fxcortex.core.ports import Analyzer
from fxcortex.core.state import BatchContext, BufferedState, MemoryCache
from fxcortex.core.strategies import build_log, deliveries, operations

ENTRIES = st.lists(
    st.tuples(
        st.sampled_from(["a|mid", "b|mid", "t|x|mid|EUR"]),
        st.integers(-3 * 2 * HOUR_US, 3 * 2 * HOUR_US),  # moments over six hours
        st.one_of(st.none(), st.sampled_from(["1.1", "1.2"])),
        st.integers(0, 20),
    ),
    max_size=40,
)


@given(entries=ENTRIES, last_position=st.integers(-1, 20))
def test_fresh_entries_are_the_later_ones_in_stable_position_order(
    entries: list[Entry], last_position: int
) -> None:
    expected = sorted((e for e in entries if e[3] > last_position), key=lambda e: e[3])
    assert list(daycells._fresh(entries, last_position)) == expected


@given(entries=ENTRIES)
def test_pieces_group_each_quoters_hour_in_order(entries: list[Entry]) -> None:
    expected: dict[tuple[str, int], list[Entry]] = {}
    for entry in entries:
        expected.setdefault((entry[0], entry[1] // (2 * HOUR_US)), []).append(entry)
    found = daycells._by_piece(entries)
    assert list(found.items()) == list(expected.items())


SERIES = st.sampled_from(
    [("s", "EUR", "USD", "mid"), ("s", "USD", "EUR", "mid"), ("t", "USD", "JPY", "bid")]
)


@given(
    images=st.lists(
        st.tuples(
            SERIES,
            st.integers(-2 * DAY_US, 2 * DAY_US),
            st.one_of(st.none(), st.just("1.5")),
            st.integers(0, 9),
        ),
        max_size=40,
    )
)
def test_day_entries_are_each_routed_image_in_its_days_cell(images: list[Image]) -> None:
    def route(series: Series) -> tuple[str, bool, str] | None:
        if series[0] == "t":
            return None  # no cells
        return "EUR|USD", series[1] == "USD", f"{series[0]}|{series[3]}"

    expected: dict[tuple[str, int], list[Entry]] = {}
    for series, micros, rate, position in images:
        routed = route(series)
        if routed is not None:
            prefix, inverted, quoter = routed
            expected.setdefault((prefix, micros // DAY_US), []).append(
                (quoter, 2 * micros + inverted, rate, position)
            )
    found = daycells.day_entries(images, route)
    assert list(found.items()) == list(expected.items())


def _rows(changes: list[RateChange]) -> ChangeRows:
    """The changes as a feed delivers them."""

    def image(q: Quote | None) -> tuple[object, ...]:
        if q is None:
            return (None,) * 6
        base, quote = q.pair.base.code, q.pair.quote.code
        return (q.source, base, quote, q.kind.value, to_micros(q.observed_at), str(q.rate))

    return ChangeRows(
        [
            (c.position, c.op.value, to_micros(c.committed_at), *image(c.before), *image(c.after))
            for c in changes
        ]
    )


@given(data=st.data())
def test_analytics_sharing_a_feeds_batch_write_what_each_writes_alone(data: st.DataObject) -> None:
    # cross_rates and triangulation share their instants through the batch: as in the analyzer
    # loop, one `ChangeRows` goes to every analytic in turn; each must write the same rows and
    # state as from a plain list of changes.
    ops = data.draw(
        operations(
            ("EUR/USD", "EUR/JPY", "USD/JPY", "JPY/EUR", "NOK/USD", "EUR/NOK"),
            sources=("ecb", "fed-h10"),
            days=2,
            intraday=data.draw(st.booleans()),
            max_size=40,
        )
    )
    log = build_log(ops)
    analyzers: list[Analyzer] = [CrossRatesAnalyzer(), TriangulationAnalyzer(), SpreadAnalyzer()]
    shared, alone = MemoryCache(), MemoryCache()
    for batch, _commit in data.draw(deliveries(log.changes)):
        rows = _rows(batch)
        for analyzer in analyzers:
            state = BufferedState(shared, analyzer.name)
            from_rows = analyzer.process(rows, BatchContext(state, {"ecb": timedelta(days=1)}))
            state.commit()
            reference = BufferedState(alone, analyzer.name)
            from_list = analyzer.process(batch, BatchContext(reference, {"ecb": timedelta(days=1)}))
            reference.commit()
            assert [(w.table, w.versions, w.deleted) for w in from_rows] == [
                (w.table, w.versions, w.deleted) for w in from_list
            ]
            for ours, theirs in zip(from_rows, from_list, strict=True):
                assert {k: list(v) for k, v in ours.columns.items()} == {
                    k: list(v) for k, v in theirs.columns.items()
                }
    assert shared.values == alone.values
