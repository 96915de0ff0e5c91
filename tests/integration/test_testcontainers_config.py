"""The testcontainers backend, checked where no Docker engine runs.

What can be checked here is checked: the choice of backend; the Docker probe against a missing
socket and against a stand-in engine that answers the API's ping; every container's configuration
(images, commands, environment, network aliases, ports, healthchecks, readiness), down to the body
of the ``POST /containers/create`` request the Docker SDK would send for it; and that without
Docker ``FXCORTEX_SERVICES=testcontainers`` fails the tests with the reason instead of skipping
them. Whether the images then really start, and how long they take, can only be seen on a machine
with Docker: ``FXCORTEX_SERVICES=testcontainers python -m pytest tests/integration``.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from images import COMPOSE_IMAGES
from service_backends import ExternalBackend
from service_handles import BackendUnavailable, ClickHouseHandle, KafkaHandle, PostgresHandle
from testcontainers_backend import (
    CONNECT_TOPICS,
    KAFKA_BROKER_PORT,
    KAFKA_CLUSTER_ID,
    KAFKA_CONTROLLER_PORT,
    KAFKA_HOST_PORT,
    ContainersBackend,
    ContainerSpec,
    _ping_unix_socket,
    choose_backend,
    container_specs,
    docker_engine_problem,
    parse_bootstrap,
    to_container,
)

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
PORTS = {
    "postgres": 40001,
    "redis": 40002,
    "kafka": 40003,
    "kafka_connect": 40004,
    "clickhouse": 40005,
}
SPECS = container_specs(HOST, PORTS)


def env_example() -> dict[str, str]:
    lines = (REPO / "compose" / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def never_asked() -> str | None:
    raise AssertionError("the Docker probe must not run when FXCORTEX_SERVICES is set")


# --------------------------------------------------------------------------- choosing the backend
@pytest.mark.parametrize(
    ("environ", "problem", "expected"),
    [
        ({}, None, "testcontainers"),
        ({}, "no answer from unix:///var/run/docker.sock", "local"),
        ({"FXCORTEX_SERVICES": ""}, None, "testcontainers"),
        ({"FXCORTEX_SERVICES": "  "}, "no Docker", "local"),
    ],
)
def test_unset_picks_testcontainers_exactly_when_docker_answers(
    environ: dict[str, str], problem: str | None, expected: str
) -> None:
    asked: list[bool] = []

    def probe() -> str | None:
        asked.append(True)
        return problem

    chosen, why = choose_backend(environ, probe)
    assert (chosen, asked) == (expected, [True])
    assert "FXCORTEX_SERVICES is unset" in why
    if problem:
        assert problem in why


@pytest.mark.parametrize("value", ["local", "testcontainers", "external", " local ", "podman"])
def test_a_set_value_wins_without_asking_docker(value: str) -> None:
    chosen, why = choose_backend({"FXCORTEX_SERVICES": value}, never_asked)
    assert chosen == value.strip()  # unknown names are refused later, listing the known ones
    assert why == f"FXCORTEX_SERVICES={value.strip()}"


# --------------------------------------------------------------------------- the Docker probe
class _FakeEngine(http.server.BaseHTTPRequestHandler):
    """Answers the two calls of the Docker SDK's ping: GET /version, then GET /v1.xx/_ping."""

    def do_GET(self) -> None:
        if self.path.endswith("/version"):
            body = json.dumps({"ApiVersion": "1.44", "Version": "stand-in"}).encode()
            kind = "application/json"
        elif self.path.endswith("/_ping"):
            body, kind = b"OK", "text/plain"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:  # a Unix socket's peer has no address
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def use_engine(monkeypatch: pytest.MonkeyPatch, socket_path: Path) -> None:
    """Point the probe and testcontainers at ``socket_path``, whatever this machine configures."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    for name in (
        "TC_HOST",
        "TESTCONTAINERS_HOST_OVERRIDE",
        "TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE",
    ):
        monkeypatch.delenv(name, raising=False)
    with contextlib.suppress(ImportError):  # ~/.testcontainers.properties' tc.host comes first
        from testcontainers.core.config import testcontainers_config

        monkeypatch.setattr(testcontainers_config, "tc_properties", {})
        monkeypatch.setattr(testcontainers_config, "tc_host_override", None)


@pytest.fixture
def no_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DOCKER_HOST on a socket nobody listens on."""
    missing = tmp_path / "docker.sock"
    use_engine(monkeypatch, missing)
    return missing


