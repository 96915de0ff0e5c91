"""Prometheus metrics (``fxcortex_`` prefix, base units, ``_total`` on counters).

Ingestion's are below; the analyzer's are in `AnalyzerMetrics`.

=============================================  ===================================================
metric                                         meaning (labels)
=============================================  ===================================================
``fxcortex_fetch_duration_seconds``            histogram of a run's fetch-and-load time (source)
``fxcortex_rows_loaded_total``                 quotes inserted (source)
``fxcortex_rows_revised_total``                quotes revised, i.e. updated (source)
``fxcortex_rows_received_total``               quotes fetched, unchanged ones included (source)
``fxcortex_fetch_failures_total``              failed runs (source, reason: source, store,
                                               missing_extra, unexpected)
``fxcortex_runs_skipped_total``                runs not started because another holder ran the
                                               source (source, reason: locked)
``fxcortex_last_success_timestamp_seconds``    when the last successful run ended (source)
``fxcortex_cache_up``                          1 while the metadata cache answers, else 0
=============================================  ===================================================

Labels are bounded: source names come from installed plugins, reasons from the list above.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from fxcortex.core import FxCortexError, LoadResult, MissingExtraError, SourceError, StoreError

# a daily fixing takes a second, a full history a minute, a stuck API up to the HTTP timeouts
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def failure_reason(error: BaseException) -> str:
    """The bounded label value of a failure."""
    if isinstance(error, MissingExtraError):
        return "missing_extra"
    if isinstance(error, SourceError):
        return "source"
    if isinstance(error, StoreError):
        return "store"
    if isinstance(error, FxCortexError):
        return "config"
    return "unexpected"


class IngestMetrics:
    """The ingestion metrics, in a registry of their own (default: a new one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.fetch_duration = Histogram(
            "fxcortex_fetch_duration_seconds",
            "Time to fetch, transform and load one run of a source.",
            ["source"],
            buckets=BUCKETS,
            registry=r,
        )
        self.rows_loaded = Counter(
            "fxcortex_rows_loaded", "Quotes inserted into the rate store.", ["source"], registry=r
        )
        self.rows_revised = Counter(
            "fxcortex_rows_revised", "Stored quotes revised (updated).", ["source"], registry=r
        )
        self.rows_received = Counter(
            "fxcortex_rows_received",
            "Quotes fetched, unchanged ones included.",
            ["source"],
            registry=r,
        )
        self.failures = Counter(
            "fxcortex_fetch_failures",
            "Runs that failed and stored nothing.",
            ["source", "reason"],
            registry=r,
        )
        self.skipped = Counter(
            "fxcortex_runs_skipped",
            "Runs not started because another holder ran the source.",
            ["source", "reason"],
            registry=r,
        )
        self.last_success = Gauge(
            "fxcortex_last_success_timestamp_seconds",
            "Unix time at which the last successful run of a source ended.",
            ["source"],
            registry=r,
        )
        self.cache_up = Gauge(
            "fxcortex_cache_up", "1 while the metadata cache (Redis) answers.", registry=r
        )
        self.cache_up.set(1)

    def succeeded(self, source: str, seconds: float, result: LoadResult, at: float) -> None:
        """Count a successful run."""
        self.fetch_duration.labels(source).observe(seconds)
        self.rows_loaded.labels(source).inc(result.inserted)
        self.rows_revised.labels(source).inc(result.revised)
        self.rows_received.labels(source).inc(result.received)
        self.last_success.labels(source).set(at)

    def failed(self, source: str, seconds: float, error: BaseException) -> None:
        """Count a failed run."""
        self.fetch_duration.labels(source).observe(seconds)
        self.failures.labels(source, failure_reason(error)).inc()

    def skip(self, source: str, reason: str = "locked") -> None:
        """Count a run that did not start."""
        self.skipped.labels(source, reason).inc()

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` over HTTP from a daemon thread."""
        start_http_server(port, addr=address, registry=self.registry)


# an analytics row lands within a second of its commit when all is well; a backlog takes minutes
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600, 86_400)
INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class AnalyzerMetrics:
    """The analyzer's metrics (``fxcortex analyzer --metrics-port``), in a registry of their own.

    =================================================  =============================================
    metric                                             meaning
    =================================================  =============================================
    ``fxcortex_analyzer_events_consumed_total``        changes applied (committed batches)
    ``fxcortex_analyzer_batches_total``                batches committed
    ``fxcortex_analyzer_consumer_lag``                 changes waiting after the committed position
                                                       (Kafka: offsets to the high watermarks)
    ``fxcortex_analyzer_end_to_end_latency_seconds``   per change: rate-store commit to its
                                                       analytics rows written
    ``fxcortex_analyzer_dead_letters_total``           messages sent to the dead-letter topic
                                                       (reason: undecodable)
    ``fxcortex_analytics_insert_duration_seconds``     one batch's analytics-store write, retries
                                                       included
    ``fxcortex_analytics_store_failures_total``        analytics-store writes that failed
    =================================================  =============================================
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            "fxcortex_analyzer_events_consumed", "Changes applied by the analyzer.", registry=r
        )
        self.batches = Counter(
            "fxcortex_analyzer_batches", "Batches the analyzer committed.", registry=r
        )
        self.lag = Gauge(
            "fxcortex_analyzer_consumer_lag",
            "Changes waiting after the committed feed position.",
            registry=r,
        )
        self.latency = Histogram(
            "fxcortex_analyzer_end_to_end_latency_seconds",
            "Rate-store commit of a change to its analytics rows written.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.dead_letters = Counter(
            "fxcortex_analyzer_dead_letters",
            "Messages sent to the dead-letter topic.",
            ["reason"],
            registry=r,
        )
        self.insert_duration = Histogram(
            "fxcortex_analytics_insert_duration_seconds",
            "Time to write one batch's rows to the analytics store, retries included.",
            buckets=INSERT_BUCKETS,
            registry=r,
        )
        self.store_failures = Counter(
            "fxcortex_analytics_store_failures",
            "Analytics-store writes that failed and were retried or gave up.",
            registry=r,
        )
        self._dead_letters_seen = 0

    def batch(
        self, committed_at_micros: Sequence[int], written_at: float, insert_seconds: float
    ) -> None:
        """Count a committed batch: its size, each change's latency, the write's duration."""
        self.consumed.inc(len(committed_at_micros))
        self.batches.inc()
        self.insert_duration.observe(insert_seconds)
        now_micros = written_at * 1_000_000
        observe = self.latency.observe
        for committed in committed_at_micros:
            observe(max(0.0, (now_micros - committed) / 1_000_000))

    def feed_state(self, pending: int, dead_lettered: int) -> None:
        """The feed's backlog now, and its dead letters so far (a running total)."""
        self.lag.set(pending)
        if dead_lettered > self._dead_letters_seen:
            self.dead_letters.labels("undecodable").inc(dead_lettered - self._dead_letters_seen)
            self._dead_letters_seen = dead_lettered

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` over HTTP from a daemon thread."""
        start_http_server(port, addr=address, registry=self.registry)
