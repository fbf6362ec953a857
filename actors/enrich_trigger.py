"""The crawl scheduler's enrichment trigger: starts a micro-batch on the incremental enrichment
worker (jobs/enrichment/worker.py) when new articles are waiting, so that an article is enriched
within a minute of being stored.

It starts one after a round or a WebSub push that stored or changed articles (`stored`), and on
every scheduler tick (`tick`), which picks up what is still pending for another reason: a failed
batch, a backlog larger than one micro-batch, rows of an older model. At most one micro-batch is
in flight; articles stored meanwhile start the next one as soon as it ends. The crawl loop never
waits for it: the ObjectRef is awaited in a background task.

A failed micro-batch is logged, written to error_logs (the admin page's recent server errors,
where operators look) and retried on a later tick, after a pause that doubles up to 15 minutes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger(__name__)

# Where the worker lives: `jobs` is not importable from `actors` (DESIGN.md), so it is named by
# import path, like the CLI names the scheduler (cluster/components.py).
WORKER_FACTORY = "jobs.enrichment.worker:start_worker"
BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 900.0
# How a failure appears in error_logs (method, path): not an HTTP request, so named by the job.
ERROR_METHOD = "JOB"
ERROR_PATH = "jobs.enrich micro-batch"


@dataclass
class TriggerState:
    """What the scheduler's info() shows about incremental enrichment."""

    enabled: bool
    batches: int = 0  # micro-batches that found work
    written: int = 0
    running: bool = False
    failures: int = 0  # in a row; 0 after a success
    retry_in_s: float = 0.0
    last_error: str | None = None


class EnrichTrigger:
    def __init__(self, enabled: bool, limit: int, *, worker_options: Mapping[str, Any] | None = None,
                 backoff_base_s: float = BACKOFF_BASE_S, backoff_max_s: float = BACKOFF_MAX_S) -> None:
        self._enabled = enabled
        self._limit = limit
        self._worker_options = dict(worker_options or {})  # EnrichConfig overrides (tests)
        self._backoff = (backoff_base_s, backoff_max_s)
        self._worker: Any = None
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._retry_at = 0.0
        self._state = TriggerState(enabled)

    @classmethod
    def from_settings(cls, enabled: bool | None = None) -> "EnrichTrigger":
        from cluster.settings import get_settings

        settings = get_settings()
        return cls(settings.enrich_auto if enabled is None else enabled, settings.enrich_micro_batch)

    def stored(self, articles: int) -> None:
        """`articles` were stored or changed: enrich them now, or right after the batch in flight."""
        if articles > 0:
            self._request(again_if_busy=True)

    def tick(self) -> None:
        """The scheduler's periodic look: start a batch if none runs and no backoff holds."""
        self._request(again_if_busy=False)

    def info(self) -> dict[str, Any]:
        self._state.running = self.running
        self._state.retry_in_s = round(max(0.0, self._retry_at - time.monotonic()), 1)
        return asdict(self._state)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _request(self, again_if_busy: bool) -> None:
        if not self._enabled:
            return
        if self.running:
            self._again = self._again or again_if_busy
        elif time.monotonic() >= self._retry_at:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                stats = await self._worker_handle().run_batch.remote(self._limit)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded, then retried later
                await self._failed(exc)
                return
            self._state.failures, self._retry_at = 0, 0.0
            if stats["written"]:
                self._state.batches += 1
                self._state.written += stats["written"]
            # Skipped (another micro-batch holds the lock): the next tick tries again.
            more = stats["pending"] >= self._limit and stats["written"] > 0  # a full batch: more may wait
            if stats["skipped"] or not (self._again or more):
                return

    def _worker_handle(self) -> Any:
        if self._worker is None:
            from cluster.components import load

            # Owned by the scheduler (not detached): it goes away with the scheduler, and Ray
            # restarts it (max_restarts) if it dies, e.g. of memory pressure.
            self._worker = load(WORKER_FACTORY)(**self._worker_options)
        return self._worker

    async def _failed(self, exc: BaseException) -> None:
        cause = getattr(exc, "cause", None) or exc  # a RayTaskError carries the worker's exception
        message = (str(cause) or type(cause).__name__).strip().splitlines()[0]
        self._state.failures += 1
        self._state.last_error = f"{type(cause).__name__}: {message}"
        base, most = self._backoff
        pause = min(most, base * 2 ** (self._state.failures - 1))
        self._retry_at = time.monotonic() + pause
        log.error("enrich: micro-batch failed (%d in a row), retrying in %.0f s: %s", self._state.failures, pause,
                  self._state.last_error)
        try:
            from cluster.db import get_pool
            from cluster.store.error_logs import record_error

            await record_error(await get_pool(), method=ERROR_METHOD, path=ERROR_PATH, status=500,
                               error_type=f"{type(cause).__module__}.{type(cause).__qualname__}", message=message)
        except Exception as record_exc:  # noqa: BLE001 - the database may be what failed
            log.warning("enrich: could not write the failure to error_logs: %s", type(record_exc).__name__)
