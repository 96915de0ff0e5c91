"""The scheduler service: every enabled source run on its own schedule (``fxcortex scheduler``).

One APScheduler 3 job per source, on the cron of the source's declared `Schedule`, read in the
source's timezone, or on an override (``FXCORTEX_SCHEDULE_<SOURCE>`` or ``--schedule``, written
``CRON@TIMEZONE``, e.g. ``15 16 * * 1-5@Europe/Berlin``). Jobs coalesce (a backlog of missed
firings runs once), run one instance at a time, may start up to ``misfire_grace`` seconds late,
and get up to ``jitter`` seconds of random delay, so replicas do not all hit a publisher at the
same instant. Each run goes through `Ingestor.run`, which takes the source's lock: two replicas of
the scheduler never run one source at once. `SchedulerService.shutdown` (on SIGTERM) waits for
the running jobs to finish.

Crontab and APScheduler 3 number weekdays differently (crontab: 0 or 7 is Sunday, 1 Monday;
APScheduler 3: 0 is Monday), so `cron_fields` rewrites the day-of-week field as names.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs

from fxcortex.core import FxCortexError, Registry, Schedule
from fxcortex.runtime.config import ConfigError
from fxcortex.runtime.ingest import Ingestor, RunOutcome

log = logging.getLogger(__name__)

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering, 7 is sun too
_APS_ORDER = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_JITTER = 30
DEFAULT_MISFIRE_GRACE = 3600


def _weekday(token: str, cron: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token in _WEEKDAYS:
        return _WEEKDAYS.index(token)
    raise ConfigError(f"cron {cron!r}: {token!r} is not a day of the week (0-7 or sun-sat)")


def _days_of_week(field: str, cron: str) -> str:
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        body, slash, step_text = item.partition("/")
        if slash and not step_text.isdigit():
            raise ConfigError(f"cron {cron!r}: step {step_text!r} is not a whole number")
        step = int(step_text) if slash else 1
        if body == "*":
            low, high = 0, 6
        elif "-" in body:
            first, _, last = body.partition("-")
            low, high = _weekday(first, cron), _weekday(last, cron)
        else:
            low = _weekday(body, cron)
            high = 6 if slash else low
        if low > high or step < 1:
            raise ConfigError(f"cron {cron!r}: day-of-week range {item!r} is empty")
        days.update(day % 7 for day in range(low, high + 1, step))
    return ",".join(name for name in _APS_ORDER if _WEEKDAYS.index(name) in days)


def cron_fields(cron: str) -> dict[str, str]:
    """The fields of a five-field crontab expression as APScheduler 3 `CronTrigger` arguments."""
    fields = cron.split()
    if len(fields) != 5:
        raise ConfigError(
            f"cron {cron!r}: needs five fields (minute hour day-of-month month day-of-week)"
        )
    minute, hour, day, month, day_of_week = fields
    if day != "*" and day_of_week != "*":
        # crontab runs when either matches, APScheduler only when both do: refuse, not guess
        raise ConfigError(
            f"cron {cron!r}: restrict either the day of the month or the day of the week, not both"
        )
    return {
        "minute": minute,
        "hour": hour,
        "day": day,
        "month": month,
        "day_of_week": _days_of_week(day_of_week, cron),
    }


def parse_schedule(text: str) -> Schedule:
    """``CRON`` or ``CRON@TIMEZONE`` (default UTC), e.g. ``15 16 * * 1-5@Europe/Berlin``."""
    cron, _, zone = text.partition("@")
    schedule = Schedule(cron=" ".join(cron.split()), timezone=zone.strip() or "UTC")
    check_schedule(schedule)
    return schedule


def check_schedule(schedule: Schedule) -> None:
    """Raise `ConfigError` unless the cron and the timezone can be used."""
    cron_fields(schedule.cron)
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"schedule {schedule.cron!r}: {schedule.timezone!r} is not a timezone"
        ) from None


def env_name(source: str) -> str:
    """The variable that overrides a source's schedule: ``FXCORTEX_SCHEDULE_<SOURCE>``."""
    return "FXCORTEX_SCHEDULE_" + re.sub(r"[^A-Z0-9]", "_", source.upper())


@attrs.frozen(kw_only=True)
class Job:
    """A source and when to run it."""

    source: str
    schedule: Schedule
    overridden: bool = False


