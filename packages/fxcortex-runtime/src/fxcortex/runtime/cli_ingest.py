"""The ingestion commands: ``bootstrap``, ``scheduler``, ``backfill`` and ``runs``.

They work on the ingestion stores of the configured profile (`fxcortex.runtime.ingest`): SQLite
for ``embedded``, PostgreSQL and Redis for ``distributed``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import attrs
import click

from fxcortex.core import FetchWindow, FxCortexError, QueryResult
from fxcortex.runtime.config import ConfigError, Settings
from fxcortex.runtime.ingest import (
    DEFAULT_LOCK_TTL,
    DEFAULT_LOOKBACK,
    Ingestor,
    RunOutcome,
    bootstrap,
)
from fxcortex.runtime.ledger import BackfillRecord

if TYPE_CHECKING:
    from fxcortex.runtime.metrics import IngestMetrics

log = logging.getLogger("fxcortex.runtime")


def settings_of(context: click.Context) -> Settings:
    """The settings from the environment, with ``--home`` applied."""
    settings = Settings.from_env()
    home: Path | None = getattr(context.obj, "home", None)
    return attrs.evolve(settings, home=home) if home is not None else settings


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level != "debug":  # APScheduler tells every job it adds and runs at INFO
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _source_options(values: Sequence[str]) -> dict[str, dict[str, str]]:
    options: dict[str, dict[str, str]] = {}
    for value in values:
        source, colon, pair = value.partition(":")
        key, equals, option = pair.partition("=")
        if not colon or not equals or not source or not key:
            raise click.BadParameter(
                f"{value!r}: write SOURCE:KEY=VALUE, e.g. ecb:location=bundled",
                param_hint="--option",
            )
        options.setdefault(source, {})[key] = option
    return options


def _key_values(values: Sequence[str]) -> dict[str, str]:
    options = {}
    for value in values:
        key, equals, option = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(
                f"{value!r}: write options as KEY=VALUE", param_hint="--option"
            )
        options[key] = option
    return options


@contextmanager
def open_ingestor(
    context: click.Context,
    *,
    metrics: IngestMetrics | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
    options: Mapping[str, Mapping[str, str]] | None = None,
    lock_ttl: float = DEFAULT_LOCK_TTL,
) -> Iterator[Ingestor]:
    """An `Ingestor` for the command's settings; fxcortex errors become one clear line."""
    try:
        with Ingestor.open(
            settings_of(context),
            metrics=metrics,
            lookback=lookback,
            options=options,
            lock_ttl=lock_ttl,
        ) as ingestor:
            yield ingestor
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error


def describe_outcome(outcome: RunOutcome) -> str:
    """One line about a run."""
    if outcome.status == "skipped":
        return f"{outcome.source}: skipped, another scheduler or backfill runs it right now"
    if outcome.result is None:
        return f"{outcome.source}: failed: {outcome.error}"
    r = outcome.result
    return (
        f"{outcome.source}: {r.received:,} quotes, {r.inserted:,} new, {r.revised:,} revised, "
        f"{r.unchanged:,} unchanged"
    )


@click.command(name="bootstrap")
@click.pass_context
def bootstrap_command(context: click.Context) -> None:
    """Create or upgrade the rate store's schema (idempotent: safe to run again)."""
    try:
        settings = settings_of(context)
        applied = bootstrap(settings)
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error
    where = settings.database if settings.profile == "distributed" else settings.rates_path
    if applied:
        for migration in applied:
            click.echo(f"applied migration {migration}")
    click.echo(f"{where}: schema up to date ({settings.profile} profile)")


