"""The container images of the distributed profile, in one place.

The testcontainers backend (``testcontainers_backend.py``) runs exactly these, and
``test_compose_config.py`` checks that ``compose/docker-compose.yml`` names the same ones (with
``${VAR:-default}`` resolved to its default), so the tests and the deployment cannot drift apart
silently. Change an image here and in compose/ together.
"""

from __future__ import annotations

POSTGRES_IMAGE = "postgres:16"
KAFKA_IMAGE = "apache/kafka:4.1.0"
DEBEZIUM_CONNECT_IMAGE = "quay.io/debezium/connect:3.1"
REDIS_IMAGE = "redis:7"
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:25.3"

#: compose service name -> the image it must run
COMPOSE_IMAGES = {
    "db": POSTGRES_IMAGE,
    "kafka": KAFKA_IMAGE,
    "connect": DEBEZIUM_CONNECT_IMAGE,
    "redis": REDIS_IMAGE,
    "clickhouse": CLICKHOUSE_IMAGE,
}
