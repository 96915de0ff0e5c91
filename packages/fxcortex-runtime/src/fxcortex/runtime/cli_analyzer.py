"""``fxcortex analyzer`` (the service) and ``fxcortex analytics setup`` (the one-off)."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import click

from fxcortex.core import FxCortexError
from fxcortex.runtime.analyzer import StoreRetry
from fxcortex.runtime.config import Settings
from fxcortex.runtime.pipeline import Pipeline

if TYPE_CHECKING:
    from fxcortex.runtime.metrics import AnalyzerMetrics


def run_service(
    pipeline: Pipeline,
    stop: threading.Event,
    *,
    batch_size: int | None = None,
    metrics: AnalyzerMetrics | None = None,
) -> tuple[int, int]:
    """Analyze batch after batch until ``stop`` is set; (changes, batches) done.

    Each batch is polled, written, its state committed and last its feed position committed, so
    stopping between batches loses nothing and a kill in the middle of one re-delivers it.
    """
    changes = batches = 0
    # A service insists on a failing analytics store until it is told to stop: nothing of the
    # batch is committed meanwhile, so the stop loses nothing either.
    retry = StoreRetry(attempts=None, stop=stop.is_set, sleep=stop.wait)
    while not stop.is_set():
        result = pipeline.analyze(
            batch_size=batch_size, max_batches=1, retry=retry, metrics=metrics
        )
        changes += result.changes
        batches += result.batches
        if result.changes == 0 and pipeline.settings.profile == "embedded":
            stop.wait(1.0)  # the Kafka feed waits inside poll; the SQLite one returns at once
    return changes, batches


@click.command()
@click.option("--batch-size", type=click.IntRange(min=1), help="Changes per batch at most.")
@click.option(
    "--metrics-port",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Serve Prometheus metrics on this port (0: off; needs fxcortex-runtime[distributed]).",
)
def analyzer(batch_size: int | None, metrics_port: int) -> None:
    """Run every registered analyzer on the change feed until SIGTERM or SIGINT.

    On a signal the batch in hand is finished (written, committed), then the service exits.
    """
    stop = threading.Event()
    metrics = None
    if metrics_port:
        from fxcortex.runtime.metrics import AnalyzerMetrics

        metrics = AnalyzerMetrics()
        metrics.serve(metrics_port)
        click.echo(f"metrics on :{metrics_port}/metrics", err=True)

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"{signal.Signals(signum).name}: finishing the batch in hand", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        with Pipeline.open(Settings.from_env()) as pipeline:
            click.echo(f"analyzer running ({pipeline.settings.profile} profile)", err=True)
            changes, batches = run_service(pipeline, stop, batch_size=batch_size, metrics=metrics)
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"analyzer stopped after {changes} changes in {batches} batches", err=True)


@click.group()
def analytics() -> None:
    """The analytics store."""


@analytics.command()
def setup() -> None:
    """Create the tables of every registered analyzer (idempotent)."""
    try:
        with Pipeline.open(Settings.from_env()) as pipeline:  # opening creates the tables
            names = [
                spec.name
                for analyzer in pipeline.registry.analyzers.values()
                for spec in analyzer.tables
            ]
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error
    click.echo("tables ready: " + (", ".join(names) or "none"))