@click.command(name="scheduler")
@click.option(
    "--source", "sources", multiple=True, help="Run only this source (repeatable; default: all)."
)
@click.option(
    "--schedule",
    "schedules",
    multiple=True,
    metavar="SOURCE=CRON[@TZ]",
    help="Override a source's schedule, e.g. ecb='0 17 * * 1-5@Europe/Berlin' (repeatable). "
    "Also FXCORTEX_SCHEDULE_<SOURCE>.",
)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="SOURCE:KEY=VALUE",
    help="A source option, e.g. -o ecb:location=bundled (repeatable).",
)
@click.option("--run-now", is_flag=True, help="Also run every source once at start.")
@click.option(
    "--bootstrap", "run_bootstrap", is_flag=True, help="Create or upgrade the schema first."
)
@click.option("--list", "list_only", is_flag=True, help="Show the jobs and their next runs, exit.")
@click.option(
    "--jitter",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Max random delay of a run (seconds).",
)
@click.option(
    "--misfire-grace",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help="How late a run may still start (seconds).",
)
@click.option(
    "--lookback-days",
    type=click.IntRange(min=0),
    default=7,
    show_default=True,
    help="Re-fetch this many days before the watermark (publishers revise).",
)
@click.option(
    "--lock-ttl",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds a dead scheduler's lock outlives it.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Sources run at once.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0, max=65535),
    default=lambda: int(os.environ.get("FXCORTEX_METRICS_PORT", "9464")),
    show_default="$FXCORTEX_METRICS_PORT or 9464",
    help="Serve Prometheus metrics on this port (0: off).",
)
@click.option("--metrics-address", default="0.0.0.0", show_default=True)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.pass_context
def scheduler_command(
    context: click.Context,
    sources: Sequence[str],
    schedules: Sequence[str],
    options: Sequence[str],
    run_now: bool,
    run_bootstrap: bool,
    list_only: bool,
    jitter: int,
    misfire_grace: int,
    lookback_days: int,
    lock_ttl: float,
    workers: int,
    metrics_port: int,
    metrics_address: str,
    log_level: str,
) -> None:
    """Run every enabled source on its schedule until SIGTERM or Ctrl-C.

    A signal stops scheduling and waits for the running fetches to finish; a source being
    loaded is one transaction, so even a kill loses nothing.
    """
    from fxcortex.runtime.scheduler import SchedulerService, plan_jobs

    _setup_logging(log_level)
    if run_bootstrap:
        try:
            for migration in bootstrap(settings_of(context)):
                log.info("applied migration %s", migration)
        except FxCortexError as error:
            raise click.ClickException(str(error)) from error
    overrides = {}
    for value in schedules:
        name, equals, text = value.partition("=")
        if not equals:
            raise click.BadParameter(f"{value!r}: write SOURCE=CRON[@TZ]", param_hint="--schedule")
        overrides[name] = text
    metrics = None
    if metrics_port and not list_only:
        try:
            from fxcortex.runtime.metrics import IngestMetrics
        except ImportError as error:
            raise click.ClickException(
                f"metrics need {error.name}: pip install 'fxcortex-runtime[distributed]'"
                " (or --metrics-port 0)"
            ) from error
        metrics = IngestMetrics()
    with open_ingestor(
        context,
        metrics=metrics,
        lookback=timedelta(days=lookback_days),
        options=_source_options(options),
        lock_ttl=lock_ttl,
    ) as ingestor:
        try:
            jobs = plan_jobs(ingestor.registry, only=sources, overrides=overrides)
            service = SchedulerService(
                ingestor,
                jobs,
                jitter=0 if list_only else jitter,
                misfire_grace=misfire_grace,
                workers=workers,
            )
        except FxCortexError as error:
            raise click.ClickException(str(error)) from error
        except ImportError as error:
            raise click.ClickException(
                f"the scheduler needs {error.name}: pip install 'fxcortex-runtime[distributed]'"
            ) from error
        if list_only:
            service.scheduler.start(paused=True)
            rows = [
                (
                    job.source,
                    job.schedule.cron,
                    job.schedule.timezone,
                    "override" if job.overridden else "declared",
                    _when(service.next_run(job.source)),
                )
                for job in jobs
            ]
            service.shutdown(wait=False)
            from fxcortex.runtime.cli import format_table

            columns = ["source", "cron", "timezone", "schedule", "next run (UTC)"]
            click.echo(format_table(QueryResult(columns=columns, rows=rows)))
            return
        if not jobs:
            raise click.ClickException("no source to schedule")
        if metrics is not None:
            metrics.serve(metrics_port, metrics_address)
            log.info("metrics on http://%s:%d/metrics", metrics_address, metrics_port)
        stop = threading.Event()

        def on_signal(number: int, _frame: FrameType | None) -> None:
            log.info(
                "%s received: finishing the running fetches, then exiting",
                signal.Signals(number).name,
            )
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info(
            "scheduler %s (%s profile) runs %d source(s)",
            ingestor.holder,
            ingestor.stores.settings.profile,
            len(jobs),
        )
        service.run_until(stop, run_now=run_now)


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "-"


