"""Ingestion: run a source once, on its schedule, or as a resumable backfill, for either profile.

::

    from fxcortex.runtime.ingest import Ingestor

    with Ingestor.open() as ingestor:                     # the profile from the environment
        ingestor.run("ecb", options={"location": "bundled"})
        ingestor.backfill("ecb", date(2020, 1, 1), date(2020, 12, 31))

Every run takes the source's lock (no other scheduler or backfill runs the source meanwhile),
records itself in the ingest ledger, fetches and loads through `fxcortex.runtime.etl.run_fetch`
(all or nothing), and then records the source's watermark and last-run state in the cache. The
embedded profile keeps all of it in its SQLite file; the distributed one loads into PostgreSQL and
keeps metadata and locks in Redis (`open_ingest_stores`). A scheduled run fetches from the
watermark less a look-back (publishers revise recent days), the watermark read from the cache, or
from the rate store when the cache has none.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

import attrs

from fxcortex.core import (
    FetchWindow,
    FxCortexError,
    LoadResult,
    RateStore,
    Registry,
    Source,
    make_plugin_manager,
)
from fxcortex.core.plugins import PluginManager
from fxcortex.runtime.config import ConfigError, Settings
from fxcortex.runtime.etl import run_fetch
from fxcortex.runtime.ledger import BackfillRecord, Ledger, SqliteLedger, Trigger
from fxcortex.runtime.locks import FileLocks, Lease, Locks, make_holder
from fxcortex.runtime.metadata import (
    ResilientCache,
    decode_watermark,
    encode_last_run,
    encode_watermark,
    last_run_key,
    watermark_key,
)

if TYPE_CHECKING:
    from fxcortex.runtime.metrics import IngestMetrics

log = logging.getLogger(__name__)

DEFAULT_LOOKBACK = timedelta(days=7)
DEFAULT_CHUNK_DAYS = 366
"""Backfill chunk for a source that declares no ``max_window_days``: a year per transaction."""
DEFAULT_LOCK_TTL = 60.0


@attrs.define
class IngestStores:
    """What ingestion runs on: the rate store, the metadata cache, the ledger and the locks."""

    settings: Settings
    rates: RateStore
    cache: ResilientCache
    ledger: Ledger
    locks: Locks

    def close(self) -> None:
        """Close every store (queued cache writes get one last try)."""
        for closer in (self.locks.close, self.cache.close, self.ledger.close, self.rates.close):
            try:
                closer()
            except Exception as error:  # closing the rest matters more than this one
                log.warning("closing %s failed: %s", closer, error)


def open_ingest_stores(
    settings: Settings,
    *,
    holder: str | None = None,
    lock_ttl: float = DEFAULT_LOCK_TTL,
) -> IngestStores:
    """The ingestion stores of ``settings.profile``.

    Embedded: the SQLite file's rates, cache and ledger, and lock files. Distributed: PostgreSQL
    (which must have been bootstrapped) and Redis, with PostgreSQL advisory locks while Redis is
    away.
    """
    holder = holder or make_holder()
    if settings.profile == "embedded":
        from fxcortex.runtime.adapters.sqlite import SqliteCache, SqliteRateStore

        path = settings.rates_path
        return IngestStores(
            settings=settings,
            rates=SqliteRateStore(path),
            cache=ResilientCache(SqliteCache(path), (), name="the SQLite cache"),
            ledger=SqliteLedger(path),
            locks=FileLocks(settings.home / "locks", holder),
        )
    if settings.profile == "distributed":
        return _distributed(settings, holder, lock_ttl)
    raise ConfigError(f"FXCORTEX_PROFILE={settings.profile!r} has no ingestion stores")


def _distributed(settings: Settings, holder: str, lock_ttl: float) -> IngestStores:
    try:
        import redis as redis_lib

        from fxcortex.runtime.adapters import postgres
        from fxcortex.runtime.adapters import redis as redis_adapter
    except ImportError as error:
        raise ConfigError(
            f"the distributed profile needs {error.name}: "
            "pip install 'fxcortex-runtime[distributed]'"
        ) from error
    conninfo = settings.database.conninfo
    rates = postgres.PostgresRateStore(conninfo)
    try:
        version = rates._run("reading the schema version", postgres.schema_version)
        if version < postgres.LATEST_VERSION:
            raise ConfigError(
                f"{rates.where} has schema version {version}, this version needs "
                f"{postgres.LATEST_VERSION}: run `fxcortex bootstrap`"
            )
        client = redis_adapter.connect(settings.redis)
        return IngestStores(
            settings=settings,
            rates=rates,
            cache=ResilientCache(
                redis_adapter.RedisCache(client),
                (redis_lib.RedisError,),
                name=f"Redis at {settings.redis.host}:{settings.redis.port}",
            ),
            ledger=postgres.PostgresLedger(rates),
            locks=redis_adapter.RedisLocks(
                client,
                holder,
                ttl=lock_ttl,
                fallback=postgres.PostgresAdvisoryLocks(conninfo, holder),
            ),
        )
    except BaseException:
        rates.close()
        raise


def bootstrap(settings: Settings) -> list[str]:
    """Create or upgrade the profile's schema (idempotent); returns the migrations applied."""
    if settings.profile == "embedded":
        from fxcortex.runtime.adapters.sqlite import SqliteRateStore

        SqliteRateStore(settings.rates_path).close()  # the SQLite schema creates itself
        SqliteLedger(settings.rates_path).close()
        return []
    try:
        import psycopg

        from fxcortex.runtime.adapters import postgres
    except ImportError as error:
        raise ConfigError(
            f"the distributed profile needs {error.name}: "
            "pip install 'fxcortex-runtime[distributed]'"
        ) from error
    where = postgres.describe(settings.database.conninfo)
    try:
        with psycopg.connect(settings.database.conninfo, connect_timeout=15) as connection:
            applied = postgres.migrate(connection)
    except psycopg.Error as error:
        raise ConfigError(f"bootstrapping {where} failed: {error}") from error
    return [f"{m.version}: {m.name}" for m in applied]


