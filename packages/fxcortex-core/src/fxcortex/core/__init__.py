"""FX-Cortex core: the models, converter, hooks and ports every other package builds on."""

from datetime import UTC

from fxcortex.core.errors import (
    ConversionError,
    DuplicateRegistrationError,
    FxCortexError,
    InvalidValueError,
    MissingExtraError,
    PluginError,
    SourceError,
    StoreError,
    UnknownComponentError,
)
from fxcortex.core.hookspecs import hookimpl
from fxcortex.core.models import (
    ChangeOp,
    Currency,
    FetchWindow,
    Pair,
    Quote,
    QuoteKind,
    RateChange,
    Schedule,
)
from fxcortex.core.plugins import Registry, make_plugin_manager
from fxcortex.core.ports import (
    AnalyticsStore,
    Analyzer,
    AnalyzerContext,
    AnalyzerState,
    Cache,
    ChangeFeed,
    FetchContext,
    LoadResult,
    QueryResult,
    RateStore,
    Source,
    Transform,
)
from fxcortex.core.tables import Column, TableSpec, TableWrite

__all__ = [
    "UTC",
    "AnalyticsStore",
    "Analyzer",
    "AnalyzerContext",
    "AnalyzerState",
    "Cache",
    "ChangeFeed",
    "ChangeOp",
    "Column",
    "ConversionError",
    "Currency",
    "DuplicateRegistrationError",
    "FetchContext",
    "FetchWindow",
    "FxCortexError",
    "InvalidValueError",
    "LoadResult",
    "MissingExtraError",
    "Pair",
    "PluginError",
    "QueryResult",
    "Quote",
    "QuoteKind",
    "RateChange",
    "RateStore",
    "Registry",
    "Schedule",
    "Source",
    "SourceError",
    "StoreError",
    "TableSpec",
    "TableWrite",
    "Transform",
    "UnknownComponentError",
    "hookimpl",
    "make_plugin_manager",
]
