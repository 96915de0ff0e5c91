"""ETL metadata in the cache, and a cache that lets the ETL go on while its server is away.

Per source the cache holds a watermark (the newest observation time loaded), the last run's
state, and whatever HTTP validators (ETag, Last-Modified) the source staged. None of it is data:
the rate store is the truth, and the watermark can always be read back from it. So when Redis is
unreachable a fetch must not fail: `ResilientCache` answers reads with nothing (a source then
simply fetches in full), queues writes, logs the outage loudly, and writes the queue out as soon
as Redis answers again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from fxcortex.core import Cache

log = logging.getLogger(__name__)


def watermark_key(source: str) -> str:
    """The key of a source's watermark: the newest observation time loaded (ISO 8601)."""
    return f"etl:{source}:watermark"


def last_run_key(source: str) -> str:
    """The key of a source's last run state (JSON)."""
    return f"etl:{source}:last_run"


def encode_watermark(moment: datetime) -> bytes:
    """A watermark as stored."""
    return moment.isoformat().encode()


def decode_watermark(value: bytes | None) -> datetime | None:
    """A stored watermark (None when absent or unreadable: it is only a hint)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.decode())
    except (UnicodeDecodeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None


def encode_last_run(state: Mapping[str, Any]) -> bytes:
    """A last-run state as stored."""
    return json.dumps(state, sort_keys=True, default=str).encode()


class ResilientCache:
    """A `Cache` that goes on without its server: reads miss, writes wait for it to come back.

    ``errors`` are the exceptions that mean "the server is unreachable" (``redis.RedisError``);
    anything else still raises. Queued writes are merged in order (a later put or delete of a key
    replaces an earlier one) and written in one atomic commit when the server answers again.
    """

    def __init__(
        self, inner: Cache, errors: tuple[type[BaseException], ...], *, name: str = "cache"
    ) -> None:
        self.inner = inner
        self.errors = errors
        self.name = name
        self.available = True
        self._puts: dict[str, bytes] = {}
        self._deletes: set[str] = set()
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """How many key writes wait for the server."""
        return len(self._puts) + len(self._deletes)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored values (with queued writes applied); nothing while the server is away."""
        wanted = list(keys)
        found: dict[str, bytes] = {}
        with self._lock:
            try:
                self._flush()
                found = self.inner.get_many(wanted)
            except self.errors as error:
                self._went_away(error, "reading")
            for key in wanted:
                if key in self._puts:
                    found[key] = self._puts[key]
                elif key in self._deletes:
                    found.pop(key, None)
        return found

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Commit now, or queue the writes until the server answers again."""
        with self._lock:
            for key in deletes:
                self._puts.pop(key, None)
                self._deletes.add(key)
            for key, value in puts.items():
                self._deletes.discard(key)
                self._puts[key] = value
            try:
                self._flush()
            except self.errors as error:
                self._went_away(error, "writing")

    def catch_up(self) -> bool:
        """Write what is queued if the server answers; True when nothing is left queued."""
        with self._lock:
            try:
                self._flush()
            except self.errors as error:
                self._went_away(error, "catching up")
                return False
            return True

    def _flush(self) -> None:
        if self._puts or self._deletes:
            count = self.pending
            self.inner.commit(dict(self._puts), sorted(self._deletes))
            self._puts.clear()
            self._deletes.clear()
            if not self.available:
                log.warning("%s is back: %d queued metadata writes caught up", self.name, count)
        elif not self.available:
            self.inner.get_many(["etl:probe"])  # nothing to write: ask, to know it answers
            log.warning("%s is back", self.name)
        self.available = True

    def _went_away(self, error: BaseException, doing: str) -> None:
        if self.available:
            log.error(
                "%s UNAVAILABLE while %s (%s: %s): the ETL goes on without it; metadata writes"
                " are queued until it answers again",
                self.name,
                doing,
                type(error).__name__,
                error,
            )
        else:
            log.warning("%s still unavailable while %s: %s", self.name, doing, error)
        self.available = False

    def close(self) -> None:
        """Try once more to write what is queued, then close the inner cache."""
        if self.pending and not self.catch_up():
            log.error(
                "%s: %d metadata writes lost on close (the rate store has the data; the"
                " watermark is read back from it)",
                self.name,
                self.pending,
            )
        with contextlib.suppress(*self.errors):
            self.inner.close()
