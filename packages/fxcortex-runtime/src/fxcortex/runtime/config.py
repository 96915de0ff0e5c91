"""Settings from the environment.

=========================  ================================================================
variable                   meaning (default)
=========================  ================================================================
``FXCORTEX_PROFILE``       ``embedded`` (default): no servers, everything under the home
``FXCORTEX_HOME``          where the embedded profile keeps its files
                           (``$XDG_DATA_HOME/fxcortex``, else ``~/.local/share/fxcortex``)
``FXCORTEX_BATCH_SIZE``    changes per analyzer batch (50000)
``DB_HOST`` ``DB_PORT``    the distributed profile's PostgreSQL (``localhost``, ``5432``)
``DB_NAME`` ``DB_USER``    its database and user (``fxcortex``, ``fxcortex``)
``DB_PASSWORD``            its password (none: libpq's ``PGPASSWORD`` / ``~/.pgpass`` apply)
``REDIS_HOST``             the distributed profile's Redis (``localhost``)
``REDIS_PORT``             its port (6379); ``REDIS_DB`` (0), ``REDIS_PASSWORD`` (none)
``KAFKA_BOOTSTRAP_SERVERS`` the distributed profile's Kafka (``localhost:9092``)
``FXCORTEX_RATES_TOPIC``   the Debezium topic of the rates table (``fxcortex.fxcortex.rates``)
``FXCORTEX_ANALYZER_GROUP`` the analyzers' Kafka consumer group (``fxcortex-analyzer``)
``CONNECT_URL``            its Kafka Connect REST API (``http://localhost:8083``)
``CLICKHOUSE_HOST``        the distributed profile's ClickHouse server (none: analytics go to
                           the embedded chDB under the home)
``CLICKHOUSE_PORT``        its HTTP port (8123); ``CLICKHOUSE_USER`` (``default``),
                           ``CLICKHOUSE_PASSWORD`` (none), ``CLICKHOUSE_DATABASE``
                           (``fxcortex``), ``CLICKHOUSE_SECURE`` (``1`` for HTTPS)
=========================  ================================================================

Plugins read ``FXCORTEX_DISABLED_PLUGINS`` and ``FXCORTEX_TRACE_PLUGINS`` (see
`fxcortex.core.plugins`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from fxcortex.core import FxCortexError

Profile = Literal["embedded", "distributed"]
PROFILES: tuple[Profile, ...] = ("embedded", "distributed")


class ConfigError(FxCortexError):
    """A setting is missing or malformed; the message names the variable."""


def default_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_DATA_HOME/fxcortex``, else ``~/.local/share/fxcortex``."""
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "fxcortex"


