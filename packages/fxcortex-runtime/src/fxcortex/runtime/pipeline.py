"""The Python API: everything the ``fxcortex`` command does, callable from a notebook.

::

    from fxcortex.runtime import Pipeline

    with Pipeline.open() as pipeline:                 # the embedded profile under FXCORTEX_HOME
        pipeline.fetch("ecb", options={"location": "bundled"})
        pipeline.analyze()
        bars = pipeline.frame("SELECT * FROM ohlc WHERE quote = 'USD' AND resolution = 'month'")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Self

from fxcortex.core import (
    FetchContext,
    FetchWindow,
    LoadResult,
    QueryResult,
    Quote,
    Registry,
    Source,
    make_plugin_manager,
)
from fxcortex.core.plugins import PluginManager
from fxcortex.runtime.analyzer import AnalyzeResult, StoreRetry, run_analyzer
from fxcortex.runtime.config import Settings
from fxcortex.runtime.etl import collect_quotes, run_fetch
from fxcortex.runtime.profiles import Stores, open_stores

if TYPE_CHECKING:
    import pandas

    from fxcortex.runtime.metrics import AnalyzerMetrics


class Pipeline:
    """A rate store, change feed, cache and analytics store for one profile, plus the plugins."""

    def __init__(
        self,
        settings: Settings,
        manager: PluginManager,
        stores: Stores,
    ) -> None:
        self.settings = settings
        self.manager = manager
        self.registry = Registry.collect(manager)
        self.stores = stores
        self.rates = stores.rates
        self.feed = stores.feed
        self.cache = stores.cache
        self.analytics = stores.analytics
        self.analytics.ensure_tables(
            [spec for analyzer in self.registry.analyzers.values() for spec in analyzer.tables]
        )

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        plugins: Iterable[tuple[str, object]] = (),
        load_entry_points: bool = True,
    ) -> Pipeline:
        """Build the pipeline of ``settings`` (default: from the environment)."""
        settings = settings or Settings.from_env()
        manager = make_plugin_manager(plugins=plugins, load_entry_points=load_entry_points)
        stores = open_stores(settings)
        try:
            return cls(settings, manager, stores)
        except BaseException:
            stores.close()
            raise

    def source(self, name: str, options: Mapping[str, str] | None = None) -> Source:
        """The registered source ``name``, configured with ``options``."""
        source = self.registry.source(name)
        return source.configure(**options) if options else source

    def preview(
        self,
        source: str,
        *,
        since: date | None = None,
        until: date | None = None,
        options: Mapping[str, str] | None = None,
    ) -> list[Quote]:
        """The quotes a fetch would load, without loading them (``fetch --dry-run``)."""
        window = FetchWindow(since=since, until=until)
        return collect_quotes(
            self.source(source, options),
            window,
            list(self.registry.transforms.values()),
            FetchContext(cache=self.cache),
        )

    def fetch(
        self,
        source: str,
        *,
        since: date | None = None,
        until: date | None = None,
        options: Mapping[str, str] | None = None,
    ) -> LoadResult:
        """Fetch one window of a source and load it (all or nothing)."""
        return run_fetch(
            self.source(source, options),
            FetchWindow(since=since, until=until),
            store=self.rates,
            transforms=list(self.registry.transforms.values()),
            cache=self.cache,
            hooks=self.manager.hook,
        )

    def pending(self) -> int:
        """How many changes wait for the analyzer."""
        return self.feed.pending()

    def analyze(
        self,
        *,
        batch_size: int | None = None,
        on_batch: Callable[[int], None] | None = None,
        max_batches: int | None = None,
        retry: StoreRetry | None = None,
        metrics: AnalyzerMetrics | None = None,
    ) -> AnalyzeResult:
        """Run every analyzer over the pending changes; ``on_batch`` is told each batch's size.

        ``retry`` says how long a failing analytics store is retried (default: 5 attempts).
        """
        intervals: dict[str, timedelta] = {
            name: source.observation_interval for name, source in self.registry.sources.items()
        }
        return run_analyzer(
            self.feed,
            list(self.registry.analyzers.values()),
            store=self.analytics,
            cache=self.cache,
            intervals=intervals,
            batch_size=batch_size or self.settings.batch_size,
            hooks=self.manager.hook,
            on_batch=on_batch,
            max_batches=max_batches,
            retry=retry,
            metrics=metrics,
        )

    def query(self, sql: str) -> QueryResult:
        """Run SQL on the analytics store."""
        return self.analytics.query(sql)

    def frame(self, sql: str) -> pandas.DataFrame:
        """Run SQL on the analytics store and return a pandas DataFrame."""
        import pandas

        result = self.query(sql)
        return pandas.DataFrame.from_records(result.rows, columns=result.columns)

    def close(self) -> None:
        """Close every store."""
        self.stores.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Pipeline(profile={self.settings.profile!r}, home={str(self.settings.home)!r})"
