"""The typed errors of FX-Cortex.

Every error carries the context a user needs to act on it: which source, which plugin, which file
and line, which field. Catch `FxCortexError` to catch them all.
"""

from __future__ import annotations


class FxCortexError(Exception):
    """Base class of every error FX-Cortex raises on purpose."""


class InvalidValueError(FxCortexError, ValueError):
    """A value broke a model's contract: an unknown currency, a naive time, a non-positive rate.

    ``field`` names the attribute at fault when a validator knows it, so error paths can end in it.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class ConversionError(FxCortexError, ValueError):
    """Structuring data into a model failed; `errors` names each field path and what was wrong."""

    def __init__(self, target: str, errors: list[str]) -> None:
        self.target = target
        self.errors = errors
        super().__init__(f"cannot build {target}: " + "; ".join(errors))


class SourceError(FxCortexError):
    """A source could not produce quotes: the fetch failed or its payload is malformed.

    Nothing of a fetch that raised this is stored.
    """

    def __init__(self, source: str, reason: str, *, location: str | None = None) -> None:
        self.source = source
        self.reason = reason
        self.location = location
        where = f" at {location}" if location else ""
        super().__init__(f"source {source!r}{where}: {reason}")


class PluginError(FxCortexError):
    """A plugin failed to load, has a bad hook signature, or registered something invalid."""

    def __init__(self, plugin: str, reason: str) -> None:
        self.plugin = plugin
        self.reason = reason
        super().__init__(f"plugin {plugin!r}: {reason}")


class MissingExtraError(PluginError):
    """A plugin needs an optional dependency that is not installed; says which extra to install."""

    def __init__(self, plugin: str, distribution: str, extra: str, missing: str) -> None:
        self.distribution = distribution
        self.extra = extra
        self.missing = missing
        super().__init__(
            plugin,
            f"needs the optional module {missing!r}: pip install '{distribution}[{extra}]'",
        )


class DuplicateRegistrationError(PluginError):
    """Two plugins registered a component under the same name."""

    def __init__(self, kind: str, name: str, first: str, second: str) -> None:
        self.kind = kind
        self.name = name
        self.first = first
        self.second = second
        super().__init__(second, f"{kind} {name!r} is already registered by plugin {first!r}")


class UnknownComponentError(FxCortexError, LookupError):
    """A source, transform or analyzer name that no plugin registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        choices = ", ".join(sorted(known)) or "none"
        super().__init__(f"no {kind} named {name!r}; registered: {choices}")


class StoreError(FxCortexError):
    """A store (rates, analytics, cache) refused an operation; nothing of it was applied."""
