"""What a test gets from a service fixture, whatever backend runs the service.

Two addresses per service:

``env``
    the service as *this test process* reaches it (``DB_HOST``, ``DB_PORT``, ...: the names the
    runtime reads);
``network_env``
    the same names as *another service* reaches it: a container on the backend's network (Kafka
    Connect connecting to PostgreSQL, an app container). For local processes and external services
    both are the same; under testcontainers ``DB_HOST`` is ``localhost`` here and ``db`` there.

So a test that registers a Debezium connector gives it ``postgres.connect_host`` /
``postgres.connect_port`` (or ``**postgres.debezium_database_config()``), never ``postgres.host``.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import local as local_services  # services/local.py, put on sys.path by conftest.py

#: every service fixture, in start order
SERVICE_FIXTURES = ("postgres", "redis", "kafka", "kafka_connect", "clickhouse")


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot provide a service (not provisioned, not reachable, ...)."""


@dataclass
class ServiceHandle:
    """A running service as the tests see it, whatever backend runs it."""

    name: str
    env: dict[str, str]
    _kill: Callable[[], None] = field(repr=False)
    _restart: Callable[[], None] = field(repr=False)
    _log_tail: Callable[[int], str] = field(repr=False)
    _ensure_running: Callable[[], None] = field(repr=False)
    #: the same names as seen from the backend's network; empty means "the same as env"
    network_env: dict[str, str] = field(default_factory=dict)

    def kill(self) -> None:
        """Kill the service abruptly (SIGKILL), as a crash would."""
        self._kill()

    def restart(self) -> None:
        """Start the service again (after kill(), or stop and start it); same address, same data."""
        self._restart()

    def log_tail(self, lines: int = 40) -> str:
        return self._log_tail(lines)

    def ensure_running(self) -> None:
        """Start the service again if a test killed it and did not restart it."""
        self._ensure_running()

    def network(self, key: str) -> str:
        """``key`` (e.g. ``DB_HOST``) as another service on the backend's network sees it."""
        return (self.network_env or self.env)[key]


@dataclass
class PostgresHandle(ServiceHandle):
    @property
    def host(self) -> str:
        return self.env["DB_HOST"]

    @property
    def port(self) -> int:
        return int(self.env["DB_PORT"])

    @property
    def dbname(self) -> str:
        return self.env["DB_NAME"]

    @property
    def user(self) -> str:
        return self.env["DB_USER"]

    @property
    def password(self) -> str:
        return self.env["DB_PASSWORD"]

    @property
    def conninfo(self) -> str:
        return (
            f"host={self.host} port={self.port} dbname={self.dbname} "
            f"user={self.user} password={self.password} connect_timeout=10"
        )

    @property
    def connect_host(self) -> str:
        """The database host as Kafka Connect (Debezium) reaches it."""
        return self.network("DB_HOST")

    @property
    def connect_port(self) -> int:
        """The database port as Kafka Connect (Debezium) reaches it."""
        return int(self.network("DB_PORT"))

    def debezium_database_config(self) -> dict[str, str]:
        """The ``database.*`` settings of a Debezium PostgreSQL connector for this database."""
        return {
            "database.hostname": self.connect_host,
            "database.port": str(self.connect_port),
            "database.user": self.user,
            "database.password": self.password,
            "database.dbname": self.dbname,
        }


@dataclass
class RedisHandle(ServiceHandle):
    @property
    def host(self) -> str:
        return self.env["REDIS_HOST"]

    @property
    def port(self) -> int:
        return int(self.env["REDIS_PORT"])

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


@dataclass
class KafkaHandle(ServiceHandle):
    @property
    def bootstrap_servers(self) -> str:
        return self.env["KAFKA_BOOTSTRAP_SERVERS"]

    @property
    def network_bootstrap_servers(self) -> str:
        """The bootstrap servers as Kafka Connect and other containers reach the broker."""
        return self.network("KAFKA_BOOTSTRAP_SERVERS")


@dataclass
class KafkaConnectHandle(ServiceHandle):
    @property
    def url(self) -> str:
        return self.env["CONNECT_URL"]

    def request(self, method: str, path: str, body: object | None = None) -> Any:
        """Call the Connect REST API and decode its JSON answer."""
        return local_services.connect_request(self.url, method, path, body)


@dataclass
class ClickHouseHandle(ServiceHandle):
    """A ClickHouse server's HTTP interface."""

    @property
    def host(self) -> str:
        return self.env["CLICKHOUSE_HOST"]

    @property
    def port(self) -> int:
        return int(self.env["CLICKHOUSE_PORT"])

    @property
    def user(self) -> str:
        return self.env.get("CLICKHOUSE_USER", "default")

    @property
    def password(self) -> str:
        return self.env.get("CLICKHOUSE_PASSWORD", "")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def query(self, sql: str, timeout: float = 30.0) -> str:
        """Run ``sql`` through the HTTP interface; returns the answer's text (TSV by default)."""
        return clickhouse_http(self.url, sql, self.user, self.password, timeout)


def clickhouse_http(url: str, sql: str, user: str, password: str, timeout: float = 30.0) -> str:
    """POST ``sql`` to a ClickHouse HTTP interface; an HTTP error raises with its answer."""
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        url.rstrip("/") + "/",
        data=sql.encode(),
        method="POST",
        headers={"Authorization": f"Basic {credentials}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise RuntimeError(f"ClickHouse HTTP {exc.code} for {sql[:80]!r}: {detail}") from exc


HANDLE_TYPES: dict[str, type[ServiceHandle]] = {
    "postgres": PostgresHandle,
    "redis": RedisHandle,
    "kafka": KafkaHandle,
    "kafka_connect": KafkaConnectHandle,
    "clickhouse": ClickHouseHandle,
}


class Backend(Protocol):
    """Where the services come from. ``service`` starts (or finds) one and returns its handle."""

    name: str

    def service(self, name: str) -> ServiceHandle: ...

    def close(self, session_failed: bool) -> str | None:
        """Release everything; may return a line for the terminal summary."""
        ...
