"""Real services for the integration tests, behind one seam: a *backend*.

``FXCORTEX_SERVICES`` picks the backend (default ``local``):

``local``
    PostgreSQL, Redis, Kafka (KRaft) and Kafka Connect + Debezium run as local processes through
    ``services/local.py`` (provision them once with ``bash services/provision.sh``). Each service
    starts on first use, on free loopback ports, under a fresh folder in /tmp that is deleted after
    a green session and kept (with every service's log) after a red one.
``external``
    Services that already run elsewhere (``python services/local.py up``, a compose stack, ...),
    found through DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, REDIS_HOST, REDIS_PORT,
    KAFKA_BOOTSTRAP_SERVERS and CONNECT_URL. They cannot be killed or restarted from here: run with
    ``-m "not process_control"`` to leave out the tests that do that.

A backend that cannot be had fails the tests that need it with the reason; nothing is skipped.
Another backend (e.g. testcontainers) is a class with the methods of :class:`Backend`,
registered in :data:`BACKENDS`.

Fixtures (session-scoped): ``postgres``, ``redis``, ``kafka``, ``kafka_connect``. Each yields a
:class:`ServiceHandle` with the service's address (``.env`` holds the env names above) and
``kill()`` / ``restart()`` / ``log_tail()``. When a test fails, the tail of the log of each
service it used is attached to its report.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services"))
import local as local_services

SERVICE_FIXTURES = ("postgres", "redis", "kafka", "kafka_connect")


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot provide a service (not provisioned, not reachable, ...)."""


# --------------------------------------------------------------------------- handles
@dataclass
class ServiceHandle:
    """A running service as the tests see it, whatever backend runs it."""

    name: str
    env: dict[str, str]
    _kill: Callable[[], None] = field(repr=False)
    _restart: Callable[[], None] = field(repr=False)
    _log_tail: Callable[[int], str] = field(repr=False)
    _ensure_running: Callable[[], None] = field(repr=False)

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


@dataclass
class KafkaConnectHandle(ServiceHandle):
    @property
    def url(self) -> str:
        return self.env["CONNECT_URL"]

    def request(self, method: str, path: str, body: object | None = None) -> Any:
        """Call the Connect REST API and decode its JSON answer."""
        return local_services.connect_request(self.url, method, path, body)


HANDLE_TYPES: dict[str, type[ServiceHandle]] = {
    "postgres": PostgresHandle,
    "redis": RedisHandle,
    "kafka": KafkaHandle,
    "kafka_connect": KafkaConnectHandle,
}


# --------------------------------------------------------------------------- backends
class Backend(Protocol):
    """Where the services come from. ``service`` starts (or finds) one and returns its handle."""

    name: str

    def service(self, name: str) -> ServiceHandle: ...

    def close(self, session_failed: bool) -> str | None:
        """Release everything; may return a line for the terminal summary."""
        ...


class LocalBackend:
    """Local processes through services/local.py, under a fresh folder in /tmp."""

    name = "local"

    def __init__(self) -> None:
        # not pytest's tmp_path: /tmp/pytest-of-root is 0700 and PostgreSQL runs as 'postgres'
        self.root = Path(tempfile.mkdtemp(prefix="fxcortex-services-"))
        self.root.chmod(0o755)
        self.stack = local_services.LocalServices(self.root)
        self.timings: dict[str, float] = {}

    def service(self, name: str) -> ServiceHandle:
        try:
            self.timings.update(self.stack.start([name]))
        except local_services.ServiceError as exc:
            raise BackendUnavailable(f"local backend: {exc}") from exc
        service = self.stack[name]

        def restart() -> None:
            service.restart()

        return HANDLE_TYPES[name](
            name=name,
            env=service.env(),
            _kill=service.kill,
            _restart=restart,
            _log_tail=service.log_tail,
            _ensure_running=service.start,  # a no-op when it runs and answers
        )

    def close(self, session_failed: bool) -> str | None:
        self.stack.stop()
        timings = ", ".join(f"{n} {t:.1f} s" for n, t in self.timings.items())
        if session_failed:
            return f"local services stopped; their data and logs are kept in {self.root}"
        shutil.rmtree(self.root, ignore_errors=True)
        return f"local services started in: {timings}" if timings else None


