"""Locks per source, so two schedulers (or a scheduler and a backfill) never run one source at once.

The distributed profile locks in Redis with an expiry (`fxcortex.runtime.adapters.redis`),
falling back to a PostgreSQL advisory lock while Redis is away; the embedded profile, which has no
server, locks a file per source (`FileLocks`), which the operating system releases when its holder
dies.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import uuid
from pathlib import Path
from typing import IO, Protocol


def make_holder(role: str = "scheduler") -> str:
    """A name for one lock holder: host, process and a random part (unique per instance)."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease(Protocol):
    """A held lock."""

    def renew(self) -> bool:
        """Keep holding it; False when it was lost (expired and taken, or its server went away)."""
        ...

    def release(self) -> None:
        """Give it up (best effort: an unreachable server lets it expire)."""
        ...


class Locks(Protocol):
    """Takes locks by name for one holder."""

    holder: str

    def acquire(self, name: str) -> Lease | None:
        """The lock ``name`` if nobody else holds it, else None (never waits)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class _FileLease:
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle

    def renew(self) -> bool:
        return not self.handle.closed

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


class FileLocks:
    """One lock file per name under ``folder`` (``flock``: released by the OS if we die)."""

    def __init__(self, folder: Path, holder: str) -> None:
        self.folder = folder
        self.holder = holder

    def acquire(self, name: str) -> _FileLease | None:
        """The lock ``name`` if no other process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        handle = (self.folder / f"{safe}.lock").open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        handle.truncate(0)
        handle.write(self.holder.encode())
        handle.flush()
        return _FileLease(handle)

    def close(self) -> None:
        """Nothing to close."""
