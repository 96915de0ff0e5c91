"""The embedded pipeline end to end: ETL all or nothing, the analyzer's restarts, the hooks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fxcortex.core import Quote, SourceError, hookimpl
from fxcortex.core.testing import quote
from fxcortex.runtime import Pipeline, Settings


def ohlc_rows(pipeline: Pipeline) -> list[tuple[Any, ...]]:
    return pipeline.query("SELECT * FROM ohlc ORDER BY ALL").rows


def test_fetching_an_ecb_extract_loads_every_fix_and_a_refetch_loads_nothing(
    pipeline: Pipeline, ecb_extract: Callable[[int], Path]
) -> None:
    path = ecb_extract(30)
    first = pipeline.fetch("ecb", options={"location": str(path)})
    again = pipeline.fetch("ecb", options={"location": str(path)})
    assert first.inserted == first.received > 30 * 25
    assert (again.inserted, again.revised, again.unchanged) == (0, 0, first.received)


def _set_cell(lines: list[str], row: int, column: int, text: str) -> list[str]:
    cells = lines[row].split(",")
    cells[column] = text
    return [*lines[:row], ",".join(cells), *lines[row + 1 :]]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda lines: lines[1:], "missing header"),
        (
            lambda lines: _set_cell(lines, 30, 1, "1.0x"),
            "line 31 column USD: rate '1.0x' is not a number",
        ),
        (
            lambda lines: _set_cell(lines, 0, 1, "XYZ"),
            "line 1 column 2: unknown currency code 'XYZ'",
        ),
        (lambda lines: _set_cell(lines, 5, 3, "-1.5"), "not a positive number"),
    ],
    ids=["missing-header", "non-numeric-rate", "unknown-code", "negative-rate"],
)
def test_a_malformed_ecb_file_fails_naming_where_and_stores_nothing(
    pipeline: Pipeline,
    ecb_lines: list[str],
    zip_history: Callable[[str, list[str]], Path],
    mangle: Callable[[list[str]], list[str]],
    reason: str,
) -> None:
    path = zip_history("bad.zip", mangle(ecb_lines[:40]))
    with pytest.raises(SourceError, match=reason) as raised:
        pipeline.fetch("ecb", options={"location": str(path)})
    assert raised.value.source == "ecb"
    assert raised.value.location and "bad.zip" in raised.value.location
    assert pipeline.rates.count() == 0
    assert pipeline.pending() == 0


def test_a_truncated_zip_fails_and_stores_nothing(
    pipeline: Pipeline, ecb_extract: Callable[[int], Path], tmp_path: Path
) -> None:
    whole = ecb_extract(40).read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceError, match="not a readable zip"):
        pipeline.fetch("ecb", options={"location": str(cut)})
    assert pipeline.rates.count() == 0


def test_analytics_after_an_interrupted_analyzer_equal_those_of_one_uninterrupted_run(
    tmp_path: Path, ecb_extract: Callable[[int], Path]
) -> None:
    path = str(ecb_extract(120))
    with Pipeline.open(Settings(home=tmp_path / "whole")) as whole:
        whole.fetch("ecb", options={"location": path})
        whole.analyze()
        expected = ohlc_rows(whole)

    home = tmp_path / "interrupted"
    with Pipeline.open(Settings(home=home)) as first:
        first.fetch("ecb", options={"location": path})
        first.analyze(batch_size=700, max_batches=2)
    # A crash after the rows landed but before the state and position were committed.
    with Pipeline.open(Settings(home=home)) as second:

        def crash(*_: object, **__: object) -> None:
            raise KeyboardInterrupt

        second.cache.commit = crash  # type: ignore[method-assign]
        with pytest.raises(KeyboardInterrupt):
            second.analyze(batch_size=900)
    with Pipeline.open(Settings(home=home)) as third:
        result = third.analyze(batch_size=1_000)
        assert result.changes > 0 and third.pending() == 0
        assert ohlc_rows(third) == expected


def test_a_revision_loaded_later_rewrites_the_analytics(
    pipeline: Pipeline, ecb_lines: list[str], zip_history: Callable[[str, list[str]], Path]
) -> None:
    lines = ecb_lines[:25]
    pipeline.fetch("ecb", options={"location": str(zip_history("a.zip", lines))})
    pipeline.analyze()
    newest_day = lines[1].split(",")[0]
    # USD is the first column: a revised fix of the newest day.
    revised = zip_history("b.zip", _set_cell(lines, 1, 1, "9.9999"))
    result = pipeline.fetch("ecb", options={"location": str(revised)})
    assert result.revised == 1
    pipeline.analyze()
    (high,) = pipeline.query(
        "SELECT high FROM ohlc WHERE quote = 'USD' AND resolution = 'month'"
        f" AND bucket_start = toStartOfMonth(toDate('{newest_day}'))"
    ).rows[0]
    assert high == Decimal("9.9999")


def test_the_window_limits_what_a_fetch_loads(
    pipeline: Pipeline, ecb_extract: Callable[[int], Path]
) -> None:
    path = str(ecb_extract(60))
    quotes = pipeline.preview("ecb", options={"location": path})
    days = sorted({q.observed_at.date() for q in quotes})
    since, until = days[10], days[20]
    loaded = pipeline.fetch("ecb", since=since, until=until, options={"location": path})
    stored = {q.observed_at.date() for q in pipeline.rates.quotes()}
    assert stored == set(days[10:21])
    assert loaded.inserted == sum(1 for q in quotes if since <= q.observed_at.date() <= until)


class Recorder:
    """A plugin that records the lifecycle hooks and drops the JPY quotes of every fetch."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def fxcortex_register_transforms(self, register: Callable[[object], None]) -> None:
        def apply(quotes: Sequence[Quote]) -> list[Quote]:
            return [q for q in quotes if q.pair.quote.code != "JPY"]

        register(SimpleNamespace(name="drop-jpy", description="drops JPY", apply=apply))

    @hookimpl
    def fxcortex_fetch_loaded(self, source: object, window: object, result: object) -> None:
        self.calls.append(("loaded", result))

    @hookimpl
    def fxcortex_fetch_failed(self, source: object, window: object, error: Exception) -> None:
        self.calls.append(("failed", error))

    @hookimpl
    def fxcortex_batch_analyzed(
        self, changes: int, position: int, rows_written: dict[str, int]
    ) -> None:
        self.calls.append(("analyzed", (changes, position, rows_written)))


