"""The local and external backends (the testcontainers one is in ``testcontainers_backend.py``).

See ``conftest.py`` for what each backend is and how one is chosen.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

import local as local_services  # services/local.py, put on sys.path by conftest.py
from service_handles import HANDLE_TYPES, BackendUnavailable, ServiceHandle


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
        "clickhouse": ("CLICKHOUSE_HOST", "CLICKHOUSE_PORT"),
    }
    optional: ClassVar[dict[str, tuple[str, ...]]] = {
        "clickhouse": ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"),
    }
    #: the database as Kafka Connect reaches it, when that differs from DB_HOST / DB_PORT
    connect_database: ClassVar[dict[str, str]] = {
        "DB_HOST": "CONNECT_DB_HOST",
        "DB_PORT": "CONNECT_DB_PORT",
    }

    def service(self, name: str) -> ServiceHandle:
        missing = [key for key in self.required[name] if not os.environ.get(key)]
        if missing:
            raise BackendUnavailable(
                f"external backend: {name} needs the environment variables {', '.join(missing)} "
                '(e.g. `set -a; eval "$(python services/local.py env)"; set +a`)'
            )
        env = {key: os.environ[key] for key in self.required[name]}
        env.update({k: os.environ[k] for k in self.optional.get(name, ()) if k in os.environ})
        network_env = dict(env)
        if name == "postgres":
            for key, override in self.connect_database.items():
                network_env[key] = os.environ.get(override) or env[key]

        def cannot(*_: object) -> None:
            raise BackendUnavailable(
                f"external backend: {name} runs outside this test session and cannot be killed "
                'or restarted from here; deselect these tests with -m "not process_control"'
            )

        return HANDLE_TYPES[name](
            name=name,
            env=env,
            network_env=network_env,
            _kill=cannot,
            _restart=cannot,
            _log_tail=lambda _lines: "(external backend: no log available)",
            _ensure_running=lambda: None,
        )

    def close(self, session_failed: bool) -> str | None:
        return None
