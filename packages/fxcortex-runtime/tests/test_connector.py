"""The connector config templated from the env, and the REST calls of ``fxcortex connector``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from fxcortex.runtime.cli import main
from fxcortex.runtime.config import Settings
from fxcortex.runtime.connector import ConnectClient, ConnectorError, connector_config

ROOT = Path(__file__).resolve().parents[3]


def _env_example() -> dict[str, str]:
    env = {}
    for line in (ROOT / "compose" / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def test_config_from_the_env_example_is_the_compose_connector_json() -> None:
    expected = json.loads((ROOT / "compose" / "pg-connector.json").read_text())
    assert connector_config(Settings.from_env(_env_example())) == expected


def test_settings_read_kafka_and_connect_addresses() -> None:
    settings = Settings.from_env(_env_example())
    assert settings.kafka_bootstrap_servers == "kafka:9092"
    assert settings.connect_url == "http://connect:8083"
    assert Settings.from_env({}).connect_url == "http://localhost:8083"


def test_schemas_flag_embeds_schemas() -> None:
    config = connector_config(Settings(), schemas=True)["config"]
    assert config["value.converter.schemas.enable"] == "true"
    assert config["key.converter.schemas.enable"] == "true"


def _fake_connect(calls: list[tuple[str, str]], statuses: dict[str, int]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, request.url.path))
        code = statuses.get(request.method, 200)
        body: Any = {"name": "fxcortex-rates", "connector": {"state": "RUNNING"}, "tasks": []}
        if code >= 400:
            body = {"error_code": code, "message": "nope"}
        return httpx.Response(code, json=body)

    return httpx.MockTransport(handle)


def test_client_register_status_delete() -> None:
    calls: list[tuple[str, str]] = []
    client = ConnectClient("http://connect:8083/", transport=_fake_connect(calls, {"PUT": 201}))
    client.register(connector_config(Settings()))
    assert client.status() == {
        "name": "fxcortex-rates",
        "connector": {"state": "RUNNING"},
        "tasks": [],
    }
    assert client.delete() is True
    assert calls == [
        ("PUT", "/connectors/fxcortex-rates/config"),
        ("GET", "/connectors/fxcortex-rates/status"),
        ("DELETE", "/connectors/fxcortex-rates"),
    ]


def test_client_missing_connector_and_errors() -> None:
    calls: list[tuple[str, str]] = []
    client = ConnectClient("http://c", transport=_fake_connect(calls, {"GET": 404, "DELETE": 404}))
    assert client.status() is None
    assert client.delete() is False
    failing = ConnectClient("http://c", transport=_fake_connect(calls, {"PUT": 400}))
    with pytest.raises(ConnectorError, match="HTTP 400: nope"):
        failing.register(connector_config(Settings()))


def test_cli_prints_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in _env_example().items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(main, ["connector", "register", "--print"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["config"]["database.hostname"] == "db"


def test_cli_reports_an_unreachable_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECT_URL", "http://127.0.0.1:9")
    result = CliRunner().invoke(main, ["connector", "status"])
    assert result.exit_code == 1
    assert "Kafka Connect at http://127.0.0.1:9" in result.output
