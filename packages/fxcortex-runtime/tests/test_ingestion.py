"""Ingestion logic: schedules, chunks, the resilient cache, and runs on the embedded profile.

The same `Ingestor` runs the distributed profile; tests/integration/test_ingestion_distributed.py
runs it on real PostgreSQL and Redis.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from fxcortex.core import FetchContext, FetchWindow, Quote, Schedule, SourceError, hookimpl
from fxcortex.core.testing import quote
from fxcortex.runtime.config import ConfigError, Settings
from fxcortex.runtime.ingest import Ingestor, chunk_windows, options_text
from fxcortex.runtime.locks import FileLocks
from fxcortex.runtime.metadata import ResilientCache
from fxcortex.runtime.scheduler import cron_fields, env_name, parse_schedule, plan_jobs


# --------------------------------------------------------------------------- schedules
@pytest.mark.parametrize(
    ("cron_days", "aps_days"),
    [
        ("1-5", "mon,tue,wed,thu,fri"),  # crontab's Monday is 1; APScheduler 3's is 0
        ("0", "sun"),
        ("7", "sun"),
        ("6,0", "sat,sun"),
        ("*/2", "tue,thu,sat,sun"),  # crontab: Sunday, Tuesday, Thursday, Saturday
        ("1-5/2", "mon,wed,fri"),
        ("MON-fri", "mon,tue,wed,thu,fri"),
        ("*", "*"),
    ],
)
def test_crontab_weekdays_are_rewritten_for_apscheduler(cron_days: str, aps_days: str) -> None:
    assert cron_fields(f"15 16 * * {cron_days}")["day_of_week"] == aps_days


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("15 16 * *", "five fields"),
        ("0 12 1 * 1", "not both"),
        ("0 12 * * 8", "not a day of the week"),
        ("0 12 * * 5-1", "empty"),
    ],
)
def test_a_cron_the_scheduler_would_misread_is_refused(cron: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cron_fields(cron)


def test_a_schedule_override_names_its_timezone() -> None:
    assert parse_schedule("0 17 * * 1-5@Europe/Berlin") == Schedule(
        cron="0 17 * * 1-5", timezone="Europe/Berlin"
    )
    assert parse_schedule("*/5 * * * *").timezone == "UTC"
    with pytest.raises(ConfigError, match="not a timezone"):
        parse_schedule("0 17 * * *@Mars/Olympus")
    assert env_name("my-bank") == "FXCORTEX_SCHEDULE_MY_BANK"


def test_a_trigger_fires_at_the_publishers_local_time_on_its_weekdays() -> None:
    pytest.importorskip("apscheduler", reason="the scheduler needs fxcortex-runtime[distributed]")
    from fxcortex.runtime.scheduler import cron_trigger

    trigger = cron_trigger(Schedule(cron="0 16 * * 1-5", timezone="Europe/Berlin"))
    saturday = datetime(2026, 11, 28, 12, tzinfo=UTC)
    fire = trigger.get_next_fire_time(None, saturday)
    assert fire.astimezone(UTC) == datetime(2026, 11, 30, 15, tzinfo=UTC)  # Monday, CET = UTC+1


# --------------------------------------------------------------------------- chunks
def test_a_backfill_span_is_cut_into_chunks_oldest_first() -> None:
    chunks = chunk_windows(date(2024, 1, 1), date(2024, 1, 10), 4)
    assert [(c.since, c.until) for c in chunks] == [
        (date(2024, 1, 1), date(2024, 1, 4)),
        (date(2024, 1, 5), date(2024, 1, 8)),
        (date(2024, 1, 9), date(2024, 1, 10)),
    ]
    assert chunk_windows(date(2024, 1, 2), date(2024, 1, 1), 4) == []
    assert options_text({"b": "2", "a": "1"}) == "a=1&b=2"


# --------------------------------------------------------------------------- the cache
class Unreachable(Exception):
    """What the fake server raises while it is away."""


@attrs.define
class FlakyCache:
    """An in-memory cache that can be switched off, standing for a Redis that goes away."""

    data: dict[str, bytes] = attrs.Factory(dict)
    up: bool = True
    commits: int = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        if not self.up:
            raise Unreachable("connection refused")
        return {key: self.data[key] for key in keys if key in self.data}

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        if not self.up:
            raise Unreachable("connection refused")
        self.commits += 1
        self.data.update(puts)
        for key in deletes:
            self.data.pop(key, None)

    def close(self) -> None:
        pass


def test_while_the_cache_is_away_reads_miss_and_writes_wait_for_its_return(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = FlakyCache(data={"kept": b"1", "gone": b"2"})
    cache = ResilientCache(inner, (Unreachable,), name="Redis")
    inner.up = False
    assert cache.get_many(["kept"]) == {}
    cache.commit({"new": b"a"}, deletes=["gone"])
    cache.commit({"new": b"b"})
    assert not cache.available and cache.pending == 2
    assert cache.get_many(["new", "gone"]) == {"new": b"b"}  # our own writes are seen
    assert "UNAVAILABLE" in caplog.text
    inner.up = True
    assert cache.get_many(["kept", "new", "gone"]) == {"kept": b"1", "new": b"b"}
    assert inner.data == {"kept": b"1", "new": b"b"} and inner.commits == 1  # one atomic commit
    assert cache.available and cache.pending == 0


def test_the_cache_reports_its_return_only_once_it_really_answers() -> None:
    inner = FlakyCache()
    cache = ResilientCache(inner, (Unreachable,))
    inner.up = False
    assert cache.get_many(["key"]) == {} and not cache.available
    assert not cache.catch_up() and not cache.available
    inner.up = True
    assert cache.catch_up() and cache.available


# --------------------------------------------------------------------------- runs, embedded
@attrs.define(eq=False)
class ScriptedSource:
    name: str = "scripted"
    description: str = "quotes set by the test"
    schedule: Schedule = Schedule(cron="0 16 * * 1-5", timezone="Europe/Berlin")
    currencies: tuple[str, ...] = ()
    history_since: date | None = date(2024, 1, 1)
    observation_interval: timedelta = timedelta(days=1)
    max_window_days: int | None = None  # optional: None means the runtime's default chunk
    quotes: list[Quote] = attrs.Factory(list)
    fail_on: date | None = None
    windows: list[FetchWindow] = attrs.Factory(list)

    def fetch(self, window: FetchWindow, context: FetchContext | None = None) -> list[Quote]:
        self.windows.append(window)
        if self.fail_on is not None and window.contains(self.fail_on):
            raise SourceError(self.name, f"nothing published for {self.fail_on}")
        return [q for q in self.quotes if window.contains(q.observed_at.date())]

    def configure(self, **options: str) -> ScriptedSource:
        return self


@attrs.define
class Plugin:
    source: ScriptedSource

    @hookimpl
    def fxcortex_register_sources(self, register: Callable[[ScriptedSource], None]) -> None:
        register(self.source)


def daily(days: int, first: date = date(2024, 1, 1)) -> list[Quote]:
    start = datetime(first.year, first.month, first.day, 14, tzinfo=UTC)
    return [
        quote(rate=f"1.{day:03d}", observed_at=start + timedelta(days=day), source="scripted")
        for day in range(days)
    ]


@pytest.fixture
def source() -> ScriptedSource:
    return ScriptedSource(quotes=daily(20))


@pytest.fixture
def ingestor(tmp_path: Path, source: ScriptedSource) -> Iterator[Ingestor]:
    with Ingestor.open(
        Settings(home=tmp_path / "home"),
        plugins=[("scripted", Plugin(source))],
        lookback=timedelta(days=2),
    ) as opened:
        yield opened


def test_a_scheduled_run_fetches_from_the_watermark_less_the_lookback(
    ingestor: Ingestor, source: ScriptedSource
) -> None:
    first = ingestor.run("scripted", trigger="scheduled")
    assert first.window == FetchWindow() and first.result is not None
    assert first.result.inserted == 20
    assert ingestor.watermark("scripted") == datetime(2024, 1, 20, 14, tzinfo=UTC)
    source.quotes += daily(3, first=date(2024, 1, 21))
    second = ingestor.run("scripted", trigger="scheduled")
    assert second.window == FetchWindow(since=date(2024, 1, 18))
    assert second.result is not None and (second.result.inserted, second.result.unchanged) == (3, 3)
    runs = ingestor.stores.ledger.runs()
    assert [(r.trigger, r.status, r.inserted) for r in runs] == [
        ("scheduled", "succeeded", 3),
        ("scheduled", "succeeded", 20),
    ]


def test_a_source_locked_by_another_holder_is_skipped_not_run(
    ingestor: Ingestor, source: ScriptedSource, tmp_path: Path
) -> None:
    other = FileLocks(tmp_path / "home" / "locks", "another-scheduler")
    lease = other.acquire("scripted")
    assert lease is not None
    try:
        outcome = ingestor.run("scripted")
    finally:
        lease.release()
    assert outcome.status == "skipped" and outcome.ok and source.windows == []
    assert ingestor.run("scripted").status == "succeeded"


def test_a_failed_run_is_recorded_and_raises_nothing(
    ingestor: Ingestor, source: ScriptedSource
) -> None:
    source.fail_on = date(2024, 1, 3)
    outcome = ingestor.run("scripted", FetchWindow(since=date(2024, 1, 1)))
    assert outcome.status == "failed" and not outcome.ok
    assert isinstance(outcome.error, SourceError)
    (run,) = ingestor.stores.ledger.runs()
    assert run.status == "failed" and "nothing published for 2024-01-03" in (run.error or "")
    assert ingestor.stores.rates.count() == 0


def test_a_backfill_resumes_after_the_last_chunk_it_finished(
    ingestor: Ingestor, source: ScriptedSource
) -> None:
    source.fail_on = date(2024, 1, 12)
    failed = ingestor.backfill("scripted", date(2024, 1, 1), date(2024, 1, 20), chunk_days=5)
    assert failed.status == "failed" and failed.record.done_until == date(2024, 1, 10)
    source.fail_on = None
    source.windows.clear()
    done = ingestor.backfill("scripted", date(2024, 1, 1), date(2024, 1, 20), chunk_days=5)
    assert done.status == "finished" and done.resumed_from == date(2024, 1, 11)
    assert [w.since for w in source.windows] == [date(2024, 1, 11), date(2024, 1, 16)]
    assert ingestor.stores.rates.count() == 20
    again = ingestor.backfill("scripted", date(2024, 1, 1), date(2024, 1, 20), chunk_days=5)
    assert again.status == "already finished"
    restarted = ingestor.backfill(
        "scripted", date(2024, 1, 1), date(2024, 1, 20), chunk_days=10, restart=True
    )
    assert restarted.status == "finished" and restarted.loaded.unchanged == 20


def test_a_backfill_takes_the_window_the_source_declares_per_chunk(
    ingestor: Ingestor, source: ScriptedSource
) -> None:
    source.max_window_days = 7
    outcome = ingestor.backfill("scripted", date(2024, 1, 1), date(2024, 1, 20))
    assert outcome.status == "finished"
    assert [(w.since, w.until) for w in source.windows] == [
        (date(2024, 1, 1), date(2024, 1, 7)),
        (date(2024, 1, 8), date(2024, 1, 14)),
        (date(2024, 1, 15), date(2024, 1, 20)),
    ]


def test_nbp_declares_its_93_day_query_limit_as_its_backfill_window() -> None:
    from fxcortex.sources.nbp import NbpSource

    assert NbpSource.of("A").max_window_days == 93


def test_a_backfill_before_the_sources_history_starts_where_it_starts(
    ingestor: Ingestor, source: ScriptedSource
) -> None:
    outcome = ingestor.backfill("scripted", date(2023, 12, 1), date(2024, 1, 5))
    assert outcome.record.since == date(2024, 1, 1)
    assert source.windows == [FetchWindow(since=date(2024, 1, 1), until=date(2024, 1, 5))]


def test_jobs_follow_the_declared_schedule_unless_overridden(ingestor: Ingestor) -> None:
    (job,) = plan_jobs(ingestor.registry, only=["scripted"], environ={})
    assert job.schedule == Schedule(cron="0 16 * * 1-5", timezone="Europe/Berlin")
    assert not job.overridden
    (job,) = plan_jobs(
        ingestor.registry,
        only=["scripted"],
        environ={"FXCORTEX_SCHEDULE_SCRIPTED": "30 9 * * *@Asia/Tehran"},
    )
    assert job.schedule == Schedule(cron="30 9 * * *", timezone="Asia/Tehran") and job.overridden
    with pytest.raises(ConfigError, match="no source named 'nosuch'"):
        plan_jobs(ingestor.registry, only=["nosuch"])


def test_run_metrics_follow_prometheus_naming(ingestor: Ingestor, source: ScriptedSource) -> None:
    pytest.importorskip("prometheus_client", reason="metrics need fxcortex-runtime[distributed]")
    from fxcortex.runtime.metrics import IngestMetrics

    metrics = IngestMetrics()
    ingestor.metrics = metrics
    ingestor.run("scripted")
    source.fail_on = date(2024, 1, 2)
    ingestor.run("scripted", FetchWindow(since=date(2024, 1, 1)))
    value = metrics.registry.get_sample_value
    assert value("fxcortex_rows_loaded_total", {"source": "scripted"}) == 20
    assert value("fxcortex_rows_revised_total", {"source": "scripted"}) == 0
    assert value("fxcortex_fetch_failures_total", {"source": "scripted", "reason": "source"}) == 1
    assert value("fxcortex_fetch_duration_seconds_count", {"source": "scripted"}) == 2
    assert (value("fxcortex_last_success_timestamp_seconds", {"source": "scripted"}) or 0) > 0


# --------------------------------------------------------------------------- settings
def test_the_seeds_database_and_redis_names_are_read() -> None:
    settings = Settings.from_env(
        {
            "FXCORTEX_PROFILE": "distributed",
            "DB_HOST": "db",
            "DB_PORT": "5433",
            "DB_NAME": "fx",
            "DB_USER": "etl",
            "DB_PASSWORD": "it's secret",
            "REDIS_HOST": "cache",
            "REDIS_PORT": "6380",
        }
    )
    assert settings.database.conninfo == (
        "host='db' port='5433' dbname='fx' user='etl' password='it\\'s secret'"
    )
    assert "secret" not in repr(settings)
    assert (settings.redis.host, settings.redis.port, settings.redis.db) == ("cache", 6380, 0)
    defaults = Settings.from_env({})
    assert str(defaults.database) == "postgresql://fxcortex@localhost:5432/fxcortex"
    from fxcortex.runtime.connector import RATES_TOPIC

    assert (defaults.rates_topic, defaults.analyzer_group) == (RATES_TOPIC, "fxcortex-analyzer")
    chosen = Settings.from_env({"FXCORTEX_RATES_TOPIC": "fx.rates", "FXCORTEX_ANALYZER_GROUP": "g"})
    assert (chosen.rates_topic, chosen.analyzer_group) == ("fx.rates", "g")
    with pytest.raises(ConfigError, match="DB_PORT"):
        Settings.from_env({"DB_PORT": "fifty"})


def test_the_scheduler_runs_an_embedded_source_from_its_worker_threads(
    ingestor: Ingestor, source: ScriptedSource
) -> None:
    pytest.importorskip("apscheduler", reason="the scheduler needs fxcortex-runtime[distributed]")
    import time

    from fxcortex.runtime.scheduler import SchedulerService

    (job,) = plan_jobs(ingestor.registry, only=["scripted"], environ={})
    service = SchedulerService(ingestor, [job], jitter=0)
    service.start(run_now=True)
    try:
        deadline = time.monotonic() + 30
        while not service.outcomes and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        service.shutdown(wait=True)
    (outcome,) = service.outcomes
    assert outcome.status == "succeeded", outcome.error  # SQLite opened in the worker thread
    assert ingestor.stores.rates.count() == 20
    assert service.next_run("scripted") is None  # shut down
