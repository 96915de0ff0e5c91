"""Real services for the integration tests, behind one seam: a *backend*.

``FXCORTEX_SERVICES`` picks the backend; when it is unset, ``testcontainers`` if a Docker engine
answers a ping (3 s at most), else ``local`` (:func:`testcontainers_backend.choose_backend`):

``local`` (``service_backends.py``)
    PostgreSQL, Redis, Kafka (KRaft), Kafka Connect + Debezium and ClickHouse's HTTP server run as
    local processes through ``services/local.py`` (provision them once with ``bash
    services/provision.sh``; ClickHouse is the ``chdb`` wheel's engine listening, see
    ``services/clickhouse_http.py``). Each service starts on first use, on free loopback ports,
    under a fresh folder in /tmp that is deleted after a green session and kept (with every
    service's log) after a red one.
``testcontainers``
    The official images (postgres:16 with logical replication, apache/kafka in KRaft mode, the
    Debezium Connect image, redis:7, clickhouse-server) on a Docker network of the session, under
    their compose service names (``testcontainers_backend.py``; the images in ``images.py``).
``external`` (``service_backends.py``)
    Services that already run elsewhere (``python services/local.py up``, a compose stack, ...),
    found through DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, REDIS_HOST, REDIS_PORT,
    KAFKA_BOOTSTRAP_SERVERS, CONNECT_URL and CLICKHOUSE_HOST, CLICKHOUSE_PORT (CLICKHOUSE_USER,
    CLICKHOUSE_PASSWORD); CONNECT_DB_HOST / CONNECT_DB_PORT when Kafka Connect reaches the
    database at another address than the tests (``db:5432`` in the compose stack). They cannot be
    killed or restarted from here: run with ``-m "not process_control"`` to leave out the tests
    that do that.

Another backend is a class with the methods of ``service_handles.Backend``, registered in
:data:`BACKENDS`. A backend that cannot be had fails the tests that need it with the reason;
nothing is skipped. Nothing starts (and no Docker engine is asked) before a test asks for a service
fixture, so tests that use none, like ``test_compose_config.py``, run without any service.

Fixtures (session-scoped): ``postgres``, ``redis``, ``kafka``, ``kafka_connect``, ``clickhouse``.
Each yields a handle (``service_handles.py``) with the service's address for the tests (``.env``
holds the env names above), its address for other services (``.network_env``; e.g.
``postgres.connect_host`` for a Debezium connector) and ``kill()`` / ``restart()`` /
``log_tail()``. When a test fails, the tail of the log of each service it used is attached to its
report.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services"))  # local.py
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the modules beside this file
from service_backends import ExternalBackend, LocalBackend
from service_handles import (
    SERVICE_FIXTURES,
    Backend,
    BackendUnavailable,
    ClickHouseHandle,
    KafkaConnectHandle,
    KafkaHandle,
    PostgresHandle,
    RedisHandle,
    ServiceHandle,
)
from testcontainers_backend import ContainersBackend, choose_backend, docker_engine_problem

#: FXCORTEX_SERVICES value -> backend factory
BACKENDS: dict[str, Callable[[], Backend]] = {
    "local": LocalBackend,
    "testcontainers": ContainersBackend,
    "external": ExternalBackend,
}


# --------------------------------------------------------------------------- pytest wiring
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "process_control: the test kills or restarts a service (local backends only)"
    )


_summary: list[str] = []


@pytest.fixture(scope="session")
def services_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    choice, why = choose_backend(os.environ, docker_engine_problem)
    _summary.append(f"services backend: {choice} ({why})")
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


@pytest.fixture(scope="session")
def clickhouse(services_backend: Backend) -> ClickHouseHandle:
    """A ClickHouse server (HTTP interface)."""
    handle = _service(services_backend, "clickhouse")
    assert isinstance(handle, ClickHouseHandle)
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
