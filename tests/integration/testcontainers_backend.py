"""The testcontainers backend: the services as containers of the official images, and the choice
of backend when ``FXCORTEX_SERVICES`` is unset.

Every container joins one Docker network of the session under the alias its compose service has
(``db``, ``kafka``, ``connect``, ``redis``, ``clickhouse``), so Kafka Connect reaches PostgreSQL as
``db:5432`` and Kafka as ``kafka:19092``, exactly as in ``compose/``, while the tests reach each
service on a host port picked before the container starts. The host ports are fixed at creation, so
a container stopped or killed and started again keeps its address (ports that Docker picks may
change at a restart), and Kafka can advertise its host listener before it starts.

The configuration is plain data (:class:`ContainerSpec`, built by :func:`container_specs`); only
:func:`to_container` and :class:`ContainersBackend` touch testcontainers, and they import it when
called, so the local backend runs without the package installed. ``test_testcontainers_config.py``
checks the configuration without a Docker engine.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import local as local_services  # services/local.py, put on sys.path by conftest.py
from images import (
    CLICKHOUSE_IMAGE,
    DEBEZIUM_CONNECT_IMAGE,
    KAFKA_IMAGE,
    POSTGRES_IMAGE,
    REDIS_IMAGE,
)
from service_handles import HANDLE_TYPES, SERVICE_FIXTURES, BackendUnavailable, ServiceHandle

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

# The credentials of the local backend too, so a test never depends on the backend.
DB_NAME = DB_USER = DB_PASSWORD = "fxcortex"
CLICKHOUSE_USER = CLICKHOUSE_PASSWORD = "fxcortex"
POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"

# Kafka's listeners: HOST for the tests (advertised as host:port), BROKER for containers on the
# network (advertised as kafka:19092, also the inter-broker listener), CONTROLLER for KRaft.
KAFKA_HOST_PORT, KAFKA_BROKER_PORT, KAFKA_CONTROLLER_PORT = 9092, 19092, 9093
#: a KRaft cluster id is a UUID in URL-safe base64 without padding; fixed, so restarts agree
KAFKA_CLUSTER_ID = (
    base64.urlsafe_b64encode(uuid.UUID("6678636f-7274-6578-2d6b-72616674a001").bytes)
    .decode()
    .rstrip("=")
)
#: the topic env names of the Debezium Connect image (compose/docker-compose.yml sets the same)
CONNECT_TOPICS = {
    "CONFIG_STORAGE_TOPIC": "fxcortex_connect_configs",
    "OFFSET_STORAGE_TOPIC": "fxcortex_connect_offsets",
    "STATUS_STORAGE_TOPIC": "fxcortex_connect_statuses",
}
JVM_HEAP = "-Xms128m -Xmx512m"
_NS = 1_000_000_000  # Docker counts healthcheck durations in nanoseconds
_LOCALHOSTS = {"localhost", "127.0.0.1", "::1"}


# --------------------------------------------------------------------------- choosing a backend
def choose_backend(
    environ: Mapping[str, str], docker_problem: Callable[[], str | None]
) -> tuple[str, str]:
    """The backend to use and why: ``FXCORTEX_SERVICES`` when set, else ``testcontainers`` when a
    Docker engine answers (``docker_problem()`` returns None), else ``local``."""
    chosen = environ.get("FXCORTEX_SERVICES", "").strip()
    if chosen:
        return chosen, f"FXCORTEX_SERVICES={chosen}"
    problem = docker_problem()
    if problem is None:
        return "testcontainers", "FXCORTEX_SERVICES is unset and a Docker engine answers"
    return "local", f"FXCORTEX_SERVICES is unset and no Docker engine answers ({problem})"


def docker_engine_problem(timeout: float = 3.0) -> str | None:
    """None when a Docker engine answers a ping within ``timeout``, else why not.

    Uses the Docker SDK (installed with testcontainers) on the engine testcontainers would use
    (``DOCKER_HOST``, ``~/.testcontainers.properties``, the current docker context); without the
    SDK, pings the engine's Unix socket directly.
    """
    try:
        import docker
    except ImportError:
        host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        if not host.startswith("unix://"):
            return f"DOCKER_HOST={host} cannot be pinged without the docker package"
        return _ping_unix_socket(host[len("unix://") :], timeout)
    environment = dict(os.environ)
    with contextlib.suppress(Exception):  # testcontainers absent or its lookup failing
        from testcontainers.core.docker_client import get_docker_host

        configured = get_docker_host()
        if configured:
            environment["DOCKER_HOST"] = configured
    where = environment.get("DOCKER_HOST") or "the default socket /var/run/docker.sock"
    try:
        client = docker.from_env(timeout=max(1, round(timeout)), environment=environment)
        try:
            answered = client.ping()
        finally:
            client.close()
    except Exception as exc:  # DockerException, requests' errors, a bad DOCKER_HOST ...
        return f"no answer from {where}: {exc}"
    return None if answered else f"{where} did not answer the ping with OK"


def _ping_unix_socket(path: str, timeout: float) -> str | None:
    """Ask the Docker engine API on a Unix socket for ``GET /_ping``; None when it says OK."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
    except OSError as exc:
        return f"no answer from unix://{path}: {exc}"
    status_line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 200 " in f"{status_line} " and answer.rstrip().endswith(b"OK"):
        return None
    return f"unix://{path} answered {status_line!r}, not a Docker engine's OK"


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class ContainerSpec:
    """One service's container, as data: what testcontainers gets and what the tests get."""

    service: str  # the fixture name
    image: str
    alias: str  # its name on the session's Docker network (= its compose service)
    ports: Mapping[int, int]  # container port -> host port
    env: Mapping[str, str]  # the container's environment
    handle_env: Mapping[str, str]  # the service as the tests reach it
    network_env: Mapping[str, str]  # the service as other containers reach it
    healthcheck: Mapping[str, Any]  # Docker's HEALTHCHECK, in docker SDK form (nanoseconds)
    readiness: str  # what the wait strategy checks from the host, in words
    startup_timeout: float  # seconds for readiness after the container started (pull excluded)
    command: tuple[str, ...] = ()
    docker_options: Mapping[str, Any] = field(default_factory=dict)  # more docker create() kwargs


