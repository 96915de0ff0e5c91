"""The Debezium PostgreSQL connector of the rates table, templated from the settings.

`connector_config` gives the JSON that ``compose/pg-connector.json`` holds for compose's
``.env.example`` values: pgoutput on a filtered publication of ``fxcortex.rates``, the message key
the currency pair (one consumer owns a pair's stream), heartbeats so an idle table does not hold
the WAL back, decimals as strings and JSON without embedded schemas. `ConnectClient` registers,
inspects and deletes it through Kafka Connect's REST API (``CONNECT_URL``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fxcortex.core import FxCortexError
from fxcortex.runtime.config import Settings

if TYPE_CHECKING:
    import httpx

CONNECTOR_NAME = "fxcortex-rates"
TOPIC_PREFIX = "fxcortex"
RATES_TABLE = "fxcortex.rates"
RATES_TOPIC = f"{TOPIC_PREFIX}.{RATES_TABLE}"
"""Debezium names a table's topic ``<topic.prefix>.<schema>.<table>``."""
HEARTBEAT_TOPIC = f"__debezium-heartbeat.{TOPIC_PREFIX}"
HEARTBEAT_TABLE = "fxcortex.debezium_heartbeat"
HEARTBEAT_QUERY = f"UPDATE {HEARTBEAT_TABLE} SET beat_at = now() WHERE id = 1"
"""Run by the connector every heartbeat: a change it captures even when the rates are idle, so
it always has a recent position to confirm and the replication slot does not hold back the WAL
that other tables write. Its events go to the heartbeat table's own topic, never the rates'."""
JSON_CONVERTER = "org.apache.kafka.connect.json.JsonConverter"


class ConnectorError(FxCortexError):
    """Kafka Connect refused a request or could not be reached; the message says which."""


def connector_config(
    settings: Settings,
    *,
    name: str = CONNECTOR_NAME,
    heartbeat_ms: int = 10_000,
    schemas: bool = False,
    topic_prefix: str = TOPIC_PREFIX,
) -> dict[str, Any]:
    """The connector's registration body (``{"name": ..., "config": {...}}``).

    ``schemas`` embeds the JSON schemas in every message (bigger, self-describing); the decoder
    reads both shapes. The rates' topic is ``<topic_prefix>.fxcortex.rates``.
    """
    db = settings.database
    slot = name.replace("-", "_")
    flag = "true" if schemas else "false"
    return {
        "name": name,
        "config": {
            "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
            "plugin.name": "pgoutput",
            "database.hostname": db.host,
            "database.port": str(db.port),
            "database.user": db.user,
            "database.password": db.password,
            "database.dbname": db.name,
            "topic.prefix": topic_prefix,
            "table.include.list": f"{RATES_TABLE},{HEARTBEAT_TABLE}",
            "publication.name": slot,
            "publication.autocreate.mode": "filtered",
            "slot.name": slot,
            "message.key.columns": f"{RATES_TABLE}:base,quote",
            "decimal.handling.mode": "string",
            # Hand events to Kafka every 100 ms rather than Debezium's default 500 ms: the
            # end-to-end latency budget is two seconds.
            "poll.interval.ms": "100",
            "heartbeat.interval.ms": str(heartbeat_ms),
            "heartbeat.action.query": HEARTBEAT_QUERY,
            "tombstones.on.delete": "true",
            "key.converter": JSON_CONVERTER,
            "key.converter.schemas.enable": flag,
            "value.converter": JSON_CONVERTER,
            "value.converter.schemas.enable": flag,
        },
    }


class ConnectClient:
    """Kafka Connect's REST API, for the one connector FX-Cortex runs."""

    def __init__(self, url: str, *, timeout: float = 30.0, transport: Any = None) -> None:
        import httpx  # the distributed extra's; a lean install never reaches here

        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, transport=transport)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ConnectorError(f"Kafka Connect at {self._client.base_url}: {error}") from error

    @staticmethod
    def _fail(response: httpx.Response, what: str) -> ConnectorError:
        try:
            detail = response.json().get("message", response.text)
        except ValueError:
            detail = response.text
        return ConnectorError(f"{what}: HTTP {response.status_code}: {detail}")

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the connector, or update its config when it exists (idempotent)."""
        name = body["name"]
        response = self._request("PUT", f"/connectors/{name}/config", json=body["config"])
        if response.status_code not in (200, 201):
            raise self._fail(response, f"register connector {name!r}")
        result: dict[str, Any] = response.json()
        return result

    def status(self, name: str = CONNECTOR_NAME) -> dict[str, Any] | None:
        """The connector's and its tasks' states, or None when it does not exist."""
        response = self._request("GET", f"/connectors/{name}/status")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(response, f"status of connector {name!r}")
        result: dict[str, Any] = response.json()
        return result

    def delete(self, name: str = CONNECTOR_NAME) -> bool:
        """Delete the connector; False when there was none."""
        response = self._request("DELETE", f"/connectors/{name}")
        if response.status_code == 404:
            return False
        if response.status_code not in (200, 204):
            raise self._fail(response, f"delete connector {name!r}")
        return True

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()
