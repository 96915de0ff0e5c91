"""The distributed profile's cache and locks: Redis.

`RedisCache` is the `Cache` port: every key lives under a prefix (``fxcortex:``), reads are one
MGET, and a commit is one MULTI/EXEC, so all of its sets and deletes are visible together or not
at all. `RedisLock` is a lease on a name held by one holder, with an expiry, so a scheduler that
dies does not block its source for ever; releasing and renewing check the holder atomically
(Lua), so nobody releases a lock that has passed on to someone else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import redis as redis_lib
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from fxcortex.runtime.config import RedisSettings

log = logging.getLogger(__name__)

PREFIX = "fxcortex:"

# KEYS[1] lock, ARGV[1] holder, ARGV[2] ttl ms. Taken when free, or renewed when we hold it
# already (a lease of ours left over from a run whose release did not reach Redis).
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == false then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
elseif current == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def connect(settings: RedisSettings, *, timeout: float = 5.0) -> redis_lib.Redis:
    """A client that fails within ``timeout`` seconds when Redis is away, after two retries.

    Failing fast matters more than riding out an outage here: the ETL goes on without the cache.
    """
    return redis_lib.Redis(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        password=settings.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
    )


class RedisCache:
    """The `Cache` port on Redis: keys under ``prefix``, commits as MULTI/EXEC transactions."""

    def __init__(self, client: redis_lib.Redis, *, prefix: str = PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    @classmethod
    def open(cls, settings: RedisSettings) -> RedisCache:
        """A cache on the Redis of ``settings``."""
        return cls(connect(settings))

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored values of those keys that have one (one MGET)."""
        wanted = list(keys)
        if not wanted:
            return {}
        values: list[Any] = self.client.mget([self.prefix + key for key in wanted])
        return {key: value for key, value in zip(wanted, values, strict=True) if value is not None}

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Set and delete keys in one MULTI/EXEC: all of it is visible afterwards, or none."""
        removed = [self.prefix + key for key in deletes]
        if not puts and not removed:
            return
        with self.client.pipeline(transaction=True) as pipe:
            if puts:
                pipe.mset({self.prefix + key: value for key, value in puts.items()})
            if removed:
                pipe.delete(*removed)
            pipe.execute()

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()


class RedisLock:
    """A lease on ``name`` for ``holder`` that expires after ``ttl`` seconds unless renewed."""

    def __init__(
        self, client: redis_lib.Redis, name: str, holder: str, ttl: float, *, prefix: str = PREFIX
    ) -> None:
        self.client = client
        self.key = f"{prefix}lock:{name}"
        self.holder = holder
        self.ttl_ms = max(1, int(ttl * 1000))

    def acquire(self) -> bool:
        """Take the lease if it is free (or already ours); False when someone else holds it."""
        return bool(self.client.eval(_ACQUIRE, 1, self.key, self.holder, self.ttl_ms))

    def renew(self) -> bool:
        """Push the expiry out by ``ttl``; False when the lease is no longer ours."""
        return bool(self.client.eval(_RENEW, 1, self.key, self.holder, self.ttl_ms))

    def release(self) -> bool:
        """Give the lease up if it is still ours; False when it had expired or passed on."""
        return bool(self.client.eval(_RELEASE, 1, self.key, self.holder))

    def owner(self) -> str | None:
        """Who holds the lease now (None when nobody does)."""
        value: Any = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value


class RedisLease:
    """A held `RedisLock`; an unreachable Redis neither ends the run nor fails the release."""

    def __init__(self, lock: RedisLock) -> None:
        self.lock = lock

    def renew(self) -> bool:
        """Push the expiry out; False only when Redis says the lease has passed on."""
        try:
            return self.lock.renew()
        except redis_lib.RedisError as error:
            log.warning("cannot renew lock %s (%s): it expires by itself", self.lock.key, error)
            return True

    def release(self) -> None:
        """Give the lease up; when Redis is away it expires by itself after its ttl."""
        try:
            self.lock.release()
        except redis_lib.RedisError as error:
            log.warning("cannot release lock %s (%s): it expires by itself", self.lock.key, error)


class RedisLocks:
    """Source locks in Redis (``fxcortex:lock:source:NAME``), expiring after ``ttl`` seconds.

    While Redis is unreachable, ``fallback`` (a PostgreSQL advisory lock) takes over, so two
    schedulers still do not run one source at once, and the outage is logged loudly.
    """

    def __init__(
        self, client: redis_lib.Redis, holder: str, *, ttl: float = 60.0, fallback: Any = None
    ) -> None:
        self.client = client
        self.holder = holder
        self.ttl = ttl
        self.fallback = fallback

    def acquire(self, name: str) -> Any:
        """The lock on source ``name``, or None when another holder has it."""
        lock = RedisLock(self.client, f"source:{name}", self.holder, self.ttl)
        try:
            return RedisLease(lock) if lock.acquire() else None
        except redis_lib.RedisError as error:
            if self.fallback is None:
                raise
            log.error(
                "Redis UNAVAILABLE for the lock of %s (%s): using a PostgreSQL advisory lock"
                " instead",
                name,
                error,
            )
            return self.fallback.acquire(name)

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