def healthcheck(
    test: list[str], interval: float, retries: int, start: float = 0.0
) -> dict[str, Any]:
    return {
        "test": test,
        "interval": int(interval * _NS),
        "timeout": int(10 * _NS),
        "retries": retries,
        "start_period": int(start * _NS),
    }


def postgres_spec(host: str, port: int) -> ContainerSpec:
    settings = {
        "wal_level": "logical",  # Debezium's pgoutput needs logical decoding
        "max_replication_slots": "10",
        "max_wal_senders": "10",
        # a killed container loses no committed row with these off (only a host crash could)
        "fsync": "off",
        "full_page_writes": "off",
    }
    command = ["postgres"]
    for key, value in settings.items():
        command += ["-c", f"{key}={value}"]
    database = {"DB_NAME": DB_NAME, "DB_USER": DB_USER, "DB_PASSWORD": DB_PASSWORD}
    return ContainerSpec(
        service="postgres",
        image=POSTGRES_IMAGE,
        alias="db",
        command=tuple(command),
        ports={5432: port},
        env={"POSTGRES_DB": DB_NAME, "POSTGRES_USER": DB_USER, "POSTGRES_PASSWORD": DB_PASSWORD},
        handle_env={"DB_HOST": host, "DB_PORT": str(port), **database},
        network_env={"DB_HOST": "db", "DB_PORT": "5432", **database},
        # over TCP: the image's first-run initialisation serves the Unix socket only
        healthcheck=healthcheck(
            ["CMD-SHELL", f"pg_isready -h 127.0.0.1 -U {DB_USER} -d {DB_NAME}"], 1, 60
        ),
        readiness=f"a psycopg connection to {host}:{port} runs SELECT 1",
        startup_timeout=90,
    )


