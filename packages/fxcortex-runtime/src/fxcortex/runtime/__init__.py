"""FX-Cortex runtime: profiles, adapters, ETL, the analyzer loop and the Python API."""

from fxcortex.runtime.analyzer import AnalyzerError, AnalyzeResult
from fxcortex.runtime.config import ConfigError, Settings
from fxcortex.runtime.demo import DemoSummary, run_demo
from fxcortex.runtime.pipeline import Pipeline

__all__ = [
    "AnalyzeResult",
    "AnalyzerError",
    "ConfigError",
    "DemoSummary",
    "Pipeline",
    "Settings",
    "run_demo",
]
