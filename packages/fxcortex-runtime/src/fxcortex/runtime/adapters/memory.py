"""An in-process cache for tests, notebooks and one-shot runs: nothing survives the process."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class MemoryCache:
    """A dict behind the `Cache` port."""

    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored values of those keys that have one."""
        values = self._values
        return {key: values[key] for key in keys if key in values}

    def commit(self, puts: Mapping[str, bytes], deletes: Iterable[str] = ()) -> None:
        """Set and delete keys (atomic: nothing else runs in between)."""
        self._values.update(puts)
        for key in deletes:
            self._values.pop(key, None)

    def close(self) -> None:
        """Nothing to release."""