def redis_spec(host: str, port: int) -> ContainerSpec:
    return ContainerSpec(
        service="redis",
        image=REDIS_IMAGE,
        alias="redis",
        command=("redis-server", "--appendonly", "yes"),  # a restart keeps the data
        ports={6379: port},
        env={},
        handle_env={"REDIS_HOST": host, "REDIS_PORT": str(port)},
        network_env={"REDIS_HOST": "redis", "REDIS_PORT": "6379"},
        healthcheck=healthcheck(["CMD", "redis-cli", "ping"], 1, 30),
        readiness=f"PING to {host}:{port} answers +PONG",
        startup_timeout=30,
    )


def kafka_spec(host: str, port: int) -> ContainerSpec:
    listeners = {
        "HOST": KAFKA_HOST_PORT,
        "BROKER": KAFKA_BROKER_PORT,
        "CONTROLLER": KAFKA_CONTROLLER_PORT,
    }
    env = {
        "CLUSTER_ID": KAFKA_CLUSTER_ID,
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": ",".join(f"{name}://0.0.0.0:{p}" for name, p in listeners.items()),
        "KAFKA_ADVERTISED_LISTENERS": f"HOST://{host}:{port},BROKER://kafka:{KAFKA_BROKER_PORT}",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": ",".join(f"{n}:PLAINTEXT" for n in listeners),
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@localhost:{KAFKA_CONTROLLER_PORT}",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "true",
        # a broker killed and started again re-registers quickly (as in the local backend)
        "KAFKA_BROKER_SESSION_TIMEOUT_MS": "4000",
        # inside the container's own filesystem: kept across stop/kill and start
        "KAFKA_LOG_DIRS": "/tmp/kraft-combined-logs",
        # no KAFKA_HEAP_OPTS: the image would also write it into server.properties as heap.opts
    }
    api_versions = (
        "/opt/kafka/bin/kafka-broker-api-versions.sh "
        f"--bootstrap-server localhost:{KAFKA_BROKER_PORT} >/dev/null"
    )
    return ContainerSpec(
        service="kafka",
        image=KAFKA_IMAGE,
        alias="kafka",
        ports={KAFKA_HOST_PORT: port},
        env=env,
        handle_env={"KAFKA_BOOTSTRAP_SERVERS": f"{host}:{port}"},
        network_env={"KAFKA_BOOTSTRAP_SERVERS": f"kafka:{KAFKA_BROKER_PORT}"},
        # a JVM per check: not too often
        healthcheck=healthcheck(["CMD-SHELL", api_versions], 10, 30, start=10),
        readiness=f"a Metadata request to {host}:{port} lists a live broker",
        startup_timeout=120,
    )


def kafka_connect_spec(host: str, port: int) -> ContainerSpec:
    return ContainerSpec(
        service="kafka_connect",
        image=DEBEZIUM_CONNECT_IMAGE,
        alias="connect",
        ports={8083: port},
        env={
            "BOOTSTRAP_SERVERS": f"kafka:{KAFKA_BROKER_PORT}",
            "GROUP_ID": "fxcortex-connect",
            **CONNECT_TOPICS,
            "CONNECT_CONFIG_STORAGE_REPLICATION_FACTOR": "1",
            "CONNECT_OFFSET_STORAGE_REPLICATION_FACTOR": "1",
            "CONNECT_STATUS_STORAGE_REPLICATION_FACTOR": "1",
            "OFFSET_FLUSH_INTERVAL_MS": "1000",
            # every address, so the published port and the in-container healthcheck both reach it
            # (the image would bind its REST server to the container's IP only)
            "CONNECT_LISTENERS": "http://0.0.0.0:8083",
            # by alias, not by the IP the image would pick: a restarted container may get another
            "ADVERTISED_HOST_NAME": "connect",
            "HEAP_OPTS": JVM_HEAP,
        },
        handle_env={"CONNECT_URL": f"http://{host}:{port}"},
        network_env={"CONNECT_URL": "http://connect:8083"},
        healthcheck=healthcheck(
            ["CMD-SHELL", "curl -fsS localhost:8083/connector-plugins | grep -q PostgresConnector"],
            5,
            40,
            start=10,
        ),
        readiness=f"GET http://{host}:{port}/connector-plugins lists {POSTGRES_CONNECTOR}",
        startup_timeout=180,
    )


