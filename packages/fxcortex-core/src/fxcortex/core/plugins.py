"""Building the plugin manager and the registry of sources, transforms and analyzers.

Nothing happens at import time: `make_plugin_manager` adds the specs, loads the ``fxcortex``
entry-point group (built-in plugins register there exactly as third-party ones do) and checks every
implementation; `Registry.collect` then asks each plugin to register its components.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar

import attrs
import pluggy

from fxcortex.core import hookspecs
from fxcortex.core.errors import (
    DuplicateRegistrationError,
    PluginError,
    UnknownComponentError,
)
from fxcortex.core.ports import Analyzer, Source, Transform

ENTRY_POINT_GROUP = "fxcortex"
DISABLED_PLUGINS_ENV = "FXCORTEX_DISABLED_PLUGINS"
TRACE_PLUGINS_ENV = "FXCORTEX_TRACE_PLUGINS"

log = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class PluginInfo:
    """Where a loaded plugin came from."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, remembering which distribution each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.infos: dict[str, PluginInfo] = {}

    def register_plugin(self, plugin: object, info: PluginInfo) -> None:
        """Register ``plugin`` under ``info.name``; a bad hook signature names the plugin."""
        try:
            self.register(plugin, name=info.name)
        except pluggy.PluginValidationError as error:
            raise PluginError(info.name, f"invalid hook implementation: {error}") from error
        except ValueError as error:  # pluggy: the name or object is registered already
            raise PluginError(info.name, str(error)) from error
        self.infos[info.name] = info


def disabled_plugin_names(environ: Mapping[str, str] = os.environ) -> set[str]:
    """Plugin names listed (comma-separated) in ``FXCORTEX_DISABLED_PLUGINS``."""
    raw = environ.get(DISABLED_PLUGINS_ENV, "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def make_plugin_manager(
    *,
    plugins: Iterable[tuple[str, object]] = (),
    load_entry_points: bool = True,
    environ: Mapping[str, str] = os.environ,
) -> PluginManager:
    """A plugin manager with the specs, the ``fxcortex`` entry points and ``plugins`` registered.

    ``plugins`` are extra (name, plugin) pairs, for tests and notebooks. Names in
    ``FXCORTEX_DISABLED_PLUGINS`` are neither imported nor registered. A plugin that fails to
    import raises `PluginError` naming it, with the import error chained.
    """
    manager = PluginManager()
    manager.add_hookspecs(hookspecs)
    disabled = disabled_plugin_names(environ)
    for name in disabled:
        manager.set_blocked(name)

    if load_entry_points:
        for entry_point in sorted(
            importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name
        ):
            if entry_point.name in disabled or manager.has_plugin(entry_point.name):
                continue
            distribution = entry_point.dist
            info = PluginInfo(
                name=entry_point.name,
                module=entry_point.value,
                distribution=distribution.name if distribution else None,
                version=distribution.version if distribution else None,
            )
            try:
                plugin = entry_point.load()
            except Exception as error:
                raise PluginError(
                    entry_point.name,
                    f"failed to import {entry_point.value!r}"
                    f" (from {info.distribution or 'an unknown distribution'}): {error}",
                ) from error
            manager.register_plugin(plugin, info)

    for name, plugin in plugins:
        if name in disabled:
            continue
        manager.register_plugin(plugin, PluginInfo(name=name, module=_module_of(plugin)))

    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        raise PluginError(_plugin_name(manager, error.plugin), str(error)) from error

    if environ.get(TRACE_PLUGINS_ENV):
        manager.trace.root.setwriter(sys.stderr.write)
        manager.enable_tracing()
    log.debug("registered %d plugins", len(manager.infos))
    return manager


def _module_of(plugin: object) -> str:
    return getattr(plugin, "__name__", None) or type(plugin).__module__


def _plugin_name(manager: pluggy.PluginManager, plugin: object) -> str:
    return manager.get_name(plugin) or _module_of(plugin)


Kind = Literal["source", "transform", "analyzer"]
T = TypeVar("T")


@attrs.define
class Registry:
    """The components every plugin registered, by name, with the plugin that registered each."""

    sources: dict[str, Source] = attrs.Factory(dict)
    transforms: dict[str, Transform] = attrs.Factory(dict)
    analyzers: dict[str, Analyzer] = attrs.Factory(dict)
    owners: dict[tuple[Kind, str], str] = attrs.Factory(dict)

    @classmethod
    def collect(cls, manager: pluggy.PluginManager) -> Registry:
        """Call every plugin's ``register`` hooks and check what each registers."""
        registry = cls()
        collect = registry._collect
        collect(manager, manager.hook.fxcortex_register_sources, "source", Source, registry.sources)
        collect(
            manager,
            manager.hook.fxcortex_register_transforms,
            "transform",
            Transform,
            registry.transforms,
        )
        collect(
            manager,
            manager.hook.fxcortex_register_analyzers,
            "analyzer",
            Analyzer,
            registry.analyzers,
        )
        return registry

    def _collect(
        self,
        manager: pluggy.PluginManager,
        hook: pluggy.HookCaller,
        kind: Kind,
        protocol: type[Any],
        into: dict[str, Any],
    ) -> None:
        # Call each implementation on its own, so every registration knows its plugin.
        for implementation in hook.get_hookimpls():
            plugin_name = implementation.plugin_name
            register = self._registrar(kind, protocol, into, plugin_name)
            try:
                implementation.function(register=register)
            except PluginError:
                raise
            except Exception as error:
                raise PluginError(plugin_name, f"registering {kind}s failed: {error}") from error

    def _registrar(
        self, kind: Kind, protocol: type[Any], into: dict[str, Any], plugin_name: str
    ) -> Callable[[Any], None]:
        def register(component: Any) -> None:
            if not isinstance(component, protocol):
                raise PluginError(
                    plugin_name,
                    f"registered {component!r} as a {kind}, but it lacks part of the "
                    f"{protocol.__name__} protocol",
                )
            name = component.name
            if name in into:
                raise DuplicateRegistrationError(kind, name, self.owners[(kind, name)], plugin_name)
            into[name] = component
            self.owners[(kind, name)] = plugin_name

        return register

    def source(self, name: str) -> Source:
        """The source called ``name``."""
        return _lookup("source", self.sources, name)

    def analyzer(self, name: str) -> Analyzer:
        """The analyzer called ``name``."""
        return _lookup("analyzer", self.analyzers, name)


def _lookup(kind: str, components: Mapping[str, T], name: str) -> T:
    try:
        return components[name]
    except KeyError:
        raise UnknownComponentError(kind, name, list(components)) from None
