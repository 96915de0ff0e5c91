"""Analyzer state between batches, and the smallest `Cache`.

`BufferedState` is an analyzer's view of the cache for one batch: reads see the batch's own
writes, and nothing reaches the cache until the runtime commits the batch (after its rows landed).
The runtime and the test harness in `fxcortex.core.testing` share it, so an analytic is tested
with the state semantics it runs with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

import attrs

from fxcortex.core.ports import Cache


class MemoryCache:
    """A dict behind the `Cache` port: for tests, notebooks and one-shot runs."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored values of those keys that have one."""
        values = self.values
        return {key: values[key] for key in keys if key in values}

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Set and delete keys (atomic: nothing else runs in between)."""
        self.values.update(puts)
        for key in deletes:
            self.values.pop(key, None)

    def close(self) -> None:
        """Nothing to release."""


class BufferedState:
    """One analyzer's keys in the cache (prefixed by its name), buffered for one batch."""

    def __init__(self, cache: Cache, namespace: str) -> None:
        self._cache = cache
        self._prefix = f"{namespace}:"
        self.puts: dict[str, bytes] = {}
        self.deletes: set[str] = set()

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The values of those keys that have one, this batch's puts included."""
        found: dict[str, bytes] = {}
        missing = []
        for key in keys:
            full = self._prefix + key
            if full in self.puts:
                found[key] = self.puts[full]
            elif full not in self.deletes:
                missing.append(full)
        cut = len(self._prefix)
        found.update({key[cut:]: value for key, value in self._cache.get_many(missing).items()})
        return found

    def put(self, key: str, value: bytes) -> None:
        """Set a key for this batch."""
        full = self._prefix + key
        self.puts[full] = value
        self.deletes.discard(full)

    def delete(self, key: str) -> None:
        """Forget a key when the batch commits."""
        full = self._prefix + key
        self.puts.pop(full, None)
        self.deletes.add(full)

    def commit(self) -> None:
        """Write the batch's puts and deletes to the cache in one atomic step."""
        self._cache.commit(self.puts, self.deletes)


@attrs.define
class BatchContext:
    """The `AnalyzerContext` of one batch: the analyzer's state and the sources' intervals."""

    state: BufferedState
    intervals: Mapping[str, timedelta]

    def observation_interval(self, source: str) -> timedelta | None:
        """The declared observation interval of a source, None when it is not installed."""
        return self.intervals.get(source)