class ExternalBackend:
    """Services that already run; their addresses come from the environment."""

    name = "external"
    required: ClassVar[dict[str, tuple[str, ...]]] = {
        "postgres": ("DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"),
        "redis": ("REDIS_HOST", "REDIS_PORT"),
        "kafka": ("KAFKA_BOOTSTRAP_SERVERS",),
        "kafka_connect": ("CONNECT_URL",),
    }

    def service(self, name: str) -> ServiceHandle:
        missing = [key for key in self.required[name] if not os.environ.get(key)]
        if missing:
            raise BackendUnavailable(
                f"external backend: {name} needs the environment variables {', '.join(missing)} "
                '(e.g. `set -a; eval "$(python services/local.py env)"; set +a`)'
            )
        env = {key: os.environ[key] for key in self.required[name]}

        def cannot(*_: object) -> None:
            raise BackendUnavailable(
                f"external backend: {name} runs outside this test session and cannot be killed "
                'or restarted from here; deselect these tests with -m "not process_control"'
            )

        return HANDLE_TYPES[name](
            name=name,
            env=env,
            _kill=cannot,
            _restart=cannot,
            _log_tail=lambda _lines: "(external backend: no log available)",
            _ensure_running=lambda: None,
        )

    def close(self, session_failed: bool) -> str | None:
        return None


#: FXCORTEX_SERVICES value -> backend factory; a testcontainers backend goes here too.
BACKENDS: dict[str, Callable[[], Backend]] = {"local": LocalBackend, "external": ExternalBackend}


# --------------------------------------------------------------------------- pytest wiring
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "process_control: the test kills or restarts a service (local backends only)"
    )


_summary: list[str] = []


@pytest.fixture(scope="session")
def services_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    choice = os.environ.get("FXCORTEX_SERVICES", "local").strip() or "local"
    if choice not in BACKENDS:
        pytest.fail(
            f"FXCORTEX_SERVICES={choice!r} is not a known backend; use one of: "
            f"{', '.join(BACKENDS)}",
            pytrace=False,
        )
    backend = BACKENDS[choice]()
    try:
        yield backend
    finally:
        line = backend.close(session_failed=request.session.testsfailed > 0)
        if line:
            _summary.append(line)


def _service(backend: Backend, name: str) -> ServiceHandle:
    try:
        return backend.service(name)
    except BackendUnavailable as exc:
        reason = str(exc)
    pytest.fail(reason, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture(scope="session")
def postgres(services_backend: Backend) -> PostgresHandle:
    handle = _service(services_backend, "postgres")
    assert isinstance(handle, PostgresHandle)
    return handle


@pytest.fixture(scope="session")
def redis(services_backend: Backend) -> RedisHandle:
    handle = _service(services_backend, "redis")
    assert isinstance(handle, RedisHandle)
    return handle


@pytest.fixture(scope="session")
def kafka(services_backend: Backend) -> KafkaHandle:
    handle = _service(services_backend, "kafka")
    assert isinstance(handle, KafkaHandle)
    return handle


@pytest.fixture(scope="session")
def kafka_connect(services_backend: Backend, kafka: KafkaHandle) -> KafkaConnectHandle:
    handle = _service(services_backend, "kafka_connect")
    assert isinstance(handle, KafkaConnectHandle)
    return handle


@pytest.fixture(autouse=True)
def _revive_services(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that kills services, bring back any it left dead for the tests after it."""
    yield
    if request.node.get_closest_marker("process_control") is None:
        return
    for name in SERVICE_FIXTURES:
        if name in request.fixturenames:
            handle = request.getfixturevalue(name)
            if isinstance(handle, ServiceHandle):
                handle.ensure_running()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        funcargs: dict[str, Any] = getattr(item, "funcargs", {})
        for name in SERVICE_FIXTURES:
            handle = funcargs.get(name)
            if isinstance(handle, ServiceHandle):
                try:
                    text = handle.log_tail(40)
                except OSError as exc:
                    text = f"(could not read the log: {exc})"
                report.sections.append((f"{name} log, last 40 lines", text))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _summary:
        terminalreporter.write_line(line)