def plan_jobs(
    registry: Registry,
    *,
    only: Sequence[str] = (),
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> list[Job]:
    """One job per enabled source (``only`` the named ones, when given), each on its schedule.

    A source whose optional extra is missing is left out with a log line, not a failure.
    """
    overrides = dict(overrides or {})
    unknown = sorted((set(only) | set(overrides)) - set(registry.sources))
    if unknown:
        raise ConfigError(
            f"no source named {', '.join(map(repr, unknown))}; registered: "
            f"{', '.join(sorted(registry.sources))}"
        )
    jobs = []
    for name in sorted(only or registry.sources):
        source = registry.sources[name]
        extra = getattr(source, "extra", None)
        if extra is not None and not extra.installed():
            log.warning(
                "%s not scheduled: it needs pip install '%s[%s]'",
                name,
                extra.distribution,
                extra.name,
            )
            continue
        text = overrides.get(name) or environ.get(env_name(name))
        schedule = parse_schedule(text) if text else source.schedule
        check_schedule(schedule)
        jobs.append(Job(source=name, schedule=schedule, overridden=text is not None))
    return jobs


def cron_trigger(schedule: Schedule, *, jitter: int = 0) -> Any:
    """The APScheduler `CronTrigger` of a schedule."""
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]

    return CronTrigger(
        **cron_fields(schedule.cron), timezone=schedule.timezone, jitter=jitter or None
    )


class SchedulerService:
    """The scheduler: APScheduler jobs running an `Ingestor`'s sources, plus cache catch-up."""

    def __init__(
        self,
        ingestor: Ingestor,
        jobs: Sequence[Job],
        *,
        jitter: int = DEFAULT_JITTER,
        misfire_grace: int = DEFAULT_MISFIRE_GRACE,
        workers: int = 4,
        catch_up_seconds: float = 30.0,
    ) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor  # type: ignore[import-untyped]
        from apscheduler.schedulers.background import (  # type: ignore[import-untyped]
            BackgroundScheduler,
        )

        self.ingestor = ingestor
        self._per_thread = ingestor.stores.settings.profile == "embedded"
        self._local = threading.local()
        self._copies: list[Ingestor] = []
        self.jobs = list(jobs)
        self.outcomes: list[RunOutcome] = []
        self._outcomes_lock = threading.Lock()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": misfire_grace,
            },
            timezone=UTC,
        )
        for job in self.jobs:
            self.scheduler.add_job(
                self._run,
                cron_trigger(job.schedule, jitter=jitter),
                args=[job.source],
                id=f"source:{job.source}",
                name=f"{job.source} ({job.schedule.cron} {job.schedule.timezone})",
                replace_existing=True,
            )
        self.scheduler.add_job(
            self._catch_up, "interval", seconds=catch_up_seconds, id="cache:catch-up"
        )

    def start(self, *, run_now: bool = False) -> None:
        """Start the jobs; ``run_now`` also runs every source once right away."""
        self.scheduler.start()
        if run_now:
            now = datetime.now(UTC)
            for job in self.jobs:
                self.scheduler.modify_job(f"source:{job.source}", next_run_time=now)
        for job in self.jobs:
            log.info("scheduled %s: next run %s", job.source, self.next_run(job.source))

    def next_run(self, source: str) -> datetime | None:
        """When the job of ``source`` fires next (None when it is paused or unknown)."""
        job = self.scheduler.get_job(f"source:{source}")
        return job.next_run_time if job is not None else None

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop scheduling; with ``wait``, return once every running job has finished."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    def run_until(self, stop: threading.Event, *, run_now: bool = False) -> None:
        """Run until ``stop`` is set (a signal handler sets it), then shut down gracefully."""
        self.start(run_now=run_now)
        try:
            while not stop.wait(1.0):
                pass
        finally:
            log.info("stopping: waiting for running jobs to finish")
            self.shutdown(wait=True)
            log.info("stopped")

    def _worker_ingestor(self) -> Ingestor:
        if not self._per_thread:  # PostgreSQL pool and Redis client serve every thread
            return self.ingestor
        ingestor: Ingestor | None = getattr(self._local, "ingestor", None)
        if ingestor is None:  # SQLite connections serve only the thread that opened them
            ingestor = self._local.ingestor = self.ingestor.copy()
            with self._outcomes_lock:
                self._copies.append(ingestor)
        return ingestor

    def _run(self, source: str) -> None:
        try:
            outcome = self._worker_ingestor().run(source, trigger="scheduled")
        except FxCortexError as error:  # Ingestor.run reports failures; this is a safety net
            log.error("%s: run failed: %s", source, error)
            return
        with self._outcomes_lock:
            self.outcomes.append(outcome)
            del self.outcomes[:-1000]

    def _catch_up(self) -> None:
        cache = self.ingestor.stores.cache
        if cache.pending or not cache.available:
            cache.catch_up()
        if self.ingestor.metrics is not None:
            self.ingestor.metrics.cache_up.set(1 if cache.available else 0)