def test_plugins_see_every_fetch_and_batch_and_their_transforms_shape_what_is_loaded(
    fxcortex_pipeline: Callable[..., Pipeline], ecb_extract: Callable[[int], Path], tmp_path: Path
) -> None:
    recorder = Recorder()
    pipeline = fxcortex_pipeline(recorder)
    path = str(ecb_extract(10))
    result = pipeline.fetch("ecb", options={"location": path})
    assert all(q.pair.quote.code != "JPY" for q in pipeline.rates.quotes())
    with pytest.raises(SourceError):
        pipeline.fetch("ecb", options={"location": str(tmp_path / "missing.zip")})
    pipeline.analyze(batch_size=100)
    kinds = [kind for kind, _ in recorder.calls]
    assert kinds[:2] == ["loaded", "failed"]
    assert recorder.calls[0][1] == result
    analyzed = [payload for kind, payload in recorder.calls if kind == "analyzed"]
    assert sum(changes for changes, _, _ in analyzed) == result.inserted
    assert analyzed[-1][1] == result.inserted  # the last position committed
    assert all(rows["ohlc"] > 0 for _, _, rows in analyzed)


def test_a_source_that_crashes_is_reported_as_a_source_error_naming_it(
    fxcortex_pipeline: Callable[..., Pipeline],
) -> None:
    class Broken:
        name = "broken"
        description = "always fails"
        schedule = None
        currencies = ()
        history_since = None
        observation_interval = None

        def fetch(self, window: object, context: object = None) -> list[Quote]:
            return [quote(source="broken"), 1 / 0]  # type: ignore[list-item]

        def configure(self, **options: str) -> Broken:
            return self

    class Plugin:
        @hookimpl
        def fxcortex_register_sources(self, register: Callable[[object], None]) -> None:
            register(Broken())

    pipeline = fxcortex_pipeline(Plugin())
    with pytest.raises(SourceError, match=r"'broken'.*ZeroDivisionError"):
        pipeline.fetch("broken")
    assert pipeline.rates.count() == 0


def test_the_analytics_store_keeps_one_row_per_key_whatever_is_rewritten(
    pipeline: Pipeline, ecb_extract: Callable[[int], Path]
) -> None:
    pipeline.fetch("ecb", options={"location": str(ecb_extract(30))})
    pipeline.analyze()
    rows = ohlc_rows(pipeline)
    pipeline.feed.commit(0)  # replay every change from the start: at-least-once delivery
    pipeline.feed.rewind()
    replayed = pipeline.analyze()
    assert replayed.changes > 0
    assert ohlc_rows(pipeline) == rows
    (duplicates,) = pipeline.query(
        "SELECT count() - uniqExact(source, base, quote, kind, resolution, bucket_start) FROM ohlc"
    ).rows[0]
    assert duplicates == 0


def test_the_profile_must_be_one_the_runtime_knows(monkeypatch: pytest.MonkeyPatch) -> None:
    from fxcortex.runtime import ConfigError

    monkeypatch.setenv("FXCORTEX_PROFILE", "cloud")
    with pytest.raises(ConfigError, match="FXCORTEX_PROFILE='cloud'"):
        Settings.from_env()
    monkeypatch.setenv("FXCORTEX_PROFILE", "embedded")
    monkeypatch.setenv("FXCORTEX_BATCH_SIZE", "lots")
    with pytest.raises(ConfigError, match="FXCORTEX_BATCH_SIZE"):
        Settings.from_env()