def clickhouse_spec(host: str, port: int) -> ContainerSpec:
    account = {"CLICKHOUSE_USER": CLICKHOUSE_USER, "CLICKHOUSE_PASSWORD": CLICKHOUSE_PASSWORD}
    return ContainerSpec(
        service="clickhouse",
        image=CLICKHOUSE_IMAGE,
        alias="clickhouse",
        ports={8123: port},  # the HTTP interface (clickhouse-connect speaks it)
        env={**account, "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT": "1"},
        handle_env={"CLICKHOUSE_HOST": host, "CLICKHOUSE_PORT": str(port), **account},
        network_env={"CLICKHOUSE_HOST": "clickhouse", "CLICKHOUSE_PORT": "8123", **account},
        healthcheck=healthcheck(
            ["CMD-SHELL", "wget -q --spider http://localhost:8123/ping"], 1, 60
        ),
        readiness=f"GET http://{host}:{port}/ping answers Ok.",
        startup_timeout=90,
        # the image's recommendation; it warns and runs with fewer files otherwise
        docker_options={"ulimits": [{"name": "nofile", "soft": 262144, "hard": 262144}]},
    )


SPEC_BUILDERS: dict[str, Callable[[str, int], ContainerSpec]] = {
    "postgres": postgres_spec,
    "redis": redis_spec,
    "kafka": kafka_spec,
    "kafka_connect": kafka_connect_spec,
    "clickhouse": clickhouse_spec,
}
#: a service that needs another one started first
DEPENDS_ON = {"kafka_connect": ("kafka",)}


def container_specs(host: str, ports: Mapping[str, int]) -> dict[str, ContainerSpec]:
    """Every service's container for tests reaching the Docker host as ``host``."""
    return {name: SPEC_BUILDERS[name](host, ports[name]) for name in SERVICE_FIXTURES}


def to_container(spec: ContainerSpec, network: Any, bind_ip: str | None) -> DockerContainer:
    """The testcontainers container for ``spec`` on ``network``, not started.

    ``bind_ip`` publishes the ports on that host address only (loopback for a local engine); None
    publishes them on every address, for a remote engine.
    """
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(spec.image)
    if spec.command:
        container.with_command(list(spec.command))
    container.with_envs(**spec.env)
    for container_port, host_port in spec.ports.items():
        container.with_bind_ports(container_port, host_port)
        if bind_ip is not None:  # docker's (address, port) form, which with_bind_ports lacks
            container.ports[str(container_port)] = cast(Any, (bind_ip, host_port))
    container.with_network(network).with_network_aliases(spec.alias)
    container.with_kwargs(healthcheck=dict(spec.healthcheck), **spec.docker_options)
    return container


# --------------------------------------------------------------------------- readiness probes
def parse_bootstrap(servers: str) -> list[tuple[str, int]]:
    """``host:port,host:port`` as pairs (IPv6 hosts in brackets)."""
    pairs = []
    for server in servers.split(","):
        parsed = urllib.parse.urlsplit(f"//{server.strip()}")
        if parsed.hostname is None or parsed.port is None:
            raise ValueError(f"not host:port: {server!r}")
        pairs.append((parsed.hostname, parsed.port))
    return pairs


def _postgres_ready(env: Mapping[str, str]) -> bool:
    import psycopg

    conninfo = (
        f"host={env['DB_HOST']} port={env['DB_PORT']} dbname={env['DB_NAME']} "
        f"user={env['DB_USER']} password={env['DB_PASSWORD']} connect_timeout=3"
    )
    with psycopg.connect(conninfo) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def _redis_ready(env: Mapping[str, str]) -> bool:
    with socket.create_connection((env["REDIS_HOST"], int(env["REDIS_PORT"])), timeout=3) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")


def _kafka_ready(env: Mapping[str, str]) -> bool:
    host, port = parse_bootstrap(env["KAFKA_BOOTSTRAP_SERVERS"])[0]
    return local_services.kafka_broker_count(host, port, timeout=3) >= 1


def _kafka_connect_ready(env: Mapping[str, str]) -> bool:
    plugins = local_services.connect_request(
        env["CONNECT_URL"], "GET", "/connector-plugins", None, 3
    )
    return any(plugin.get("class") == POSTGRES_CONNECTOR for plugin in plugins or [])


