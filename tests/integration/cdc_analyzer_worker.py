"""The analyzer service on a test's topic, Redis prefix and chDB folder (run as a process).

With ``CLICKHOUSE_HOST`` (and ``CLICKHOUSE_PORT``, ``CLICKHOUSE_DATABASE``) in the environment the
analytics go to that ClickHouse server instead of chDB.

``python cdc_analyzer_worker.py HOME TOPIC GROUP REDIS_HOST REDIS_PORT PREFIX BATCH [--until-idle]``
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from fxcortex.core import make_plugin_manager
from fxcortex.runtime.adapters import redis as redis_adapter
from fxcortex.runtime.adapters.chdb import ChdbAnalyticsStore
from fxcortex.runtime.adapters.clickhouse import ClickHouseServerStore
from fxcortex.runtime.adapters.kafka import KafkaChangeFeed
from fxcortex.runtime.adapters.postgres import PostgresRateStore
from fxcortex.runtime.cli_analyzer import run_service
from fxcortex.runtime.config import RedisSettings, Settings
from fxcortex.runtime.pipeline import Pipeline
from fxcortex.runtime.profiles import Stores


def main(argv: list[str]) -> None:
    home, topic, group, redis_host, redis_port, prefix, batch = argv[:7]
    settings = Settings.from_env()
    settings = Settings(
        profile="distributed",
        home=Path(home),
        database=settings.database,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        clickhouse=settings.clickhouse,
    )
    feed = KafkaChangeFeed(
        settings.kafka_bootstrap_servers,
        topic,
        group_id=group,
        consumer_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    stores = Stores(
        rates=PostgresRateStore(settings.database.conninfo),
        feed=feed,
        cache=redis_adapter.RedisCache(
            redis_adapter.connect(RedisSettings(host=redis_host, port=int(redis_port))),
            prefix=prefix,
        ),
        analytics=(
            ChdbAnalyticsStore(settings.analytics_path)
            if settings.clickhouse is None
            else ClickHouseServerStore(settings.clickhouse)
        ),
    )
    with Pipeline(settings, make_plugin_manager(), stores) as pipeline:
        print("ready", flush=True)
        if "--until-idle" in argv:
            idle = 0
            while idle < 3:
                result = pipeline.analyze(batch_size=int(batch), max_batches=1)
                caught_up = feed.assigned() > 0 and pipeline.pending() == 0
                idle = idle + 1 if result.changes == 0 and caught_up else 0
                print(f"batch {result.changes}", flush=True)
        else:
            run_service(pipeline, threading.Event(), batch_size=int(batch))


if __name__ == "__main__":
    main(sys.argv[1:])