@click.command(name="backfill")
@click.argument("source")
@click.option(
    "--since", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day (inclusive)."
)
@click.option(
    "--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day (inclusive; default today)."
)
@click.option(
    "--chunk-days",
    type=click.IntRange(min=1),
    help="Days per chunk (default: what the source allows, else a year).",
)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A source option (repeatable).",
)
@click.option(
    "--restart", is_flag=True, help="Start over instead of resuming after the last finished chunk."
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
)
@click.pass_context
def backfill_command(
    context: click.Context,
    source: str,
    since: datetime,
    until: datetime | None,
    chunk_days: int | None,
    options: Sequence[str],
    restart: bool,
    log_level: str,
) -> None:
    """Load SOURCE's history chunk by chunk; interrupted, the same command resumes it."""
    _setup_logging(log_level)
    parsed = _key_values(options)
    stop = threading.Event()

    def on_signal(number: int, _frame: FrameType | None) -> None:
        click.echo(f"{signal.Signals(number).name}: stopping after the current chunk", err=True)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    def on_chunk(outcome: RunOutcome, record: BackfillRecord) -> None:
        window = outcome.window
        click.echo(f"{window.since} .. {window.until}  {describe_outcome(outcome)}")

    try:
        with open_ingestor(context) as ingestor:
            try:
                result = ingestor.backfill(
                    source,
                    since.date(),
                    until.date() if until else None,
                    options=parsed,
                    chunk_days=chunk_days,
                    restart=restart,
                    on_chunk=on_chunk,
                    stop=stop,
                )
            except FxCortexError as error:
                raise click.ClickException(str(error)) from error
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    record = result.record
    span = f"{record.since} .. {record.until}"
    if result.status == "already finished":
        click.echo(f"{source} {span}: already finished (--restart loads it again)")
        return
    if result.resumed_from != record.since:
        click.echo(f"(resumed from {result.resumed_from})")
    loaded = result.loaded
    summary = (
        f"{source} {span}: {len(result.chunks)} chunk(s), {loaded.received:,} quotes, "
        f"{loaded.inserted:,} new, {loaded.revised:,} revised"
    )
    if result.status == "finished":
        click.echo(f"{summary}; finished")
        return
    done = record.done_until or "nothing yet"
    click.echo(f"{summary}; done up to {done}", err=True)
    if result.status == "interrupted":
        raise click.ClickException("interrupted: run the same command again to resume")
    failed = result.chunks[-1]
    raise click.ClickException(f"{describe_outcome(failed)}; run the same command to resume")


@click.command(name="runs")
@click.option("--source", help="Only this source's runs.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.pass_context
def runs_command(context: click.Context, source: str | None, limit: int) -> None:
    """The latest ingest runs: when, what window, how it ended and what it loaded."""
    from fxcortex.runtime.cli import format_table

    with open_ingestor(context) as ingestor:
        try:
            runs = ingestor.stores.ledger.runs(source=source, limit=limit)
        except FxCortexError as error:
            raise click.ClickException(str(error)) from error
    rows = [
        (
            run.id,
            run.source,
            run.trigger,
            f"{run.window.since or '…'} .. {run.window.until or 'now'}",
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            run.status,
            "" if run.inserted is None else run.inserted,
            "" if run.revised is None else run.revised,
            (run.error or "")[:60],
        )
        for run in runs
    ]
    columns = [
        "id",
        "source",
        "trigger",
        "window",
        "started (UTC)",
        "status",
        "new",
        "revised",
        "error",
    ]
    click.echo(format_table(QueryResult(columns=columns, rows=rows)))


def has_pipeline(context: click.Context) -> bool:
    """Whether the configured profile has a whole pipeline (else: ingestion commands only)."""
    from fxcortex.runtime.profiles import PROFILES

    try:
        return settings_of(context).profile in PROFILES
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error


def fetch_with_ingestor(
    context: click.Context,
    source: str,
    since: date | None,
    until: date | None,
    options: dict[str, str],
) -> None:
    """``fxcortex fetch`` for a profile that has ingestion stores but no pipeline yet."""
    with open_ingestor(context) as ingestor:
        try:
            outcome = ingestor.run(
                source, FetchWindow(since=since, until=until), trigger="manual", options=options
            )
        except ConfigError as error:
            raise click.ClickException(str(error)) from error
    if outcome.status == "failed":
        raise click.ClickException(str(outcome.error))
    click.echo(describe_outcome(outcome))
    if outcome.status == "skipped":
        sys.exit(75)  # EX_TEMPFAIL: try again later


COMMANDS = (bootstrap_command, scheduler_command, backfill_command, runs_command)
