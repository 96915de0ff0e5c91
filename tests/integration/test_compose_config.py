"""Static checks of compose/: the files parse and say what the deployment needs.

Pure file checks (no Docker engine runs where this project is developed, so the stack itself is
not started here): no service fixture is used, and
``pytest tests/integration/test_compose_config.py`` runs on its own in a moment.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from images import COMPOSE_IMAGES
from testcontainers_backend import CONNECT_TOPICS

COMPOSE = Path(__file__).resolve().parents[2] / "compose"
#: the Python services, built from compose/Dockerfile; every other service is a server
PYTHON_SERVICES = {"app", "scheduler", "analyzer"}
ENV_NAMES = (
    "DB_NAME",
    "DB_USER",
    "DB_PASSWORD",
    "REDIS_HOST",
    "CLICKHOUSE_HOST",
    "KAFKA_BOOTSTRAP_SERVERS",
    "CONNECT_URL",
)
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<default>[^}]*))?\}|(?P<bare>\w+))"
)


def compose_defaults(value: str) -> str:
    """``value`` as compose interpolates it with no variable set (``${VAR:-default}`` -> default).

    A variable without a default fails: the value would depend on the environment.
    """

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["op"] in (":-", "-"):
            return match["default"]
        raise AssertionError(f"{value!r}: ${{{match['name'] or match['bare']}}} has no default")

    return _VARIABLE.sub(replace, value)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    found = document.get("services")
    assert isinstance(found, dict) and found, "docker-compose.yml has no services"
    return found


@pytest.fixture(scope="module")
def connector() -> dict[str, Any]:
    document = json.loads((COMPOSE / "pg-connector.json").read_text())
    assert isinstance(document, dict)
    assert document.get("name"), "the connector has no name"
    config = document["config"]
    assert isinstance(config, dict)
    return config


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for number, line in enumerate((COMPOSE / ".env.example").read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, equals, value = line.partition("=")
        assert equals, f".env.example line {number} is not NAME=value: {line!r}"
        values[key.strip()] = value.strip()
    return values


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's ``environment``, whether written as a mapping or as a list."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


def command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command") or []
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


# --------------------------------------------------------------------------- docker-compose.yml
def test_compose_has_the_designs_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(COMPOSE_IMAGES) | PYTHON_SERVICES == set(services)


def test_every_server_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    built = {name for name, service in services.items() if "build" in service}
    assert built == PYTHON_SERVICES, "the Python services are the ones built from the Dockerfile"
    for name, service in services.items():
        if name in PYTHON_SERVICES:
            continue
        check = service.get("healthcheck")
        assert isinstance(check, dict), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        test = check.get("test")
        assert test, f"{name}'s healthcheck has no test"
        if isinstance(test, list):
            assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"{name}: {test}"


def test_depends_on_waits_for_healthy_servers(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for needed, condition in (service.get("depends_on") or {}).items():
            assert needed in services, f"{name} depends on an unknown service {needed}"
            assert condition == {"condition": "service_healthy"}, f"{name} -> {needed}"


def test_db_runs_with_logical_replication(services: dict[str, dict[str, Any]]) -> None:
    args = command(services["db"])
    settings = dict(args[i + 1].split("=", 1) for i, arg in enumerate(args[:-1]) if arg == "-c")
    assert settings.get("wal_level") == "logical", args
    assert int(settings.get("max_replication_slots", "0")) > 0, args
    assert int(settings.get("max_wal_senders", "0")) > 0, args


@pytest.mark.parametrize("name", sorted(COMPOSE_IMAGES))
def test_images_are_the_ones_the_testcontainers_backend_runs(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    image = compose_defaults(str(services[name]["image"]))
    assert image == COMPOSE_IMAGES[name], (
        f"compose runs {image} for {name}, the testcontainers backend {COMPOSE_IMAGES[name]} "
        "(tests/integration/images.py): change both together"
    )


def test_compose_defaults_reads_compose_interpolation() -> None:
    assert compose_defaults("a:${V:-3.1}") == "a:3.1"
    assert compose_defaults("a:${V-x}$$") == "a:x$"
    with pytest.raises(AssertionError, match="no default"):
        compose_defaults("a:${V}")


def test_connect_finds_kafka_and_names_its_topics(services: dict[str, dict[str, Any]]) -> None:
    env = environment(services["connect"])
    for server in env["BOOTSTRAP_SERVERS"].split(","):
        host = server.rsplit(":", 1)[0]
        assert host in services, f"connect's BOOTSTRAP_SERVERS names {host}, not a service"
    assert env.get("GROUP_ID")
    for key in CONNECT_TOPICS:
        assert env.get(key), f"connect sets no {key}"


# --------------------------------------------------------------------------- pg-connector.json
def test_connector_reads_pgoutput_and_keeps_decimals_exact(connector: dict[str, Any]) -> None:
    assert connector["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert connector["plugin.name"] == "pgoutput"
    assert connector["decimal.handling.mode"] == "string"


def test_connector_keys_rates_by_base_and_quote(connector: dict[str, Any]) -> None:
    keys = {}
    for entry in connector["message.key.columns"].split(";"):
        table, _, columns = entry.strip().rpartition(":")
        keys[table] = [column.strip() for column in columns.split(",")]
    keyed = [table for table, columns in keys.items() if columns == ["base", "quote"]]
    assert keyed, f"no table keyed on base,quote: {keys}"
    included = {t.strip() for t in connector["table.include.list"].split(",")}
    assert set(keyed) <= included, (keyed, included)


def test_connector_sends_bare_json_and_heartbeats(connector: dict[str, Any]) -> None:
    json_converter = "org.apache.kafka.connect.json.JsonConverter"
    for side in ("key", "value"):
        assert connector[f"{side}.converter"] == json_converter
        assert connector[f"{side}.converter.schemas.enable"] == "false"
    assert int(connector["heartbeat.interval.ms"]) > 0


def test_connector_reaches_the_compose_database(
    connector: dict[str, Any], services: dict[str, dict[str, Any]], env_example: dict[str, str]
) -> None:
    assert connector["database.hostname"] in services
    assert connector["database.hostname"] == "db"
    assert connector["database.port"] == "5432"
    assert connector["database.dbname"] == env_example["DB_NAME"]
    assert connector["database.user"] == env_example["DB_USER"]


# --------------------------------------------------------------------------- .env.example
def test_env_example_has_the_designs_names(env_example: dict[str, str]) -> None:
    missing = [name for name in ENV_NAMES if not env_example.get(name)]
    assert not missing, f"compose/.env.example lacks {missing}"