def _libpq_value(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


@attrs.frozen(kw_only=True)
class DatabaseSettings:
    """Where the distributed profile's PostgreSQL is (the seed's ``DB_*`` names)."""

    host: str = "localhost"
    port: int = 5432
    name: str = "fxcortex"
    user: str = "fxcortex"
    password: str = attrs.field(default="", repr=False)

    @property
    def conninfo(self) -> str:
        """A libpq connection string; without a password libpq's own lookup applies."""
        parts = {"host": self.host, "port": str(self.port), "dbname": self.name, "user": self.user}
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{key}={_libpq_value(value)}" for key, value in parts.items())

    def __str__(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"


@attrs.frozen(kw_only=True)
class RedisSettings:
    """Where the distributed profile's Redis is (the seed's ``REDIS_*`` names)."""

    host: str = "localhost"
    port: int = 6379
    db: int = 0
    password: str | None = attrs.field(default=None, repr=False)

    def __str__(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"


def _port(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or str(default)
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a port number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"{name}={port} is not a port number (1-65535)")
    return port


@attrs.frozen(kw_only=True)
class ClickHouseSettings:
    """Where the distributed profile's ClickHouse server is (the seed's ``CLICKHOUSE_*`` names)."""

    host: str
    port: int = 8123
    user: str = "default"
    password: str = attrs.field(default="", repr=False)
    database: str = "fxcortex"
    secure: bool = False

    def __str__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"clickhouse {scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


def _clickhouse(environ: Mapping[str, str]) -> ClickHouseSettings | None:
    host = environ.get("CLICKHOUSE_HOST")
    if not host:
        return None
    database = environ.get("CLICKHOUSE_DATABASE") or "fxcortex"
    if not database.replace("_", "").isalnum():
        raise ConfigError(f"CLICKHOUSE_DATABASE={database!r}: use letters, digits and _ only")
    secure = (environ.get("CLICKHOUSE_SECURE") or "0").lower()
    if secure not in ("0", "1", "true", "false"):
        raise ConfigError(f"CLICKHOUSE_SECURE={secure!r}: use 1 or 0")
    return ClickHouseSettings(
        host=host,
        port=_port(environ, "CLICKHOUSE_PORT", 8123),
        user=environ.get("CLICKHOUSE_USER") or "default",
        password=environ.get("CLICKHOUSE_PASSWORD", ""),
        database=database,
        secure=secure in ("1", "true"),
    )


@attrs.frozen(kw_only=True)
class Settings:
    """Everything the runtime needs to build a pipeline."""

    profile: Profile = "embedded"
    home: Path = attrs.field(factory=default_home, converter=Path)
    batch_size: int = 50_000
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    kafka_bootstrap_servers: str = "localhost:9092"
    rates_topic: str = "fxcortex.fxcortex.rates"
    analyzer_group: str = "fxcortex-analyzer"
    connect_url: str = "http://localhost:8083"
    clickhouse: ClickHouseSettings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the ``FXCORTEX_*`` variables, naming any that is malformed."""
        profile = environ.get("FXCORTEX_PROFILE", "embedded")
        if profile not in PROFILES:
            raise ConfigError(f"FXCORTEX_PROFILE={profile!r}: choose one of {', '.join(PROFILES)}")
        raw_batch = environ.get("FXCORTEX_BATCH_SIZE", "50000")
        try:
            batch_size = int(raw_batch)
        except ValueError:
            raise ConfigError(f"FXCORTEX_BATCH_SIZE={raw_batch!r} is not a whole number") from None
        if batch_size < 1:
            raise ConfigError(f"FXCORTEX_BATCH_SIZE={batch_size} must be at least 1")
        home = environ.get("FXCORTEX_HOME")
        raw_redis_db = environ.get("REDIS_DB") or "0"
        if not raw_redis_db.isdigit():
            raise ConfigError(f"REDIS_DB={raw_redis_db!r} is not a database number")
        return cls(
            profile=profile,  # checked against PROFILES above
            home=Path(home).expanduser() if home else default_home(environ),
            batch_size=batch_size,
            database=DatabaseSettings(
                host=environ.get("DB_HOST") or "localhost",
                port=_port(environ, "DB_PORT", 5432),
                name=environ.get("DB_NAME") or "fxcortex",
                user=environ.get("DB_USER") or "fxcortex",
                password=environ.get("DB_PASSWORD", ""),
            ),
            redis=RedisSettings(
                host=environ.get("REDIS_HOST") or "localhost",
                port=_port(environ, "REDIS_PORT", 6379),
                db=int(raw_redis_db),
                password=environ.get("REDIS_PASSWORD") or None,
            ),
            kafka_bootstrap_servers=environ.get("KAFKA_BOOTSTRAP_SERVERS") or "localhost:9092",
            rates_topic=environ.get("FXCORTEX_RATES_TOPIC") or "fxcortex.fxcortex.rates",
            analyzer_group=environ.get("FXCORTEX_ANALYZER_GROUP") or "fxcortex-analyzer",
            connect_url=(environ.get("CONNECT_URL") or "http://localhost:8083").rstrip("/"),
            clickhouse=_clickhouse(environ),
        )

    @property
    def rates_path(self) -> Path:
        """The embedded SQLite file: rates, change log, checkpoints and cache."""
        return self.home / "rates.sqlite"

    @property
    def analytics_path(self) -> Path:
        """The embedded chDB data folder."""
        return self.home / "analytics"