@pytest.fixture
def fake_engine() -> Iterator[Path]:
    """An HTTP server on a Unix socket that answers like a Docker engine's ping."""
    path = Path("/tmp") / f"fxcortex-fake-docker-{os.getpid()}-{time.monotonic_ns()}.sock"
    server = _UnixHTTPServer(str(path), _FakeEngine)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield path
    server.shutdown()
    server.server_close()
    path.unlink(missing_ok=True)


def test_the_probe_says_why_when_no_engine_answers(no_engine: Path) -> None:
    missing = no_engine
    started = time.monotonic()
    problem = docker_engine_problem(timeout=2)
    assert problem is not None
    assert str(missing) in problem
    assert time.monotonic() - started < 10
    assert _ping_unix_socket(str(missing), 1) is not None


def test_the_probe_accepts_an_engine_that_answers_the_ping(
    fake_engine: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_engine(monkeypatch, fake_engine)
    assert docker_engine_problem(timeout=2) is None  # through the Docker SDK
    assert _ping_unix_socket(str(fake_engine), 2) is None  # the fallback without the SDK


# --------------------------------------------------------------------------- the containers
def test_every_service_runs_the_shared_image_under_its_compose_name() -> None:
    assert {spec.alias: spec.image for spec in SPECS.values()} == COMPOSE_IMAGES
    assert len({port for spec in SPECS.values() for port in spec.ports.values()}) == len(SPECS)
    for spec in SPECS.values():
        assert spec.handle_env.keys() == spec.network_env.keys(), spec.service
        assert spec.startup_timeout > 0
        test = spec.healthcheck["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, spec.service
        assert spec.healthcheck["interval"] >= 1_000_000_000  # nanoseconds: 1 s or more
        assert spec.healthcheck["retries"] >= 20
        assert HOST in spec.readiness


def test_handle_env_uses_the_names_the_deployment_uses() -> None:
    names = set(env_example())
    for spec in SPECS.values():
        assert set(spec.handle_env) <= names, (spec.service, set(spec.handle_env) - names)


def command_settings(command: tuple[str, ...]) -> dict[str, str]:
    """``postgres -c key=value ...`` as a dict."""
    assert command[0] == "postgres"
    pairs = command[1:]
    assert all(flag == "-c" for flag in pairs[0::2]), command
    return dict(setting.split("=", 1) for setting in pairs[1::2])


def test_postgres_runs_with_logical_replication() -> None:
    spec = SPECS["postgres"]
    settings = command_settings(spec.command)
    assert settings["wal_level"] == "logical"
    assert int(settings["max_replication_slots"]) >= 4
    assert int(settings["max_wal_senders"]) >= 4
    assert spec.env == {
        "POSTGRES_DB": "fxcortex",
        "POSTGRES_USER": "fxcortex",
        "POSTGRES_PASSWORD": "fxcortex",
    }
    assert spec.ports == {5432: PORTS["postgres"]}
    assert spec.handle_env["DB_HOST"] == HOST
    assert spec.handle_env["DB_PORT"] == str(PORTS["postgres"])
    assert (spec.network_env["DB_HOST"], spec.network_env["DB_PORT"]) == ("db", "5432")
    # TCP, not the socket: the image's initialisation server listens on the socket only
    assert "pg_isready -h 127.0.0.1" in spec.healthcheck["test"][1]


def _handle(spec: ContainerSpec, **overrides: Any) -> Any:
    def unused(*_: object) -> None:
        raise AssertionError("not called")

    kind = PostgresHandle if spec.service == "postgres" else KafkaHandle
    arguments: dict[str, Any] = {
        "name": spec.service,
        "env": dict(spec.handle_env),
        "network_env": dict(spec.network_env),
        "_kill": unused,
        "_restart": unused,
        "_log_tail": lambda _n: "",
        "_ensure_running": unused,
    }
    return kind(**(arguments | overrides))


def test_a_connector_gets_the_database_address_connect_reaches() -> None:
    on_docker = _handle(SPECS["postgres"])
    assert (on_docker.host, on_docker.port) == (HOST, PORTS["postgres"])  # for the test itself
    assert f"host={HOST} port={PORTS['postgres']}" in on_docker.conninfo
    assert on_docker.debezium_database_config() == {
        "database.hostname": "db",
        "database.port": "5432",
        "database.user": "fxcortex",
        "database.password": "fxcortex",
        "database.dbname": "fxcortex",
    }
    # local processes (and external services without CONNECT_DB_*): one address for both
    local = _handle(SPECS["postgres"], network_env={})
    assert (local.connect_host, local.connect_port) == (HOST, PORTS["postgres"])


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` as {NAME: (host, port)}."""
    result = {}
    for item in value.split(","):
        name, _, address = item.partition("://")
        [(host, port)] = parse_bootstrap(address.replace("0.0.0.0", "any-host"))
        result[name] = (host, port)
    return result


def test_kafka_is_one_kraft_node_advertising_the_host_port_and_the_network_alias() -> None:
    spec = SPECS["kafka"]
    env = spec.env
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert len(base64.urlsafe_b64decode(KAFKA_CLUSTER_ID + "==")) == 16
    assert env["CLUSTER_ID"] == KAFKA_CLUSTER_ID
    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(
        pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(bound) == set(protocols) == {"HOST", "BROKER", "CONTROLLER"}
    assert set(advertised) == {"HOST", "BROKER"}  # a controller listener is never advertised
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"1@localhost:{KAFKA_CONTROLLER_PORT}"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "BROKER"
    # the tests: the published port, on the address they reach Docker at
    assert bound["HOST"][1] == KAFKA_HOST_PORT
    assert spec.ports == {KAFKA_HOST_PORT: PORTS["kafka"]}
    assert advertised["HOST"] == (HOST, PORTS["kafka"])
    assert parse_bootstrap(spec.handle_env["KAFKA_BOOTSTRAP_SERVERS"]) == [advertised["HOST"]]
    # Connect and other containers: the alias, on a port that is not published
    assert bound["BROKER"][1] == KAFKA_BROKER_PORT
    assert advertised["BROKER"] == ("kafka", KAFKA_BROKER_PORT)
    assert parse_bootstrap(spec.network_env["KAFKA_BOOTSTRAP_SERVERS"]) == [advertised["BROKER"]]
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env[key] == "1", key  # one broker
    assert f"localhost:{KAFKA_BROKER_PORT}" in spec.healthcheck["test"][1]


def test_connect_joins_kafka_by_its_alias_with_its_topics() -> None:
    spec, kafka = SPECS["kafka_connect"], SPECS["kafka"]
    assert spec.env["BOOTSTRAP_SERVERS"] == kafka.network_env["KAFKA_BOOTSTRAP_SERVERS"]
    assert spec.env["GROUP_ID"] == "fxcortex-connect"
    for key, topic in CONNECT_TOPICS.items():
        assert spec.env[key] == topic
    for kind in ("CONFIG", "OFFSET", "STATUS"):
        assert spec.env[f"CONNECT_{kind}_STORAGE_REPLICATION_FACTOR"] == "1"
    assert spec.env["ADVERTISED_HOST_NAME"] == spec.alias == "connect"
    assert spec.env["CONNECT_LISTENERS"] == "http://0.0.0.0:8083"
    assert spec.ports == {8083: PORTS["kafka_connect"]}
    assert spec.handle_env == {"CONNECT_URL": f"http://{HOST}:{PORTS['kafka_connect']}"}
    assert spec.network_env == {"CONNECT_URL": "http://connect:8083"}
    assert "PostgresConnector" in spec.healthcheck["test"][1]


def test_redis_keeps_its_data_across_restarts() -> None:
    spec = SPECS["redis"]
    assert spec.command == ("redis-server", "--appendonly", "yes")
    assert spec.ports == {6379: PORTS["redis"]}
    assert spec.healthcheck["test"] == ["CMD", "redis-cli", "ping"]


def test_clickhouse_has_the_deployments_account_and_its_http_port() -> None:
    spec = SPECS["clickhouse"]
    assert spec.env["CLICKHOUSE_USER"] == spec.handle_env["CLICKHOUSE_USER"] == "fxcortex"
    assert spec.env["CLICKHOUSE_PASSWORD"] == spec.handle_env["CLICKHOUSE_PASSWORD"]
    assert spec.ports == {8123: PORTS["clickhouse"]}
    assert spec.network_env["CLICKHOUSE_HOST"] == "clickhouse"
    assert "/ping" in spec.healthcheck["test"][1]
    assert spec.docker_options["ulimits"] == [{"name": "nofile", "soft": 262144, "hard": 262144}]


# --------------------------------------------------------------------------- what Docker would get
class _Created(Exception):
    """Raised by the stand-in client where Docker would create the container."""


@pytest.fixture
def docker_create_request(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """The JSON body of ``POST /containers/create`` that starting a spec's container would send.

    testcontainers builds and "starts" the container for real, with its Docker client replaced by
    a stand-in that records the create call; the Docker SDK then turns that call into the request
    body, as it would before sending it. Nothing is sent anywhere.
    """
    import docker.api.client
    import docker.models.containers
    import testcontainers.core.container
    import testcontainers.core.network
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.network import Network

    calls: list[dict[str, Any]] = []

    class StandInDockerClient:
        def __init__(self, **_: Any) -> None:
            pass

        def create(self, image: str, command: Any = None, **kwargs: Any) -> Any:
            calls.append({"image": image, "command": command, **kwargs})
            raise _Created

    monkeypatch.setattr(testcontainers.core.container, "DockerClient", StandInDockerClient)
    monkeypatch.setattr(testcontainers.core.network, "DockerClient", StandInDockerClient)
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)  # no reaper container
    api = docker.api.client.APIClient(base_url="unix:///nonexistent.sock", version="1.44")

    def request(spec: ContainerSpec, bind_ip: str | None = HOST) -> dict[str, Any]:
        network = Network()
        container = to_container(spec, network, bind_ip)
        with pytest.raises(_Created):
            container.start()
        call = dict(calls.pop(), version=api._version)
        arguments = docker.models.containers._create_container_args(call)
        arguments.pop("name", None)  # a query parameter, not part of the body
        body: dict[str, Any] = api.create_container_config(**arguments)
        body["network_name"] = network.name
        return body

    return request


@pytest.mark.parametrize("service", list(SPECS))
def test_the_create_request_carries_the_whole_configuration(
    service: str, docker_create_request: Callable[..., dict[str, Any]]
) -> None:
    spec = SPECS[service]
    body = docker_create_request(spec)
    assert body["Image"] == spec.image
    assert body["Cmd"] == (list(spec.command) or None)
    assert sorted(body["Env"] or []) == sorted(f"{k}={v}" for k, v in spec.env.items())
    assert body["HostConfig"]["PortBindings"] == {
        f"{container}/tcp": [{"HostIp": HOST, "HostPort": str(host)}]
        for container, host in spec.ports.items()
    }
    assert set(body["ExposedPorts"]) == {f"{port}/tcp" for port in spec.ports}
    network = body["network_name"]
    assert body["HostConfig"]["NetworkMode"] == network
    assert body["NetworkingConfig"]["EndpointsConfig"][network]["Aliases"] == [spec.alias]
    health = spec.healthcheck
    assert body["Healthcheck"] == {
        "Test": health["test"],
        "Interval": health["interval"],
        "Timeout": health["timeout"],
        "Retries": health["retries"],
        "StartPeriod": health["start_period"],
    }
    if service == "clickhouse":
        assert body["HostConfig"]["Ulimits"] == [{"Name": "nofile", "Soft": 262144, "Hard": 262144}]


def test_a_remote_engine_publishes_on_every_address(
    docker_create_request: Callable[..., dict[str, Any]],
) -> None:
    body = docker_create_request(SPECS["redis"], bind_ip=None)
    assert body["HostConfig"]["PortBindings"] == {
        "6379/tcp": [{"HostIp": "", "HostPort": str(PORTS["redis"])}]
    }


# --------------------------------------------------------------------------- without Docker
def test_without_docker_the_backend_fails_with_the_reason(no_engine: Path) -> None:
    missing = no_engine
    backend = ContainersBackend()
    with pytest.raises(BackendUnavailable) as first:
        backend.service("postgres")
    message = str(first.value)
    assert "FXCORTEX_SERVICES=testcontainers" in message
    assert "needs a Docker engine" in message
    assert str(missing) in message
    assert "FXCORTEX_SERVICES=local" in message  # and what to do instead
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as again:  # every later fixture: the same, at once
        backend.service("kafka_connect")
    assert str(again.value) == message
    assert time.monotonic() - started < 0.5
    assert backend.close(session_failed=True) is None


def test_without_docker_a_forced_testcontainers_run_fails_and_skips_nothing(tmp_path: Path) -> None:
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "FXCORTEX_", "DOCKER_", "TESTCONTAINERS_", "TC_"))
    }
    environ |= {
        "FXCORTEX_SERVICES": "testcontainers",
        "DOCKER_HOST": f"unix://{tmp_path / 'docker.sock'}",
        "HOME": str(tmp_path),  # no ~/.testcontainers.properties, no docker context
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/integration/test_services_smoke.py::test_redis_set_get",
            "tests/integration/test_services_smoke.py::test_postgres_creates_a_logical_replication_slot",
        ],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    # a fixture that fails is an error of each test that asked for it: red, never skipped
    assert "2 errors" in output, output
    assert "skipped" not in output, output
    assert (
        "testcontainers backend (FXCORTEX_SERVICES=testcontainers) needs a Docker engine" in output
    )
    assert "services backend: testcontainers (FXCORTEX_SERVICES=testcontainers)" in output


def test_an_external_database_may_have_another_address_for_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    database = {
        "DB_HOST": "localhost",
        "DB_PORT": "5432",
        "DB_NAME": "fxcortex",
        "DB_USER": "fxcortex",
        "DB_PASSWORD": "change-me",
    }
    for key, value in database.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CONNECT_DB_HOST", raising=False)
    monkeypatch.delenv("CONNECT_DB_PORT", raising=False)
    same = ExternalBackend().service("postgres")
    assert isinstance(same, PostgresHandle)
    assert (same.connect_host, same.connect_port) == ("localhost", 5432)
    monkeypatch.setenv("CONNECT_DB_HOST", "db")  # a compose stack: Connect is on its network
    compose = ExternalBackend().service("postgres")
    assert isinstance(compose, PostgresHandle)
    assert (compose.host, compose.connect_host, compose.connect_port) == ("localhost", "db", 5432)


def test_an_external_clickhouse_comes_from_the_deployments_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in ("CLICKHOUSE_HOST", "CLICKHOUSE_PORT", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(BackendUnavailable, match="CLICKHOUSE_HOST, CLICKHOUSE_PORT"):
        ExternalBackend().service("clickhouse")
    monkeypatch.setenv("CLICKHOUSE_HOST", "localhost")
    monkeypatch.setenv("CLICKHOUSE_PORT", "8123")
    handle = ExternalBackend().service("clickhouse")
    assert isinstance(handle, ClickHouseHandle)
    assert (handle.url, handle.user, handle.password) == ("http://localhost:8123", "default", "")


# --------------------------------------------------------------------------- kill and restart
class _StandInContainer:
    """The Docker SDK's container object, as far as the backend's kill/restart logic uses it."""

    def __init__(self) -> None:
        self.status = "running"
        self.attrs: dict[str, Any] = {"State": {"ExitCode": 0, "Health": {"Status": "healthy"}}}
        self.calls: list[str] = []

    def reload(self) -> None:
        pass

    def kill(self) -> None:
        self.calls.append("kill")
        self.status = "exited"
        self.attrs["State"]["ExitCode"] = 137

    def start(self) -> None:
        self.calls.append("start")
        self.status = "running"

    def restart(self, timeout: int) -> None:
        self.calls.append(f"restart timeout={timeout}")

    def logs(self, tail: int | None = None) -> bytes:
        return b"first line\nlast line\n"


class _StandInTestcontainer:
    def __init__(self, wrapped: _StandInContainer | None) -> None:
        self.wrapped = wrapped
        self.removed = False

    def get_wrapped_container(self) -> _StandInContainer:
        if self.wrapped is None:
            raise RuntimeError("No such container")
        return self.wrapped

    def stop(self) -> None:
        self.removed = True


@pytest.fixture
def redis_in_a_stand_in(
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[ContainersBackend, _StandInContainer, _StandInTestcontainer]:
    """The backend holding one 'redis' container whose readiness is its running state."""
    import testcontainers_backend

    wrapped = _StandInContainer()
    container = _StandInTestcontainer(wrapped)
    backend = ContainersBackend(docker_problem=never_asked)
    backend._specs["redis"] = SPECS["redis"]
    backend._containers["redis"] = cast(Any, container)
    monkeypatch.setitem(
        testcontainers_backend.PROBES, "redis", lambda _env: wrapped.status == "running"
    )
    return backend, wrapped, container


def test_kill_is_docker_kill_and_restart_starts_the_same_container(
    redis_in_a_stand_in: tuple[ContainersBackend, _StandInContainer, _StandInTestcontainer],
) -> None:
    backend, wrapped, _container = redis_in_a_stand_in
    backend._kill("redis")
    assert (wrapped.calls, wrapped.status) == (["kill"], "exited")
    backend._restart("redis")  # a killed container is started again, not recreated
    assert wrapped.calls == ["kill", "start"]
    backend._restart("redis")  # a running one is restarted gracefully
    assert wrapped.calls[-1] == "restart timeout=30"
    backend._ensure_running("redis")  # running: nothing to do
    assert len(wrapped.calls) == 3
    backend._kill("redis")
    backend._ensure_running("redis")  # left dead by a test: started again
    assert wrapped.calls[-2:] == ["kill", "start"]


def test_a_container_that_exits_while_waiting_fails_with_its_log(
    redis_in_a_stand_in: tuple[ContainersBackend, _StandInContainer, _StandInTestcontainer],
) -> None:
    backend, wrapped, _container = redis_in_a_stand_in
    wrapped.kill()
    with pytest.raises(BackendUnavailable, match="exited with code 137") as info:
        backend._wait_ready("redis")
    assert "last line" in str(info.value)


def test_a_container_that_is_gone_cannot_be_killed_or_restarted(
    redis_in_a_stand_in: tuple[ContainersBackend, _StandInContainer, _StandInTestcontainer],
) -> None:
    backend, _wrapped, container = redis_in_a_stand_in
    container.wrapped = None
    for action in (backend._kill, backend._restart, backend._ensure_running):
        with pytest.raises(BackendUnavailable, match="container is gone") as info:
            action("redis")
        assert "its data is lost" in str(info.value)


def test_closing_a_red_session_keeps_the_logs_and_removes_the_containers(
    redis_in_a_stand_in: tuple[ContainersBackend, _StandInContainer, _StandInTestcontainer],
) -> None:
    backend, _wrapped, container = redis_in_a_stand_in
    line = backend.close(session_failed=True)
    assert container.removed
    assert line is not None and "logs are kept in" in line
    kept = Path(line.rsplit(" ", 1)[1])
    try:
        assert (kept / "redis.log").read_text() == "first line\nlast line\n"
    finally:
        shutil.rmtree(kept)
