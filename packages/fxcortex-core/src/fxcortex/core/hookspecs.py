"""The hooks a FX-Cortex plugin can implement.

A plugin is a module (or object) with functions marked ``@fxcortex.core.hookimpl`` and named after
the specs below, made known through the ``fxcortex`` entry-point group::

    [project.entry-points.fxcortex]
    my_source = "my_package.my_source"

Collections are registered through a callback (``register``) rather than returned, so the core can
check each registration and name the plugin behind a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from fxcortex.core.models import FetchWindow
    from fxcortex.core.ports import Analyzer, LoadResult, Source, Transform

PROJECT_NAME = "fxcortex"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def fxcortex_register_sources(register: Callable[[Source], None]) -> None:
    """Register sources by calling ``register(source)`` once per source.

    Called once when the registry is built. A source's ``name`` must be unique across plugins.
    """


@hookspec
def fxcortex_register_transforms(register: Callable[[Transform], None]) -> None:
    """Register transforms by calling ``register(transform)`` once per transform.

    Called once when the registry is built. Transforms run on every fetch, in registration order
    (plugin load order), before the quotes are loaded.
    """


@hookspec
def fxcortex_register_analyzers(register: Callable[[Analyzer], None]) -> None:
    """Register analyzers by calling ``register(analyzer)`` once per analyzer.

    Called once when the registry is built. Every registered analyzer sees every change batch.
    """


@hookspec
def fxcortex_fetch_loaded(source: Source, window: FetchWindow, result: LoadResult) -> None:
    """Called after a fetch's quotes were committed to the rate store.

    Return value ignored. Use it for notifications or bookkeeping; raising fails the command that
    ran the fetch, but the loaded rows stay committed.
    """


@hookspec
def fxcortex_fetch_failed(source: Source, window: FetchWindow, error: Exception) -> None:
    """Called when a fetch failed (its quotes were not stored); the error is re-raised afterwards.

    Return value ignored.
    """


@hookspec
def fxcortex_batch_analyzed(changes: int, position: int, rows_written: dict[str, int]) -> None:
    """Called after an analyzer batch's rows landed and its position was committed.

    ``rows_written`` maps each table to the rows written for the batch. Return value ignored.
    """
