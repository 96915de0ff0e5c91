"""ClickHouse server settings from the environment, and the statements the server store sends."""

from __future__ import annotations

import pytest

from fxcortex.core import Column, TableSpec
from fxcortex.runtime.adapters.clickhouse import input_type, insert_statement
from fxcortex.runtime.config import ConfigError, Settings


def test_without_a_clickhouse_host_the_analytics_stay_embedded() -> None:
    assert Settings.from_env({}).clickhouse is None


def test_the_seed_names_configure_the_server() -> None:
    settings = Settings.from_env(
        {
            "CLICKHOUSE_HOST": "clickhouse",
            "CLICKHOUSE_PORT": "18123",
            "CLICKHOUSE_USER": "fxcortex",
            "CLICKHOUSE_PASSWORD": "secret",
            "CLICKHOUSE_DATABASE": "fx_prod",
            "CLICKHOUSE_SECURE": "1",
        }
    ).clickhouse
    assert settings is not None
    assert (settings.host, settings.port, settings.user, settings.database, settings.secure) == (
        "clickhouse",
        18123,
        "fxcortex",
        "fx_prod",
        True,
    )
    assert "secret" not in repr(settings) and "secret" not in str(settings)
    assert str(settings) == "clickhouse https://fxcortex@clickhouse:18123/fx_prod"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("CLICKHOUSE_PORT", "http", "CLICKHOUSE_PORT='http' is not a port number"),
        ("CLICKHOUSE_DATABASE", "fx; DROP", "CLICKHOUSE_DATABASE='fx; DROP'"),
        ("CLICKHOUSE_SECURE", "maybe", "CLICKHOUSE_SECURE='maybe'"),
    ],
)
def test_malformed_settings_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.from_env({"CLICKHOUSE_HOST": "ch", variable: value})


def test_columns_travel_as_plain_types_and_are_cast_on_the_server() -> None:
    assert input_type("DateTime64(6, 'UTC')") == "Int64"
    assert input_type("Decimal(38, 18)") == "String"
    assert input_type("Nullable(Decimal(38, 18))") == "Nullable(String)"
    assert input_type("LowCardinality(String)") == "String"
    assert input_type("Nullable(Float64)") == "Nullable(Float64)"
    spec = TableSpec(
        name="bars",
        description="bars",
        columns=(
            Column(name="at", type="DateTime64(6, 'UTC')", description="when"),
            Column(name="close", type="Decimal(38, 18)", description="close"),
        ),
        key=("at",),
    )
    statement = insert_statement(spec, "fx")
    assert statement.startswith(
        "INSERT INTO fx.bars_versions SETTINGS optimize_on_insert = 0 SELECT "
    )
    assert "fromUnixTimestamp64Micro(`at`, 'UTC')" in statement
    assert "CAST(`close`, 'Decimal(38, 18)')" in statement
    assert statement.endswith(
        "FROM input('`at` Int64, `close` String, `_version` UInt64, `_deleted` UInt8')"
        " FORMAT ArrowStream"
    )
