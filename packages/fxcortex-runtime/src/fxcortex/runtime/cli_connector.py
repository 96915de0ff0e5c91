"""``fxcortex connector register|status|delete``: the seed's curl step, templated from the env."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import click

from fxcortex.core import FxCortexError
from fxcortex.runtime.config import Settings
from fxcortex.runtime.connector import CONNECTOR_NAME, ConnectClient, connector_config


@contextmanager
def _client() -> Iterator[ConnectClient]:
    try:
        client = ConnectClient(Settings.from_env().connect_url)
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error
    try:
        yield client
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error
    finally:
        client.close()


@click.group()
def connector() -> None:
    """The Debezium connector of the rates table on Kafka Connect (``CONNECT_URL``)."""


@connector.command()
@click.option("--name", default=CONNECTOR_NAME, show_default=True, help="Connector name.")
@click.option("--schemas", is_flag=True, help="Embed JSON schemas in every message.")
@click.option("--heartbeat-ms", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--print", "print_only", is_flag=True, help="Print the config, register nothing.")
def register(name: str, schemas: bool, heartbeat_ms: int, print_only: bool) -> None:
    """Create the connector, or update its config (idempotent)."""
    try:
        body = connector_config(
            Settings.from_env(), name=name, heartbeat_ms=heartbeat_ms, schemas=schemas
        )
    except FxCortexError as error:
        raise click.ClickException(str(error)) from error
    if print_only:
        click.echo(json.dumps(body, indent=2))
        return
    with _client() as client:
        client.register(body)
    click.echo(f"connector {name} registered")


@connector.command()
@click.option("--name", default=CONNECTOR_NAME, show_default=True, help="Connector name.")
def status(name: str) -> None:
    """Print the connector's and its tasks' states; exit 1 when it does not exist."""
    with _client() as client:
        result = client.status(name)
    if result is None:
        raise click.ClickException(f"connector {name} does not exist")
    click.echo(json.dumps(result, indent=2))


@connector.command()
@click.option("--name", default=CONNECTOR_NAME, show_default=True, help="Connector name.")
def delete(name: str) -> None:
    """Delete the connector (its replication slot stays in PostgreSQL)."""
    with _client() as client:
        existed = client.delete(name)
    click.echo(f"connector {name} {'deleted' if existed else 'did not exist'}")