def _clickhouse_ready(env: Mapping[str, str]) -> bool:
    url = f"http://{env['CLICKHOUSE_HOST']}:{env['CLICKHOUSE_PORT']}/ping"
    with urllib.request.urlopen(url, timeout=3) as response:
        return bool(response.read().strip() == b"Ok.")


PROBES: dict[str, Callable[[Mapping[str, str]], bool]] = {
    "postgres": _postgres_ready,
    "redis": _redis_ready,
    "kafka": _kafka_ready,
    "kafka_connect": _kafka_connect_ready,
    "clickhouse": _clickhouse_ready,
}


# --------------------------------------------------------------------------- the backend
class ContainersBackend:
    """The services as containers through testcontainers (``FXCORTEX_SERVICES=testcontainers``).

    ``kill()`` is ``docker kill`` (SIGKILL to the container's processes); ``restart()`` starts
    the same container again (``docker restart``, a graceful stop first, when it still runs): same
    host ports, same network alias, same data, which lives in the container's own filesystem and
    anonymous volumes until the session removes it.
    """

    name = "testcontainers"

    def __init__(self, docker_problem: Callable[[], str | None] = docker_engine_problem) -> None:
        self._docker_problem = docker_problem
        self._unavailable: str | None = None
        self._network: Any = None
        self._host = ""
        self._bind_ip: str | None = None
        self._specs: dict[str, ContainerSpec] = {}
        self._containers: dict[str, DockerContainer] = {}
        self._handles: dict[str, ServiceHandle] = {}
        self._failed: dict[str, str] = {}  # a service that did not start is not tried again
        self.timings: dict[str, float] = {}

    # ---- setup
    def _prepare(self) -> None:
        if self._unavailable is not None:
            raise BackendUnavailable(self._unavailable)
        if self._network is not None:
            return
        try:
            self._connect()
        except BackendUnavailable as exc:
            self._unavailable = str(exc)  # once per session: every fixture fails the same way
            raise

    def _connect(self) -> None:
        try:
            from testcontainers.core.docker_client import DockerClient
            from testcontainers.core.network import Network
        except ImportError as exc:
            raise BackendUnavailable(
                f"testcontainers backend: the Python package is missing ({exc}); "
                "pip install -r tests/integration/requirements.txt, or use the local processes "
                "with FXCORTEX_SERVICES=local"
            ) from exc
        problem = self._docker_problem()
        if problem is not None:
            raise BackendUnavailable(
                "testcontainers backend (FXCORTEX_SERVICES=testcontainers) needs a Docker engine "
                f"and none answers: {problem}. Start Docker (or point DOCKER_HOST at one), or run "
                "the services as local processes: bash services/provision.sh, then "
                "FXCORTEX_SERVICES=local"
            )
        try:
            host = DockerClient().host()
            self._network = Network().create()
        except Exception as exc:  # the engine answered the ping but refuses the work
            raise BackendUnavailable(
                f"testcontainers backend: could not create the session's Docker network: {exc}"
            ) from exc
        local = host in _LOCALHOSTS
        self._host = "127.0.0.1" if local else host
        self._bind_ip = "127.0.0.1" if local else None

    # ---- Backend protocol
    def service(self, name: str) -> ServiceHandle:
        if name not in SPEC_BUILDERS:
            raise BackendUnavailable(f"testcontainers backend: no service named {name!r}")
        self._prepare()
        for needed in DEPENDS_ON.get(name, ()):
            self.service(needed)
        if name in self._failed:
            raise BackendUnavailable(self._failed[name])
        if name not in self._handles:
            try:
                self._start(name)
            except BackendUnavailable as exc:
                self._failed[name] = str(exc)
                raise
        return self._handles[name]

    def close(self, session_failed: bool) -> str | None:
        kept: Path | None = None
        if session_failed and self._containers:
            kept = Path(tempfile.mkdtemp(prefix="fxcortex-containers-"))
            for name in self._containers:
                with contextlib.suppress(Exception):
                    (kept / f"{name}.log").write_text(self._logs(name, None))
        for container in reversed(list(self._containers.values())):
            with contextlib.suppress(Exception):  # removes it with its anonymous volumes
                container.stop()
        if self._network is not None:
            with contextlib.suppress(Exception):
                self._network.remove()
        if kept is not None:
            if not any(kept.iterdir()):
                shutil.rmtree(kept, ignore_errors=True)
                return "containers removed; their logs could not be read"
            return f"containers removed; their logs are kept in {kept}"
        if self.timings:
            timings = ", ".join(f"{n} {t:.1f} s" for n, t in self.timings.items())
            return f"containers (pull included) ready in: {timings}"
        return None

    # ---- one service
    def _start(self, name: str) -> None:
        spec = SPEC_BUILDERS[name](self._host, local_services.free_port())
        container = to_container(spec, self._network, self._bind_ip)
        started = time.monotonic()
        try:
            container.start()
        except Exception as exc:
            with contextlib.suppress(Exception):
                container.stop()
            raise BackendUnavailable(
                f"testcontainers backend: the {name} container ({spec.image}) did not start: {exc}"
            ) from exc
        self._specs[name], self._containers[name] = spec, container
        self._wait_ready(name)
        self.timings[name] = time.monotonic() - started
        self._handles[name] = HANDLE_TYPES[name](
            name=name,
            env=dict(spec.handle_env),
            network_env=dict(spec.network_env),
            _kill=lambda: self._kill(name),
            _restart=lambda: self._restart(name),
            _log_tail=lambda lines: self._logs(name, lines),
            _ensure_running=lambda: self._ensure_running(name),
        )

    def _docker(self, name: str) -> Any:
        """The docker SDK's container, refreshed; fails clearly when it is gone."""
        try:
            wrapped = self._containers[name].get_wrapped_container()
            wrapped.reload()
        except Exception as exc:
            raise BackendUnavailable(
                f"testcontainers backend: the {name} container is gone ({exc}); it cannot be "
                "killed or started again, and its data is lost"
            ) from exc
        return wrapped

    def _kill(self, name: str) -> None:
        wrapped = self._docker(name)
        if wrapped.status == "running":
            wrapped.kill()  # SIGKILL
        deadline = time.monotonic() + 30
        while wrapped.status == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            wrapped.reload()

    def _restart(self, name: str) -> None:
        wrapped = self._docker(name)
        try:
            if wrapped.status == "running":
                wrapped.restart(timeout=30)  # the image's stop signal, SIGKILL after 30 s
            else:
                wrapped.start()
        except Exception as exc:  # e.g. its host port was taken meanwhile
            raise BackendUnavailable(
                f"testcontainers backend: could not start the {name} container again: {exc}"
            ) from exc
        self._wait_ready(name)

    def _ensure_running(self, name: str) -> None:
        if self._docker(name).status != "running":
            self._restart(name)

    def _logs(self, name: str, lines: int | None) -> str:
        wrapped = self._containers[name].get_wrapped_container()
        raw = wrapped.logs(tail=lines) if lines is not None else wrapped.logs()
        return bytes(raw).decode(errors="replace")

    def _wait_ready(self, name: str) -> None:
        spec, probe = self._specs[name], PROBES[name]
        deadline = time.monotonic() + spec.startup_timeout
        last_error: Exception | None = None
        while True:
            wrapped = self._docker(name)
            if wrapped.status in ("exited", "dead"):
                code = wrapped.attrs.get("State", {}).get("ExitCode")
                raise BackendUnavailable(
                    f"testcontainers backend: the {name} container ({spec.image}) exited with "
                    f"code {code}; its last log lines:\n{self._logs(name, 30)}"
                )
            try:
                if probe(spec.handle_env):
                    return
            except Exception as exc:  # still starting: remember, retry
                last_error = exc
            if time.monotonic() > deadline:
                health = wrapped.attrs.get("State", {}).get("Health", {}).get("Status", "none")
                raise BackendUnavailable(
                    f"testcontainers backend: {name} ({spec.image}) not ready after "
                    f"{spec.startup_timeout:.0f} s: waited until {spec.readiness}; Docker health "
                    f"{health}; last error {last_error!r}; its last log lines:\n"
                    f"{self._logs(name, 30)}"
                )
            time.sleep(0.5)
