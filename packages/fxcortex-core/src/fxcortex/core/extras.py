"""Optional dependencies of plugins, declared so the CLI can say what is missing.

A source that needs a package not every user wants (a WebSocket client, a Parquet reader) declares
an `Extra`; it still registers, `fxcortex sources` shows whether its extra is installed, and using
it without the extra raises `MissingExtraError` saying which ``pip install`` fixes it.
"""

from __future__ import annotations

import importlib.util

import attrs

from fxcortex.core.errors import MissingExtraError


@attrs.frozen(kw_only=True)
class Extra:
    """An optional-dependency group: ``pip install 'distribution[name]'`` brings ``modules``."""

    distribution: str
    name: str
    modules: tuple[str, ...]

    def missing(self) -> list[str]:
        """The modules of this extra that cannot be imported."""
        return [module for module in self.modules if importlib.util.find_spec(module) is None]

    def installed(self) -> bool:
        """Whether every module of the extra can be imported."""
        return not self.missing()

    def require(self, plugin: str) -> None:
        """Raise `MissingExtraError` naming the extra unless it is installed."""
        missing = self.missing()
        if missing:
            raise MissingExtraError(plugin, self.distribution, self.name, missing[0])
