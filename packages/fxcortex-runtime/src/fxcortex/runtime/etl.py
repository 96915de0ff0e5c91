"""ETL: fetch a source, run the transforms, load the result into the rate store in one go.

A fetch is all or nothing: the source parses its whole payload before anything is loaded, and the
load is one transaction, so a failure at any step stores nothing of that fetch.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence

import pluggy

from fxcortex.core import (
    Cache,
    FetchContext,
    FetchWindow,
    FxCortexError,
    LoadResult,
    Quote,
    RateStore,
    Source,
    SourceError,
    Transform,
)


def collect_quotes(
    source: Source,
    window: FetchWindow,
    transforms: Sequence[Transform],
    context: FetchContext | None = None,
) -> list[Quote]:
    """The quotes a fetch would load: fetched, transformed, checked for conflicting duplicates."""
    try:
        quotes = list(source.fetch(window, context))
        for transform in transforms:
            quotes = list(transform.apply(quotes))
    except FxCortexError:
        raise
    except Exception as error:  # a plugin's bug must still name the plugin
        raise SourceError(source.name, f"unexpected {type(error).__name__}: {error}") from error
    return in_time_order(_without_duplicates(quotes, source.name))


def in_time_order(quotes: list[Quote]) -> list[Quote]:
    """The quotes oldest first (stable), so the change feed streams a history forwards.

    Publishers list history in any order (the ECB's file is newest first); analytics that learn
    or carry state forwards — an online forecaster, a gap's carried rate — see a load as the
    sequence of events it describes only when it is inserted in observation order.
    """
    if all(a.observed_at <= b.observed_at for a, b in itertools.pairwise(quotes)):
        return quotes
    return sorted(quotes, key=operator.attrgetter("observed_at"))


def _without_duplicates(quotes: list[Quote], source: str) -> list[Quote]:
    by_key: dict[object, Quote] = {}
    for quote in quotes:
        seen = by_key.setdefault(quote.key, quote)
        if seen.rate != quote.rate:
            raise SourceError(
                source,
                f"{quote.pair} {quote.kind} at {quote.observed_at.isoformat()} appears twice with "
                f"different rates ({seen.rate} and {quote.rate})",
            )
    return list(by_key.values()) if len(by_key) != len(quotes) else quotes


def run_fetch(
    source: Source,
    window: FetchWindow,
    *,
    store: RateStore,
    transforms: Sequence[Transform] = (),
    cache: Cache | None = None,
    hooks: pluggy.HookRelay | None = None,
) -> LoadResult:
    """Fetch, transform and load one window of a source; returns what the load did.

    What the source staged for the cache (HTTP validators) is committed only after the load, so
    a failed load is fetched again in full next time rather than answered "not modified".
    """
    context = FetchContext(cache=cache)
    try:
        quotes = collect_quotes(source, window, transforms, context)
        result = store.upsert(quotes)
        if cache is not None and context.staged:
            cache.commit(context.staged)
    except Exception as error:
        if hooks is not None:
            hooks.fxcortex_fetch_failed(source=source, window=window, error=error)
        raise
    if hooks is not None:
        hooks.fxcortex_fetch_loaded(source=source, window=window, result=result)
    return result
