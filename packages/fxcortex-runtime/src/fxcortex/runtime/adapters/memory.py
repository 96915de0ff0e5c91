"""An in-process cache for tests, notebooks and one-shot runs: nothing survives the process."""

from fxcortex.core.state import MemoryCache

__all__ = ["MemoryCache"]
