"""An analyzer that rejects changes: bounded retries, then the culprits go to the dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fxcortex.analytics import ohlc
from fxcortex.core import Analyzer, AnalyzerContext, RateChange, TableWrite
from fxcortex.core.testing import quote
from fxcortex.runtime import Pipeline, Settings
from fxcortex.runtime.analyzer import AnalyzerError, RejectPolicy, run_analyzer

POISON = Decimal("999.5")


class Picky:
    """The OHLC analyzer, except that it raises on any change to a rate of `POISON`."""

    def __init__(self) -> None:
        self.inner: Analyzer = ohlc.OhlcAnalyzer()
        self.name = self.inner.name
        self.description = self.inner.description
        self.tables = self.inner.tables
        self.calls = 0

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        self.calls += 1
        for change in changes:
            if change.after is not None and change.after.rate == POISON:
                raise ValueError(f"refuses {change.after.rate}")
        return list(self.inner.process(changes, context))


class DeadLetteringFeed:
    """The embedded change log with a dead-letter list, as the Kafka feed has a topic."""

    def __init__(self, feed: Any) -> None:
        self.feed = feed
        self.dead: list[tuple[int, str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.feed, name)

    def dead_letter(self, change: RateChange, reason: str, *, analyzer: str) -> None:
        self.dead.append((change.position, reason, analyzer))


def _quotes(poisoned: set[int]) -> list[Any]:
    return [
        quote(
            "EUR/USD",
            str(POISON) if day in poisoned else f"1.{day:04d}",
            f"2024-01-{day:02d}T13:15:00+00:00",
        )
        for day in range(1, 29)
    ]


def _analyze(home: Path, poisoned: set[int], policy: RejectPolicy, dead_letters: bool) -> Any:
    pipeline = Pipeline.open(Settings(home=home))
    pipeline.rates.upsert(_quotes(poisoned))
    feed = DeadLetteringFeed(pipeline.feed) if dead_letters else pipeline.feed
    picky = Picky()
    try:
        result = run_analyzer(
            feed,
            [picky],
            store=pipeline.analytics,
            cache=pipeline.cache,
            intervals={"test": timedelta(days=1)},
            batch_size=1000,
            reject=policy,
        )
    except AnalyzerError:
        pipeline.close()
        raise
    return pipeline, feed, picky, result


def test_rejected_changes_are_dead_lettered_and_the_rest_is_analyzed(tmp_path: Path) -> None:
    clean, _, _, _ = _analyze(tmp_path / "clean", set(), RejectPolicy(), dead_letters=True)
    expected_without = {3, 17}
    with clean:
        clean.rates.delete([q for q in _quotes(set()) if q.observed_at.day in expected_without])
        clean.analyze()
        expected = clean.query("SELECT * FROM ohlc ORDER BY ALL").rows

    pipeline, feed, picky, result = _analyze(
        tmp_path / "poisoned", expected_without, RejectPolicy(attempts=2), dead_letters=True
    )
    with pipeline:
        assert result.rejected == 2 and result.changes == 28
        assert [reason for _, reason, _ in feed.dead] == ["ValueError: refuses 999.5"] * 2
        assert {analyzer for _, _, analyzer in feed.dead} == {"ohlc"}
        assert pipeline.pending() == 0  # the feed went past the rejected changes
        assert pipeline.query("SELECT * FROM ohlc ORDER BY ALL").rows == expected
        # two full attempts, then a bisection per culprit: logarithmic, not one call per change
        assert picky.calls < 2 + 2 * 12


def test_a_feed_without_dead_letters_stops_with_the_error_and_commits_nothing(
    tmp_path: Path,
) -> None:
    with pytest.raises(AnalyzerError, match=r"ohlc.*refuses 999\.5"):
        _analyze(tmp_path, {5}, RejectPolicy(attempts=3), dead_letters=False)
    with Pipeline.open(Settings(home=tmp_path)) as pipeline:
        assert pipeline.pending() == 28


def test_more_rejections_than_the_policy_allows_stop_the_analyzer(tmp_path: Path) -> None:
    with pytest.raises(AnalyzerError):
        _analyze(tmp_path, {2, 4, 6, 8}, RejectPolicy(most_per_batch=3), dead_letters=True)
    with Pipeline.open(Settings(home=tmp_path)) as pipeline:
        assert pipeline.pending() == 28