RunStatus = Literal["succeeded", "failed", "skipped"]


@attrs.frozen(kw_only=True)
class RunOutcome:
    """How one run of a source went."""

    source: str
    status: RunStatus
    window: FetchWindow
    run_id: int | None = None
    result: LoadResult | None = None
    error: BaseException | None = attrs.field(default=None, eq=False)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True unless the run failed (a skipped run is not a failure)."""
        return self.status != "failed"


@attrs.frozen(kw_only=True)
class BackfillOutcome:
    """How a backfill went: what it loaded this time and where it stands."""

    source: str
    record: BackfillRecord
    chunks: list[RunOutcome]
    status: Literal["finished", "interrupted", "failed", "already finished"]
    resumed_from: date

    @property
    def loaded(self) -> LoadResult:
        """The load results of this invocation's chunks, added up."""
        results = [c.result for c in self.chunks if c.result is not None]
        return LoadResult(
            received=sum(r.received for r in results),
            inserted=sum(r.inserted for r in results),
            revised=sum(r.revised for r in results),
        )


def chunk_windows(since: date, until: date, days: int) -> list[FetchWindow]:
    """``since`` to ``until`` (inclusive) in windows of at most ``days`` days, oldest first."""
    if days < 1:
        raise ConfigError(f"chunk size {days}: a backfill chunk needs at least one day")
    windows = []
    start = since
    while start <= until:
        last = min(until, start + timedelta(days=days - 1))
        windows.append(FetchWindow(since=start, until=last))
        start = last + timedelta(days=1)
    return windows


def options_text(options: Mapping[str, str] | None) -> str:
    """Source options as one canonical text (part of a backfill's identity)."""
    return "&".join(f"{key}={value}" for key, value in sorted((options or {}).items()))


