"""Which adapters each profile runs on.

A profile turns `Settings` into the four stores behind the ports. Sources, transforms and
analytics never see which profile runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from fxcortex.core import AnalyticsStore, Cache, ChangeFeed, RateStore
from fxcortex.runtime.config import ConfigError, Settings


@attrs.frozen(kw_only=True)
class Stores:
    """The adapters one pipeline runs on."""

    rates: RateStore
    feed: ChangeFeed
    cache: Cache
    analytics: AnalyticsStore

    def close(self) -> None:
        """Close every store."""
        for store in (self.rates, self.feed, self.cache, self.analytics):
            store.close()


def embedded(settings: Settings) -> Stores:
    """SQLite (rates, change log, cache) and chDB, all under ``settings.home``."""
    from fxcortex.runtime.adapters.chdb import ChdbAnalyticsStore
    from fxcortex.runtime.adapters.sqlite import SqliteCache, SqliteChangeFeed, SqliteRateStore

    path = settings.rates_path
    return Stores(
        rates=SqliteRateStore(path),
        feed=SqliteChangeFeed(path),
        cache=SqliteCache(path),
        analytics=ChdbAnalyticsStore(settings.analytics_path),
    )


def distributed(settings: Settings) -> Stores:
    """PostgreSQL rates, Debezium events from Kafka, a Redis cache, a ClickHouse server.

    The change feed reads the connector's topic (``settings.rates_topic``) in the
    ``settings.analyzer_group`` consumer group. Without ``CLICKHOUSE_HOST`` the analytics go to
    the embedded chDB under ``settings.home`` (one analyzer process, nothing else to run).
    """
    try:
        from fxcortex.runtime.adapters import redis as redis_adapter
        from fxcortex.runtime.adapters.clickhouse import ClickHouseServerStore
        from fxcortex.runtime.adapters.kafka import KafkaChangeFeed
        from fxcortex.runtime.adapters.postgres import PostgresRateStore
    except ImportError as error:
        raise ConfigError(
            f"the distributed profile needs {error.name}: "
            "pip install 'fxcortex-runtime[distributed]'"
        ) from error
    from fxcortex.runtime.adapters.chdb import ChdbAnalyticsStore

    rates = PostgresRateStore(settings.database.conninfo)
    opened: list[Any] = [rates]
    try:
        feed = KafkaChangeFeed(
            settings.kafka_bootstrap_servers,
            settings.rates_topic,
            group_id=settings.analyzer_group,
        )
        opened.append(feed)
        analytics: AnalyticsStore = (
            ClickHouseServerStore(settings.clickhouse)
            if settings.clickhouse is not None
            else ChdbAnalyticsStore(settings.analytics_path)
        )
    except BaseException:
        for store in reversed(opened):
            store.close()
        raise
    return Stores(
        rates=rates,
        feed=feed,
        cache=redis_adapter.RedisCache(redis_adapter.connect(settings.redis)),
        analytics=analytics,
    )


PROFILES: dict[str, Callable[[Settings], Stores]] = {
    "embedded": embedded,
    "distributed": distributed,
}


def open_stores(settings: Settings) -> Stores:
    """The stores of ``settings.profile``, or a `ConfigError` naming the profiles available."""
    try:
        build = PROFILES[settings.profile]
    except KeyError:
        available = ", ".join(sorted(PROFILES))
        raise ConfigError(
            f"FXCORTEX_PROFILE={settings.profile!r} is not available in this version"
            f" (available: {available})"
        ) from None
    return build(settings)