def test_the_home_defaults_to_the_xdg_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("FXCORTEX_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert Settings.from_env().home == tmp_path / "fxcortex"


def test_a_profile_without_adapters_in_this_version_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fxcortex.runtime import ConfigError
    from fxcortex.runtime.profiles import PROFILES

    monkeypatch.delitem(PROFILES, "distributed")
    with pytest.raises(ConfigError, match=r"'distributed' is not available.*embedded"):
        Pipeline.open(Settings(profile="distributed", home=tmp_path))


def test_a_history_published_newest_first_is_loaded_oldest_first() -> None:
    from datetime import UTC, datetime

    from fxcortex.core.testing import quote
    from fxcortex.runtime.etl import in_time_order

    newest_first = [quote(observed_at=datetime(2024, 1, day, 14, tzinfo=UTC)) for day in (3, 2, 1)]
    assert [q.observed_at.day for q in in_time_order(newest_first)] == [1, 2, 3]
    ordered = list(reversed(newest_first))
    assert in_time_order(ordered) is ordered  # already in order: no copy


def test_a_failing_analytics_store_is_retried_and_nothing_is_committed_until_it_writes(
    tmp_path: Path, ecb_extract: Callable[[int], Path]
) -> None:
    from fxcortex.core import StoreError
    from fxcortex.runtime.analyzer import StoreRetry

    path = str(ecb_extract(60))
    with Pipeline.open(Settings(home=tmp_path / "whole")) as whole:
        whole.fetch("ecb", options={"location": path})
        whole.analyze()
        expected = ohlc_rows(whole)

    with Pipeline.open(Settings(home=tmp_path / "flaky")) as pipeline:
        pipeline.fetch("ecb", options={"location": path})
        pending = pipeline.pending()
        real_write = pipeline.analytics.write
        failures = {"left": 3}
        waits: list[float] = []

        def flaky_write(writes: Any) -> None:
            if failures["left"]:
                failures["left"] -= 1
                raise StoreError("analytics store: connection refused")
            real_write(writes)

        pipeline.analytics.write = flaky_write  # type: ignore[method-assign]
        # Two attempts are not enough: the run fails and commits nothing.
        with pytest.raises(StoreError):
            pipeline.analyze(retry=StoreRetry(attempts=2, sleep=waits.append))
        assert pipeline.pending() == pending
        # Enough attempts: it waits, doubling, and then lands the same rows as a clean run.
        result = pipeline.analyze(retry=StoreRetry(attempts=5, first=0.5, sleep=waits.append))
        assert result.changes == pending and pipeline.pending() == 0
        assert waits == [0.5, 0.5]  # one wait in the failed run, one before the third attempt
        assert ohlc_rows(pipeline) == expected


def test_a_stop_request_ends_the_retries_without_committing(
    tmp_path: Path, ecb_extract: Callable[[int], Path]
) -> None:
    from fxcortex.core import StoreError
    from fxcortex.runtime.analyzer import StoreRetry

    with Pipeline.open(Settings(home=tmp_path)) as pipeline:
        pipeline.fetch("ecb", options={"location": str(ecb_extract(10))})
        pending = pipeline.pending()

        def refuse(writes: Any) -> None:
            raise StoreError("analytics store: disk full")

        pipeline.analytics.write = refuse  # type: ignore[method-assign]
        stops = iter([False, False, True])
        retry = StoreRetry(attempts=None, stop=lambda: next(stops), sleep=lambda _: None)
        with pytest.raises(StoreError):
            pipeline.analyze(retry=retry)
        assert pipeline.pending() == pending


def test_analyzer_metrics_count_changes_latency_lag_and_store_failures(
    tmp_path: Path, ecb_extract: Callable[[int], Path]
) -> None:
    from fxcortex.core import StoreError
    from fxcortex.runtime.analyzer import StoreRetry
    from fxcortex.runtime.metrics import AnalyzerMetrics

    metrics = AnalyzerMetrics()

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        found = metrics.registry.get_sample_value(name, labels or {})
        return 0.0 if found is None else found

    with Pipeline.open(Settings(home=tmp_path)) as pipeline:
        pipeline.fetch("ecb", options={"location": str(ecb_extract(30))})
        pending = pipeline.pending()
        real_write = pipeline.analytics.write
        failures = {"left": 1}

        def flaky_write(writes: Any) -> None:
            if failures["left"]:
                failures["left"] -= 1
                raise StoreError("analytics store: timeout")
            real_write(writes)

        pipeline.analytics.write = flaky_write  # type: ignore[method-assign]
        pipeline.analyze(batch_size=400, metrics=metrics, retry=StoreRetry(sleep=lambda _: None))
        assert value("fxcortex_analyzer_events_consumed_total") == pending
        assert value("fxcortex_analyzer_batches_total") == -(-pending // 400)
        assert value("fxcortex_analyzer_end_to_end_latency_seconds_count") == pending
        assert value("fxcortex_analyzer_end_to_end_latency_seconds_sum") > 0
        assert value("fxcortex_analyzer_consumer_lag") == 0
        assert value("fxcortex_analytics_store_failures_total") == 1
        assert value("fxcortex_analytics_insert_duration_seconds_count") == -(-pending // 400)
