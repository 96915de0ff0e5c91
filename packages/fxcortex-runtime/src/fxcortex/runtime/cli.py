"""The ``fxcortex`` command: argument parsing, progress and printing over `fxcortex.runtime`."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import click

from fxcortex.core import FxCortexError, QueryResult, Registry, make_plugin_manager
from fxcortex.core.extras import Extra
from fxcortex.runtime.cli_analyzer import analytics as analytics_command
from fxcortex.runtime.cli_analyzer import analyzer as analyzer_command
from fxcortex.runtime.cli_connector import connector as connector_command
from fxcortex.runtime.cli_ingest import COMMANDS as INGEST_COMMANDS
from fxcortex.runtime.cli_ingest import fetch_with_ingestor, has_pipeline
from fxcortex.runtime.config import Settings
from fxcortex.runtime.demo import run_demo
from fxcortex.runtime.pipeline import Pipeline


@attrs.frozen
class _Options:
    home: Path | None


@click.group()
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the embedded profile keeps its files (default: $FXCORTEX_HOME, else "
    "~/.local/share/fxcortex).",
)
@click.version_option(package_name="fxcortex-runtime")
@click.pass_context
def main(context: click.Context, home: Path | None) -> None:
    """FX-Cortex: an event-driven pipeline for foreign-exchange rates."""
    context.obj = _Options(home=home)


@contextmanager
def _pipeline(context: click.Context) -> Iterator[Pipeline]:
    options: _Options = context.obj
    try:
        settings = Settings.from_env()
        if options.home is not None:
            settings = attrs.evolve(settings, home=options.home)
        with Pipeline.open(settings) as pipeline:
            yield pipeline
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error


@main.command()
@click.pass_context
def demo(context: click.Context) -> None:
    """Run the whole flow offline on the real ECB history (1999 to the bundled date)."""
    with _pipeline(context) as pipeline:
        click.echo(f"FX-Cortex demo, embedded profile, files in {pipeline.settings.home}")
        click.echo("Loading the ECB reference-rate history (bundled, offline) …")
        bar: Any = None

        def on_loaded(received: int, pending: int) -> None:
            nonlocal bar
            click.echo(
                f"  {received:,} observations read; {pending:,} changes wait for the analyzer"
            )
            bar = click.progressbar(
                length=pending, label="Analyzing", show_pos=True, file=sys.stderr
            )
            bar.__enter__()

        def on_batch(size: int) -> None:
            if bar is not None:
                bar.update(size)

        try:
            summary = run_demo(pipeline, on_loaded=on_loaded, on_batch=on_batch)
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
        click.echo("")
        click.echo(
            f"observations loaded      {summary.inserted:>12,}  (new; {summary.revised:,} revised,"
            f" {summary.received - summary.inserted - summary.revised:,} unchanged)"
        )
        click.echo(f"change events processed  {summary.changes_processed:>12,}")
        for table, rows in summary.rows_per_table.items():
            click.echo(f"rows in {table:<17}{rows:>12,}")
        click.echo(f"elapsed                  {summary.elapsed_seconds:>11.2f}s")
        click.echo("")
        click.echo(
            'Try: fxcortex query "SELECT bucket_start, open, high, low, close FROM ohlc'
            " WHERE quote = 'USD' AND resolution = 'month' ORDER BY bucket_start DESC LIMIT 12\""
        )


@main.command()
@click.argument("source")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="First day to fetch (inclusive).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), help="Last day to fetch (inclusive).")
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A source option, e.g. -o location=bundled (repeatable).",
)
@click.option("--dry-run", is_flag=True, help="Show the quotes instead of loading them.")
@click.pass_context
def fetch(
    context: click.Context,
    source: str,
    since: datetime | None,
    until: datetime | None,
    options: Sequence[str],
    dry_run: bool,
) -> None:
    """Fetch SOURCE and load its quotes into the rate store."""
    parsed = _key_values(options)
    first, last = (since.date() if since else None), (until.date() if until else None)
    if not dry_run and not has_pipeline(context):  # distributed: ingestion only, for now
        fetch_with_ingestor(context, source, first, last, parsed)
        return
    with _pipeline(context) as pipeline:
        try:
            if dry_run:
                quotes = pipeline.preview(source, since=first, until=last, options=parsed)
                for quote in quotes[:20]:
                    click.echo(
                        f"{quote.observed_at.isoformat()}  {quote.pair}  {quote.kind}  {quote.rate}"
                    )
                more = " (first 20 shown)" if len(quotes) > 20 else ""
                click.echo(f"{len(quotes):,} quotes would be loaded{more}")
                return
            result = pipeline.fetch(source, since=first, until=last, options=parsed)
        except FxCortexError as error:
            raise click.ClickException(str(error)) from error
        click.echo(
            f"{source}: {result.received:,} quotes, {result.inserted:,} new, "
            f"{result.revised:,} revised, {result.unchanged:,} unchanged"
        )


def _key_values(options: Sequence[str]) -> dict[str, str]:
    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise click.BadParameter(
                f"{option!r}: write options as KEY=VALUE", param_hint="--option"
            )
        parsed[key] = value
    return parsed


@main.command()
@click.option("--batch-size", type=click.IntRange(min=1), help="Changes per batch.")
@click.pass_context
def analyze(context: click.Context, batch_size: int | None) -> None:
    """Run every analytic over the changes that wait in the feed."""
    with _pipeline(context) as pipeline:
        pending = pipeline.pending()
        try:
            with click.progressbar(
                length=pending, label="Analyzing", show_pos=True, file=sys.stderr
            ) as bar:
                result = pipeline.analyze(batch_size=batch_size, on_batch=bar.update)
        except FxCortexError as error:
            raise click.ClickException(str(error)) from error
        written = ", ".join(f"{table}: {rows:,}" for table, rows in result.rows_written.items())
        click.echo(
            f"{result.changes:,} changes in {result.batches} batches; rows written: "
            f"{written or 'none'}"
        )


@main.command()
@click.argument("sql")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.pass_context
def query(context: click.Context, sql: str, output_format: str) -> None:
    """Run SQL on the analytics store (tables: see `fxcortex plugins`)."""
    with _pipeline(context) as pipeline:
        try:
            result = pipeline.query(sql)
        except FxCortexError as error:
            raise click.ClickException(str(error)) from error
    if output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([[_text(v) for v in row] for row in result.rows])
    elif output_format == "json":
        records = [
            dict(zip(result.columns, map(_json_value, row), strict=True)) for row in result.rows
        ]
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
    else:
        click.echo(format_table(result))


def _text(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return "" if value is None else str(value)


def _json_value(value: object) -> object:
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _text(value)  # decimals as strings: JSON numbers would pass through a float


def format_table(result: QueryResult) -> str:
    """Rows as an aligned text table, numbers right-aligned."""
    texts = [[_text(v) for v in row] for row in result.rows]
    widths = [
        max([len(name)] + [len(row[i]) for row in texts]) for i, name in enumerate(result.columns)
    ]
    numeric = [
        bool(result.rows) and all(isinstance(row[i], int | float | Decimal) for row in result.rows)
        for i in range(len(result.columns))
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    out = [line(list(result.columns)), line(["-" * width for width in widths])]
    out += [line(row) for row in texts]
    out.append(f"({len(texts)} row{'s' if len(texts) != 1 else ''})")
    return "\n".join(out)


@main.command()
def sources() -> None:
    """List every source: what it is, when it publishes, how far back, and its extra."""
    try:
        registry = Registry.collect(make_plugin_manager())
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error
    rows = []
    for name in sorted(registry.sources):
        source = registry.sources[name]
        extra: Extra | None = getattr(source, "extra", None)
        if extra is None:
            extra_state = "-"
        elif extra.installed():
            extra_state = f"{extra.name}: installed"
        else:
            extra_state = f"{extra.name}: pip install '{extra.distribution}[{extra.name}]'"
        schedule = source.schedule
        rows.append(
            (
                name,
                source.description,
                f"{schedule.cron} ({schedule.timezone})",
                str(source.history_since or "-"),
                str(len(source.currencies) or "varies"),
                extra_state,
            )
        )
    columns = ["source", "description", "schedule", "since", "currencies", "extra"]
    click.echo(format_table(QueryResult(columns=columns, rows=rows)))


@main.command()
def plugins() -> None:
    """List every discovered plugin with its package, version and what it registers."""
    try:
        manager = make_plugin_manager()
        registry = Registry.collect(manager)
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error
    provided: dict[str, list[str]] = {}
    for (kind, name), plugin in registry.owners.items():
        provided.setdefault(plugin, []).append(f"{kind} {name}")
    rows = [
        (
            info.name,
            info.distribution or "-",
            info.version or "-",
            ", ".join(provided.get(info.name, [])),
        )
        for info in manager.infos.values()
    ]
    click.echo(
        format_table(QueryResult(columns=["plugin", "package", "version", "registers"], rows=rows))
    )


for _command in INGEST_COMMANDS:  # bootstrap, scheduler, backfill, runs
    main.add_command(_command)
main.add_command(connector_command)
main.add_command(analyzer_command)
main.add_command(analytics_command)


if __name__ == "__main__":
    main()
