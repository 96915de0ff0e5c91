#!/usr/bin/env python3
"""Run FX-Cortex's backing services as plain local processes: no Docker, no mocks.

PostgreSQL (logical decoding on) and Redis come from Debian packages; the Kafka broker (KRaft,
one combined broker+controller node) and the Kafka Connect distributed worker with the Debezium
PostgreSQL connector run from jars that ``services/provision.sh`` put in the cache folder
(``$FXCORTEX_SERVICES_CACHE``, default ``~/.cache/fxcortex/services``); ClickHouse's HTTP server
is the engine of the ``chdb`` wheel (clickhouse-local listening: ``services/clickhouse_http.py``).

Every service listens on a free loopback port, keeps its data and its log file under one folder,
and can be started, stopped (gracefully), killed (SIGKILL of its whole process group, like a
crash) and restarted on the same port with its data kept. ``start`` returns once the service is
ready, or raises :class:`ServiceError` with the tail of that service's log.

Library use::

    stack = LocalServices(Path("/tmp/fx"))
    stack.start(["postgres", "kafka"])
    stack.env()  # {"DB_HOST": "127.0.0.1", "DB_PORT": "...", "KAFKA_BOOTSTRAP_SERVERS": ...}
    stack["postgres"].kill(); stack["postgres"].start()
    stack.stop()

Command line (the folder defaults to ``$FXCORTEX_SERVICES_DIR`` or ``/tmp/fxcortex-services``)::

    python services/local.py up [--dir DIR] [--only postgres,redis,kafka,kafka_connect,clickhouse]
    python services/local.py status | env | down [--purge]

PostgreSQL refuses to run as root: when this runs as root, ``initdb`` and ``postgres`` run as
the ``postgres`` user of the Debian package (``$FXCORTEX_PG_USER`` to choose another), so the
folder must be reachable by that user (every parent folder needs ``o+x``; ``/tmp/...`` is fine).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, ClassVar

LOOPBACK = "127.0.0.1"
POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
DEFAULT_CACHE = Path(
    os.environ.get("FXCORTEX_SERVICES_CACHE", str(Path.home() / ".cache/fxcortex/services"))
)
DEFAULT_DIR = Path(os.environ.get("FXCORTEX_SERVICES_DIR", "/tmp/fxcortex-services"))
#: start order; stop runs in reverse
SERVICE_NAMES = ("postgres", "redis", "kafka", "kafka_connect", "clickhouse")
#: names of the environment variables this backend hands to the application and tests
ENV_NAMES = (
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "REDIS_HOST",
    "REDIS_PORT",
    "KAFKA_BOOTSTRAP_SERVERS",
    "CONNECT_URL",
    "CLICKHOUSE_HOST",
    "CLICKHOUSE_PORT",
)
JVM_HEAP = os.environ.get("FXCORTEX_JVM_HEAP", "-Xms128m -Xmx512m").split()
#: C1-only JIT: on 2 cores the JVMs start about twice as fast; set FXCORTEX_JVM_OPTS="" (full
#: JIT) when measuring throughput
JVM_OPTS = os.environ.get("FXCORTEX_JVM_OPTS", "-XX:TieredStopAtLevel=1").split()
PROVISION_HINT = "run `bash services/provision.sh` first"


class ServiceError(RuntimeError):
    """A service could not be provisioned, started, reached or stopped."""


def free_port() -> int:
    """A TCP port on the loopback address that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def tail(path: Path, lines: int = 60) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            data = f.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def _process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # the state is the first field after the parenthesised command name
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` in the process tree (children first)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[-1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None if there is no such process.

    Kept next to the pid in the state file, it tells a later command that the pid still names
    the process we started and not a new one that reuses the number.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat.rsplit(")", 1)[-1].split()[19])


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin/java").exists():
        return str(Path(home) / "bin/java")
    found = shutil.which("java")
    if not found:
        raise ServiceError(
            f"no `java` on PATH and no JAVA_HOME (Java 17+ is needed); {PROVISION_HINT}"
        )
    return found


class Service(ABC):
    """One server process with its own folder (data + ``<name>.log``) under a root folder."""

    name: ClassVar[str]
    port_names: ClassVar[tuple[str, ...]]
    start_timeout: ClassVar[float] = 60.0
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(
        self,
        root: Path,
        ports: Mapping[str, int] | None = None,
        started: tuple[int, int] | None = None,
    ):
        """``started`` is ``(pid, start ticks)`` as :meth:`state` saved it for a running process."""
        self.root = root
        self.dir = root / self.name
        self.log_path = self.dir / f"{self.name}.log"
        self.ports: dict[str, int] = dict(ports or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._ticks: int | None = None
        if started is not None and _start_ticks(started[0]) == started[1]:
            self._pid, self._ticks = started

    # ----------------------------------------------------------------- to implement
    @abstractmethod
    def _prepare(self) -> None:
        """Create the data folder and config files (idempotent; runs before each start)."""

    @abstractmethod
    def _command(self) -> list[str]:
        """The server's command line."""

    @abstractmethod
    def _probe(self) -> bool:
        """True when the service answers like a ready server; may raise OSError."""

    @abstractmethod
    def env(self) -> dict[str, str]:
        """Environment variables that point a client at this service."""

    def _popen_options(self) -> dict[str, Any]:
        return {}

    # ----------------------------------------------------------------- lifecycle
    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def host(self) -> str:
        return LOOPBACK

    def running(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self._pid is not None and _process_alive(self._pid)

    def ready(self) -> bool:
        if not self.running():
            return False
        try:
            return self._probe()
        except OSError:
            return False

    def start(self, timeout: float | None = None) -> None:
        """Start the process (if not running) and wait until it is ready."""
        if self.running():
            self.wait_ready(timeout)
            return
        for port_name in self.port_names:
            self.ports.setdefault(port_name, free_port())
        self.dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        command = self._command()
        with self.log_path.open("ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(
                f"\n===== {stamp} fxcortex: starting {self.name}: {' '.join(command)}\n".encode()
            )
            log.flush()
            options: dict[str, Any] = {"cwd": self.dir, "env": self._environ()}
            options.update(self._popen_options())
            try:
                self._proc = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group: kill() takes its children too
                    **options,
                )
            except OSError as exc:
                raise ServiceError(f"{self.name}: cannot run {command[0]}: {exc}") from exc
        self._pid = self._proc.pid
        self._ticks = _start_ticks(self._pid)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float | None = None) -> None:
        limit = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            if not self.running():
                code = self._proc.returncode if self._proc is not None else "?"
                raise self._error(f"exited with code {code} while starting")
            try:
                if self._probe():
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise self._error(f"not ready after {limit:.0f} s (pid {self._pid} still runs)")
            time.sleep(0.25)

    def stop(self, timeout: float = 60.0) -> None:
        """Graceful shutdown; SIGKILL of the process group if it takes longer than ``timeout``."""
        if self._pid is None:
            return
        if self.running():
            self._append_log(f"stopping: {self.stop_signal.name} to pid {self._pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, self.stop_signal)
            if not self._wait_exit(timeout):
                self._append_log(f"did not stop within {timeout:.0f} s; killing it")
        self.kill()

    def kill(self) -> None:
        """SIGKILL the process and all its descendants, as a crash would; wait until they are gone.

        (PostgreSQL's backends leave the postmaster's process group, so the group is not enough.)
        """
        if self._pid is None:
            return
        if self.running():
            self._append_log(f"SIGKILL to pid {self._pid} and its descendants")
        victims = [self._pid, *_descendants(self._pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pid, signal.SIGKILL)
        self._wait_exit(30.0)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and any(_process_alive(pid) for pid in victims):
            time.sleep(0.05)
        self._proc = None
        self._pid = self._ticks = None

    def restart(self, timeout: float | None = None) -> None:
        """Stop (gracefully, if running) and start again on the same port with the same data."""
        self.stop()
        self.start(timeout)

    def log_tail(self, lines: int = 60) -> str:
        return tail(self.log_path, lines)

    def state(self) -> dict[str, Any]:
        started = [self._pid, self._ticks] if self.running() else None
        return {"ports": self.ports, "started": started}

    # ----------------------------------------------------------------- helpers
    def _environ(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "JAVA_HOME", "HOME", "TMPDIR")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.setdefault("LANG", "C.UTF-8")
        return env

    def _wait_exit(self, timeout: float) -> bool:
        if self._proc is not None:
            try:
                self._proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while self._pid is not None and _process_alive(self._pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _append_log(self, message: str) -> None:
        with contextlib.suppress(OSError), self.log_path.open("a") as log:
            log.write(f"===== fxcortex: {message}\n")

    def _error(self, what: str) -> ServiceError:
        return ServiceError(
            f"{self.name} {what}.\nLog: {self.log_path}\n"
            f"--- last lines of {self.log_path.name} ---\n{self.log_tail(40)}\n--- end ---"
        )

    def _run(self, command: list[str], what: str, stdin: str | None = None, **kw: Any) -> None:
        """Run a helper command to completion, its output appended to the service log."""
        with self.log_path.open("ab") as log:
            log.write(f"===== fxcortex: {what}: {' '.join(command)}\n".encode())
            log.flush()
            result = subprocess.run(
                command,
                input=stdin.encode() if stdin is not None else None,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._environ(),
                timeout=300,
                check=False,
                **kw,
            )
        if result.returncode != 0:
            raise self._error(f"{what} failed with code {result.returncode}")


# --------------------------------------------------------------------------- PostgreSQL
def _postgres_bindir() -> Path:
    configured = os.environ.get("FXCORTEX_PG_BINDIR")
    if configured:
        return Path(configured)
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise ServiceError(f"PostgreSQL server binaries (initdb) not found; {PROVISION_HINT}")


class PostgresService(Service):
    """PostgreSQL with ``wal_level=logical``, TCP on loopback only, password (SCRAM) auth.

    The ``DB_USER`` is the cluster's bootstrap superuser (as with the official container image),
    so it may create publications and replication slots for Debezium.
    """

    name = "postgres"
    port_names = ("port",)
    start_timeout = 60.0
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for clients to leave

    def __init__(
        self,
        root: Path,
        ports: Mapping[str, int] | None = None,
        started: tuple[int, int] | None = None,
        *,
        dbname: str = "fxcortex",
        user: str = "fxcortex",
        password: str = "fxcortex",
    ):
        super().__init__(root, ports, started)
        self.dbname, self.user, self.password = dbname, user, password
        self.data = self.dir / "data"
        self.bindir = _postgres_bindir()
        self.os_user: str | None = None
        if os.geteuid() == 0:
            self.os_user = os.environ.get("FXCORTEX_PG_USER", "postgres")

    @property
    def port(self) -> int:
        return self.ports["port"]

    def env(self) -> dict[str, str]:
        return {
            "DB_HOST": self.host,
            "DB_PORT": str(self.port),
            "DB_NAME": self.dbname,
            "DB_USER": self.user,
            "DB_PASSWORD": self.password,
        }

    @property
    def conninfo(self) -> str:
        """A libpq connection string (psycopg.connect(conninfo))."""
        return (
            f"host={self.host} port={self.port} dbname={self.dbname} "
            f"user={self.user} password={self.password}"
        )

    def _popen_options(self) -> dict[str, Any]:
        if self.os_user is None:
            return {}
        entry = pwd.getpwnam(self.os_user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _environ(self) -> dict[str, str]:
        env = super()._environ()
        if self.os_user is not None:
            env["HOME"] = pwd.getpwnam(self.os_user).pw_dir
        return env

    def _prepare(self) -> None:
        if self.os_user is not None:
            try:
                entry = pwd.getpwnam(self.os_user)
            except KeyError as exc:
                raise ServiceError(
                    f"postgres: running as root, so PostgreSQL must run as another user, but there "
                    f"is no user {self.os_user!r}; {PROVISION_HINT} or set FXCORTEX_PG_USER"
                ) from exc
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            self.dir.chmod(0o700)
            probe = subprocess.run(
                ["test", "-w", str(self.dir)], check=False, **self._popen_options()
            )
            if probe.returncode != 0:
                raise ServiceError(
                    f"postgres: PostgreSQL refuses to run as root and runs as user "
                    f"{self.os_user!r}, who cannot reach {self.dir}: every parent folder needs "
                    f"o+x (e.g. `chmod o+x {self.root}`), or use a folder under /tmp"
                )
        if (self.data / "PG_VERSION").exists():
            return
        if self.data.exists():  # a half-made cluster from an interrupted initdb
            shutil.rmtree(self.data)
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        if self.os_user is not None:
            entry = pwd.getpwnam(self.os_user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run(
                [
                    str(self.bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.user,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
                "initdb",
                cwd=self.dir,
                **self._popen_options(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if self.dbname not in ("postgres", "template1"):
            # single-user mode: no server, no network, no password needed
            self._run(
                [str(self.bindir / "postgres"), "--single", "-D", str(self.data), "postgres"],
                f"create database {self.dbname}",
                stdin=f'CREATE DATABASE "{self.dbname}";\n',
                cwd=self.dir,
                **self._popen_options(),
            )

    def _command(self) -> list[str]:
        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(self.port),
            "unix_socket_directories": "",
            "wal_level": "logical",
            "max_replication_slots": "10",
            "max_wal_senders": "10",
            "max_connections": "100",
            "shared_buffers": "128MB",
            # throwaway clusters: a killed server loses no committed row (WAL is written at
            # commit), only a crash of the whole machine could; keep synchronous_commit on
            "fsync": "off",
            "full_page_writes": "off",
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] ",
        }
        command = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return command

    def _probe(self) -> bool:
        result = subprocess.run(
            [
                str(self.bindir / "pg_isready"),
                "-q",
                "-t",
                "2",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-d",
                self.dbname,
                "-U",
                self.user,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )
        return result.returncode == 0


# --------------------------------------------------------------------------- Redis
class RedisService(Service):
    """redis-server on loopback with an append-only file, so a restart keeps the data."""

    name = "redis"
    port_names = ("port",)
    start_timeout = 30.0

    @property
    def port(self) -> int:
        return self.ports["port"]

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def env(self) -> dict[str, str]:
        return {"REDIS_HOST": self.host, "REDIS_PORT": str(self.port)}

    def _prepare(self) -> None:
        (self.dir / "data").mkdir(exist_ok=True)
        (self.dir / "redis.conf").write_text(
            "\n".join(
                [
                    f"bind {LOOPBACK}",
                    f"port {self.port}",
                    "protected-mode yes",
                    "daemonize no",
                    'logfile ""',
                    f'dir "{self.dir / "data"}"',
                    'save ""',
                    "appendonly yes",
                    "appendfsync everysec",
                    "maxmemory 512mb",
                    "",
                ]
            )
        )

    def _command(self) -> list[str]:
        server = os.environ.get("FXCORTEX_REDIS_SERVER") or shutil.which("redis-server")
        if not server:
            raise ServiceError(f"redis-server not found; {PROVISION_HINT}")
        return [server, str(self.dir / "redis.conf")]

    def _probe(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")


# --------------------------------------------------------------------------- Kafka
_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = OUT
logger.reflections.name = org.reflections
logger.reflections.level = error
logger.statechange.name = state.change.logger
logger.statechange.level = warn
"""


def _properties(values: Mapping[str, object]) -> str:
    return "".join(f"{key}={value}\n" for key, value in values.items())


def _kafka_classpath(cache: Path) -> str:
    libs = cache / "kafka/libs"
    if not any(libs.glob("kafka_2.13-*.jar")) or not any(libs.glob("connect-runtime-*.jar")):
        raise ServiceError(f"no Kafka jars in {libs}; {PROVISION_HINT}")
    return f"{libs}/*"


def _java_command(cache: Path, log4j: Path, main: str, *args: str) -> list[str]:
    return [
        _java(),
        *JVM_HEAP,
        *JVM_OPTS,
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
        "-Djava.awt.headless=true",
        "-Djava.net.preferIPv4Stack=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        _kafka_classpath(cache),
        main,
        *args,
    ]


class KafkaService(Service):
    """A single-node Kafka cluster in KRaft mode: one process is broker and controller."""

    name = "kafka"
    port_names = ("broker", "controller")
    start_timeout = 120.0

    def __init__(
        self,
        root: Path,
        ports: Mapping[str, int] | None = None,
        started: tuple[int, int] | None = None,
        *,
        cache: Path = DEFAULT_CACHE,
    ):
        super().__init__(root, ports, started)
        self.cache = cache
        self.config = self.dir / "server.properties"
        self.log4j = self.dir / "log4j2.properties"
        self.data = self.dir / "data"

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.ports['broker']}"

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}

    def _prepare(self) -> None:
        broker, controller = self.ports["broker"], self.ports["controller"]
        self.log4j.write_text(_LOG4J2)
        self.config.write_text(
            _properties(
                {
                    "process.roles": "broker,controller",
                    "node.id": 1,
                    "controller.quorum.voters": f"1@{LOOPBACK}:{controller}",
                    "listeners": f"PLAINTEXT://{LOOPBACK}:{broker},CONTROLLER://{LOOPBACK}:{controller}",
                    "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{broker}",
                    "controller.listener.names": "CONTROLLER",
                    "inter.broker.listener.name": "PLAINTEXT",
                    "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    "log.dirs": self.data,
                    "num.partitions": 1,
                    "default.replication.factor": 1,
                    "auto.create.topics.enable": "true",
                    "offsets.topic.replication.factor": 1,
                    "offsets.topic.num.partitions": 5,
                    "transaction.state.log.replication.factor": 1,
                    "transaction.state.log.min.isr": 1,
                    "share.coordinator.state.topic.replication.factor": 1,
                    "share.coordinator.state.topic.min.isr": 1,
                    "group.initial.rebalance.delay.ms": 0,
                    # after a kill the old registration blocks the restarted broker until its
                    # session expires (default 9 s): keep that short
                    "broker.session.timeout.ms": 4000,
                    "broker.heartbeat.interval.ms": 1000,
                    "num.network.threads": 2,
                    "num.io.threads": 2,
                    "log.retention.hours": 24,
                    "log.segment.bytes": 64 * 1024 * 1024,
                }
            )
        )
        if (self.data / "meta.properties").exists():
            return
        cluster_id_file = self.dir / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22])
        self._run(
            _java_command(
                self.cache,
                self.log4j,
                "kafka.tools.StorageTool",
                "format",
                # One argument: a random id may begin with "-", which would read as an option.
                f"--cluster-id={cluster_id_file.read_text().strip()}",
                "--config",
                str(self.config),
                "--ignore-formatted",
            ),
            "format the KRaft storage",
        )

    def _command(self) -> list[str]:
        return _java_command(self.cache, self.log4j, "kafka.Kafka", str(self.config))

    def _probe(self) -> bool:
        return kafka_broker_count(self.host, self.ports["broker"]) > 0


def kafka_broker_count(host: str, port: int, timeout: float = 3.0) -> int:
    """Ask a broker for cluster metadata (Metadata v4, no topics): how many live brokers it knows.

    A KRaft broker answers with itself only once it has caught up with the metadata log and is
    unfenced, i.e. when it serves clients.
    """
    client_id = b"fxcortex-probe"
    body = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id  # Metadata v4, corr. id 7
    body += struct.pack(">i?", 0, False)  # topics: [] , allow_auto_topic_creation: false
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(s, 4))[0]
        payload = _recv_exact(s, size)
    correlation_id, _throttle, brokers = struct.unpack(">iii", payload[:12])
    if correlation_id != 7:
        raise OSError(f"unexpected Kafka response (correlation id {correlation_id})")
    return int(brokers)


def _recv_exact(s: socket.socket, n: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = s.recv(n - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed by the broker")
        chunks += chunk
    return bytes(chunks)


# --------------------------------------------------------------------------- Kafka Connect
class KafkaConnectService(Service):
    """A Kafka Connect distributed worker with the Debezium PostgreSQL connector installed."""

    name = "kafka_connect"
    port_names = ("rest",)
    start_timeout = 180.0

    def __init__(
        self,
        root: Path,
        ports: Mapping[str, int] | None = None,
        started: tuple[int, int] | None = None,
        *,
        bootstrap_servers: str,
        cache: Path = DEFAULT_CACHE,
    ):
        super().__init__(root, ports, started)
        self.bootstrap_servers = bootstrap_servers
        self.cache = cache
        self.config = self.dir / "worker.properties"
        self.log4j = self.dir / "log4j2.properties"
        self.plugin_path = cache / "debezium"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.ports['rest']}"

    def env(self) -> dict[str, str]:
        return {"CONNECT_URL": self.url}

    def _prepare(self) -> None:
        if not any(self.plugin_path.glob("*/debezium-connector-postgres-*.jar")):
            raise ServiceError(
                f"no Debezium connector jars under {self.plugin_path}; {PROVISION_HINT}"
            )
        rest = self.ports["rest"]
        json_converter = "org.apache.kafka.connect.json.JsonConverter"
        self.log4j.write_text(_LOG4J2)
        self.config.write_text(
            _properties(
                {
                    "bootstrap.servers": self.bootstrap_servers,
                    "group.id": "fxcortex-connect",
                    "key.converter": json_converter,
                    "value.converter": json_converter,
                    "config.storage.topic": "_fxcortex_connect_configs",
                    "offset.storage.topic": "_fxcortex_connect_offsets",
                    "status.storage.topic": "_fxcortex_connect_status",
                    "config.storage.replication.factor": 1,
                    "offset.storage.replication.factor": 1,
                    "status.storage.replication.factor": 1,
                    "offset.storage.partitions": 1,
                    "status.storage.partitions": 1,
                    "offset.flush.interval.ms": 1000,
                    "listeners": f"http://{LOOPBACK}:{rest}",
                    "rest.advertised.host.name": LOOPBACK,
                    "rest.advertised.port": rest,
                    "plugin.path": self.plugin_path,
                    # every plugin here ships ServiceLoader manifests: skip the slow reflection scan
                    "plugin.discovery": "service_load",
                }
            )
        )

    def _command(self) -> list[str]:
        return _java_command(
            self.cache,
            self.log4j,
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(self.config),
        )

    def _probe(self) -> bool:
        try:
            plugins = self.request("GET", "/connector-plugins", timeout=3)
        except ServiceError:  # the REST server answers 404/503 while the worker starts
            return False
        return any(p.get("class") == POSTGRES_CONNECTOR for p in plugins)

    def request(
        self, method: str, path: str, body: object | None = None, timeout: float = 30.0
    ) -> Any:
        """Call the Connect REST API; returns the decoded JSON (None for an empty body)."""
        return connect_request(self.url, method, path, body, timeout)


def connect_request(
    url: str, method: str, path: str, body: object | None = None, timeout: float = 30.0
) -> Any:
    """Call a Kafka Connect REST API; raises ServiceError with the answer on an HTTP error."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise ServiceError(f"Kafka Connect {method} {path}: HTTP {exc.code}: {detail}") from exc
    return json.loads(text) if text.strip() else None


# --------------------------------------------------------------------------- ClickHouse
class ClickHouseService(Service):
    """ClickHouse's HTTP interface, served by the ``chdb`` wheel's engine (26.9) on loopback.

    ``services/clickhouse_http.py`` runs clickhouse-local with its HTTP listener started (no
    package here ships ``clickhouse-server``); tables live under ``data/`` and survive a restart.
    It runs on the Python running this (which has ``chdb``), or ``$FXCORTEX_CLICKHOUSE_PYTHON``.
    """

    name = "clickhouse"
    port_names = ("http",)
    start_timeout = 60.0

    @property
    def port(self) -> int:
        return self.ports["http"]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        return {"CLICKHOUSE_HOST": self.host, "CLICKHOUSE_PORT": str(self.port)}

    def _prepare(self) -> None:
        (self.dir / "data").mkdir(exist_ok=True)

    def _command(self) -> list[str]:
        python = os.environ.get("FXCORTEX_CLICKHOUSE_PYTHON") or sys.executable
        launcher = Path(__file__).resolve().with_name("clickhouse_http.py")
        return [python, str(launcher), str(self.dir / "data"), str(self.port), LOOPBACK]

    def _probe(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as answer:
            return bool(answer.read().startswith(b"Ok."))


# --------------------------------------------------------------------------- the stack
class LocalServices:
    """All services under one root folder; remembers ports and pids in ``services.json``."""

    def __init__(self, root: Path = DEFAULT_DIR, cache: Path = DEFAULT_CACHE):
        self.root = root.resolve()
        self.cache = cache
        self.state_file = self.root / "services.json"
        self._services: dict[str, Service] = {}
        self._saved: dict[str, dict[str, Any]] = {}
        if self.state_file.exists():
            self._saved = json.loads(self.state_file.read_text())

    def __getitem__(self, name: str) -> Service:
        return self.service(name)

    def service(self, name: str) -> Service:
        if name not in SERVICE_NAMES:
            raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICE_NAMES)}")
        if name not in self._services:
            saved = self._saved.get(name, {})
            ports = saved.get("ports")
            pid_ticks = saved.get("started")
            started = (int(pid_ticks[0]), int(pid_ticks[1])) if pid_ticks else None
            service: Service
            if name == "postgres":
                service = PostgresService(self.root, ports, started)
            elif name == "redis":
                service = RedisService(self.root, ports, started)
            elif name == "kafka":
                service = KafkaService(self.root, ports, started, cache=self.cache)
            elif name == "clickhouse":
                service = ClickHouseService(self.root, ports, started)
            else:
                kafka = self.service("kafka")
                if not isinstance(kafka, KafkaService):
                    raise TypeError("the 'kafka' service is not a KafkaService")
                for port_name in kafka.port_names:  # Connect needs Kafka's address up front
                    kafka.ports.setdefault(port_name, free_port())
                service = KafkaConnectService(
                    self.root,
                    ports,
                    started,
                    bootstrap_servers=kafka.bootstrap_servers,
                    cache=self.cache,
                )
            self._services[name] = service
        return self._services[name]

    def _prepare_root(self) -> None:
        created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        if created:
            self.root.chmod(0o755)  # the postgres user must be able to enter it

    def start(
        self, names: Iterable[str] = SERVICE_NAMES, *, report: IO[str] | None = None
    ) -> dict[str, float]:
        """Start the named services (Kafka Connect brings Kafka); returns seconds per service."""
        wanted = set(names)
        if "kafka_connect" in wanted:
            wanted.add("kafka")
        self._prepare_root()
        timings: dict[str, float] = {}
        for name in SERVICE_NAMES:
            if name not in wanted:
                continue
            service = self.service(name)
            if service.ready():
                continue
            began = time.monotonic()
            try:
                service.start()
            finally:
                self.save()
            timings[name] = time.monotonic() - began
            if report is not None:
                print(
                    f"{name}: ready in {timings[name]:.1f} s (log: {service.log_path})", file=report
                )
        return timings

    def stop(self, names: Iterable[str] = SERVICE_NAMES) -> None:
        """Stop the named services, in reverse start order."""
        wanted = set(names)
        errors: list[str] = []
        for name in reversed(SERVICE_NAMES):
            if name in wanted and (name in self._services or name in self._saved):
                try:
                    self.service(name).stop()
                except (OSError, ServiceError) as exc:
                    errors.append(f"{name}: {exc}")
        if self.root.exists():
            self.save()
        if errors:
            raise ServiceError("could not stop: " + "; ".join(errors))

    def known(self) -> list[Service]:
        names = set(self._services) | set(self._saved)
        return [self.service(n) for n in SERVICE_NAMES if n in names]

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for service in self.known():
            env.update(service.env())
        return env

    def save(self) -> None:
        state = {**self._saved, **{n: s.state() for n, s in self._services.items()}}
        self._saved = state
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)


# --------------------------------------------------------------------------- CLI
def _print_env(env: Mapping[str, str]) -> None:
    for key in ENV_NAMES:
        if key in env:
            print(f"{key}={env[key]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python services/local.py",
        description=(
            "Run PostgreSQL, Redis, Kafka, Kafka Connect (Debezium) and ClickHouse as local"
            " processes."
        ),
    )
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"default: {DEFAULT_DIR}")
    parser.add_argument(
        "--cache", type=Path, default=DEFAULT_CACHE, help=f"default: {DEFAULT_CACHE}"
    )
    parser.add_argument(
        "--only",
        default=",".join(SERVICE_NAMES),
        help="comma-separated subset of: " + ",".join(SERVICE_NAMES),
    )
    parser.add_argument("--purge", action="store_true", help="down: also delete the folder")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SERVICE_NAMES))
    if unknown:
        parser.error(f"unknown service(s): {', '.join(unknown)}")
    stack = LocalServices(args.dir, args.cache)

    if args.command == "up":
        try:
            stack.start(names, report=sys.stderr)
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            print("(services that did start keep running: `down` stops them)", file=sys.stderr)
            return 1
        _print_env(stack.env())
        return 0
    if args.command == "down":
        stack.stop(names)
        if args.purge and args.dir.exists():
            shutil.rmtree(args.dir)
        return 0
    if args.command == "env":
        _print_env(stack.env())
        return 0
    all_ready = True
    for service in stack.known():
        state = "ready" if service.ready() else ("running" if service.running() else "stopped")
        all_ready &= state == "ready"
        print(f"# {service.name}: {state} pid={service.pid} log={service.log_path}")
    _print_env(stack.env())
    return 0 if all_ready and stack.known() else 1


if __name__ == "__main__":
    sys.exit(main())