class _Renewer:
    """Renews a lease from a daemon thread while a run goes on."""

    def __init__(self, lease: Lease, interval: float, what: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, args=(lease, interval, what), name=f"renew {what}", daemon=True
        )
        self._thread.start()

    def _loop(self, lease: Lease, interval: float, what: str) -> None:
        while not self._stop.wait(interval):
            if not lease.renew():
                log.error("lost the lock of %s while running it", what)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Ingestor:
    """Runs sources into the rate store of one profile, each run locked, recorded and measured."""

    def __init__(
        self,
        stores: IngestStores,
        manager: PluginManager,
        *,
        metrics: IngestMetrics | None = None,
        lookback: timedelta = DEFAULT_LOOKBACK,
        options: Mapping[str, Mapping[str, str]] | None = None,
        lock_ttl: float = DEFAULT_LOCK_TTL,
    ) -> None:
        self.stores = stores
        self.manager = manager
        self.registry = Registry.collect(manager)
        self.metrics = metrics
        self.lookback = lookback
        self.options = {name: dict(values) for name, values in (options or {}).items()}
        self.lock_ttl = lock_ttl

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        plugins: Iterable[tuple[str, object]] = (),
        load_entry_points: bool = True,
        metrics: IngestMetrics | None = None,
        holder: str | None = None,
        lookback: timedelta = DEFAULT_LOOKBACK,
        options: Mapping[str, Mapping[str, str]] | None = None,
        lock_ttl: float = DEFAULT_LOCK_TTL,
    ) -> Ingestor:
        """An ingestor on the stores of ``settings`` (default: from the environment)."""
        settings = settings or Settings.from_env()
        manager = make_plugin_manager(plugins=plugins, load_entry_points=load_entry_points)
        stores = open_ingest_stores(settings, holder=holder, lock_ttl=lock_ttl)
        try:
            return cls(
                stores,
                manager,
                metrics=metrics,
                lookback=lookback,
                options=options,
                lock_ttl=lock_ttl,
            )
        except BaseException:
            stores.close()
            raise

    def copy(self) -> Ingestor:
        """Another ingestor on new connections to the same stores (same holder, plugins, metrics).

        SQLite connections belong to the thread that made them: the scheduler gives each of its
        worker threads a copy when the profile is embedded.
        """
        return Ingestor(
            open_ingest_stores(self.stores.settings, holder=self.holder, lock_ttl=self.lock_ttl),
            self.manager,
            metrics=self.metrics,
            lookback=self.lookback,
            options=self.options,
            lock_ttl=self.lock_ttl,
        )

    @property
    def holder(self) -> str:
        """Who this ingestor is, as its locks and runs say."""
        return self.stores.locks.holder

    def source(self, name: str, options: Mapping[str, str] | None = None) -> Source:
        """The registered source ``name`` with its configured options (and ``options``)."""
        source = self.registry.source(name)
        merged = {**self.options.get(name, {}), **(options or {})}
        return source.configure(**merged) if merged else source

    def watermark(self, name: str) -> datetime | None:
        """The newest observation time loaded for ``name``: from the cache, else the rate store."""
        cached = decode_watermark(
            self.stores.cache.get_many([watermark_key(name)]).get(watermark_key(name))
        )
        if cached is not None:
            return cached
        return self.stores.ledger.latest_observed_at(name)

    def scheduled_window(self, name: str) -> FetchWindow:
        """What a scheduled run fetches: from the watermark less the look-back, to the newest."""
        watermark = self.watermark(name)
        if watermark is None:
            return FetchWindow()  # never loaded: whatever the source gives by default
        since = (watermark - self.lookback).date()
        earliest = self.registry.source(name).history_since
        if earliest is not None and since < earliest:
            since = earliest
        return FetchWindow(since=since)

    def run(
        self,
        name: str,
        window: FetchWindow | None = None,
        *,
        trigger: Trigger = "manual",
        options: Mapping[str, str] | None = None,
    ) -> RunOutcome:
        """Run ``name`` once under its lock (``window`` None: the scheduled window).

        Never raises for a failure of the run itself: the outcome says ``failed`` and carries
        the error; a source locked by another holder gives ``skipped``.
        """
        try:
            lease = self.stores.locks.acquire(name)
        except Exception as error:
            return self._failed(name, window or FetchWindow(), None, 0.0, error, "taking the lock")
        if lease is None:
            if self.metrics is not None:
                self.metrics.skip(name)
            log.info("%s: skipped, another holder runs it", name)
            return RunOutcome(source=name, status="skipped", window=window or FetchWindow())
        renewer = _Renewer(lease, max(self.lock_ttl / 3, 0.1), name)
        try:
            return self._run_locked(name, window, trigger, options)
        finally:
            renewer.stop()
            lease.release()

    def _run_locked(
        self,
        name: str,
        window: FetchWindow | None,
        trigger: Trigger,
        options: Mapping[str, str] | None,
    ) -> RunOutcome:
        began = time.monotonic()
        run_id: int | None = None
        try:
            source = self.source(name, options)
            window = window if window is not None else self.scheduled_window(name)
            run_id = self.stores.ledger.start_run(name, window, trigger, self.holder)
            abandoned = self.stores.ledger.abandon_runs(name, before=run_id)
            if abandoned:
                log.warning(
                    "%s: %d earlier run(s) never finished; marked abandoned", name, abandoned
                )
            log.info("%s: run %s (%s) of %s starts", name, run_id, trigger, _describe(window))
            result = run_fetch(
                source,
                window,
                store=self.stores.rates,
                transforms=list(self.registry.transforms.values()),
                cache=self.stores.cache,
                hooks=self.manager.hook,
            )
        except Exception as error:
            return self._failed(
                name, window or FetchWindow(), run_id, time.monotonic() - began, error, "running"
            )
        seconds = time.monotonic() - began
        self._record_success(name, window, run_id, result, seconds)
        return RunOutcome(
            source=name,
            status="succeeded",
            window=window,
            run_id=run_id,
            result=result,
            seconds=seconds,
        )

    def _record_success(
        self, name: str, window: FetchWindow, run_id: int, result: LoadResult, seconds: float
    ) -> None:
        # The data is committed: whatever fails from here on is bookkeeping, logged, not raised.
        finished = datetime.now(UTC)
        try:
            self.stores.ledger.finish_run(run_id, result=result)
        except Exception as error:
            log.error("%s: run %s loaded its quotes but was not recorded: %s", name, run_id, error)
        puts = {
            last_run_key(name): encode_last_run(
                {
                    "run_id": run_id,
                    "status": "succeeded",
                    "finished_at": finished.isoformat(),
                    "received": result.received,
                    "inserted": result.inserted,
                    "revised": result.revised,
                }
            )
        }
        try:
            latest = self.stores.ledger.latest_observed_at(name)
        except Exception as error:
            latest = None
            log.warning("%s: watermark not updated: %s", name, error)
        if latest is not None:
            puts[watermark_key(name)] = encode_watermark(latest)
        self.stores.cache.commit(puts)
        if self.metrics is not None:
            self.metrics.succeeded(name, seconds, result, finished.timestamp())
            self.metrics.cache_up.set(1 if self.stores.cache.available else 0)
        log.info(
            "%s: run %s loaded %d quotes (%d new, %d revised, %d unchanged) in %.2fs",
            name,
            run_id,
            result.received,
            result.inserted,
            result.revised,
            result.unchanged,
            seconds,
        )

    def _failed(
        self,
        name: str,
        window: FetchWindow,
        run_id: int | None,
        seconds: float,
        error: Exception,
        doing: str,
    ) -> RunOutcome:
        message = (
            str(error) if isinstance(error, FxCortexError) else f"{type(error).__name__}: {error}"
        )
        log.error(
            "%s: run %s failed while %s; nothing of it stored: %s", name, run_id, doing, message
        )
        if run_id is not None:
            try:
                self.stores.ledger.finish_run(run_id, error=message)
            except Exception as ledger_error:
                log.error(
                    "%s: the failure of run %s was not recorded: %s", name, run_id, ledger_error
                )
        state = {"run_id": run_id, "status": "failed", "error": message}
        state["finished_at"] = datetime.now(UTC).isoformat()
        self.stores.cache.commit({last_run_key(name): encode_last_run(state)})
        if self.metrics is not None:
            self.metrics.failed(name, seconds, error)
            self.metrics.cache_up.set(1 if self.stores.cache.available else 0)
        return RunOutcome(
            source=name,
            status="failed",
            window=window,
            run_id=run_id,
            error=error,
            seconds=seconds,
        )

    def backfill(
        self,
        name: str,
        since: date,
        until: date | None = None,
        *,
        options: Mapping[str, str] | None = None,
        chunk_days: int | None = None,
        restart: bool = False,
        lock_wait: float = 300.0,
        on_chunk: Callable[[RunOutcome, BackfillRecord], None] | None = None,
        stop: threading.Event | None = None,
    ) -> BackfillOutcome:
        """Load ``since`` to ``until`` (default today, UTC) of a source chunk by chunk.

        A chunk is at most the source's ``max_window_days`` (else `DEFAULT_CHUNK_DAYS`) or
        ``chunk_days``, loaded in one transaction and recorded as done, so the same request
        resumes after the last finished chunk (``restart`` starts over). A chunk waits up to
        ``lock_wait`` seconds for a scheduled run of the source to finish. ``stop`` is checked
        between chunks: set it (on SIGINT/SIGTERM) to stop after the current one.
        """
        source = self.source(name, options)
        until = until or datetime.now(UTC).date()
        if since > until:
            raise ConfigError(f"backfill of {name}: --since {since} is after --until {until}")
        earliest = source.history_since
        if earliest is not None and since < earliest:
            log.info("%s: history starts %s; the backfill starts there", name, earliest)
            since = earliest
        size = chunk_days or getattr(source, "max_window_days", None) or DEFAULT_CHUNK_DAYS
        ledger = self.stores.ledger
        record = ledger.backfill(name, since, until, options_text(options), int(size))
        if restart:
            record = ledger.restart_backfill(record.id)
        resumed_from = record.resume_from
        if record.status == "finished":
            return BackfillOutcome(
                source=name,
                record=record,
                chunks=[],
                status="already finished",
                resumed_from=resumed_from,
            )
        outcomes: list[RunOutcome] = []
        for window in chunk_windows(resumed_from, until, int(size)):
            if stop is not None and stop.is_set():
                return BackfillOutcome(
                    source=name,
                    record=record,
                    chunks=outcomes,
                    status="interrupted",
                    resumed_from=resumed_from,
                )
            outcome = self._run_waiting(name, window, options, lock_wait)
            outcomes.append(outcome)
            if outcome.status != "succeeded":
                return BackfillOutcome(
                    source=name,
                    record=record,
                    chunks=outcomes,
                    status="failed",
                    resumed_from=resumed_from,
                )
            assert window.until is not None
            ledger.backfill_progress(record.id, window.until, finished=window.until >= until)
            record = attrs.evolve(
                record,
                done_until=window.until,
                status="finished" if window.until >= until else "running",
            )
            if on_chunk is not None:
                on_chunk(outcome, record)
        return BackfillOutcome(
            source=name,
            record=record,
            chunks=outcomes,
            status="finished",
            resumed_from=resumed_from,
        )

    def _run_waiting(
        self, name: str, window: FetchWindow, options: Mapping[str, str] | None, wait: float
    ) -> RunOutcome:
        deadline = time.monotonic() + wait
        while True:
            outcome = self.run(name, window, trigger="backfill", options=options)
            if outcome.status != "skipped" or time.monotonic() >= deadline:
                return outcome
            time.sleep(1.0)

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


def _describe(window: FetchWindow) -> str:
    if window.since is None and window.until is None:
        return "the default window"
    return f"{window.since or '…'} to {window.until or 'now'}"
