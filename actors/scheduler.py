"""The CrawlScheduler: one named, detached actor that hands due sources to a crawler pool.

It claims due sources from PostgreSQL (atomically, with a lease, so nothing is crawled twice
at once), spreads them over FeedCrawler actors and re-dispatches the work of a crawler that
dies. Every few seconds it looks again; `newsray crawl` asks it for a round right now.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from urllib.parse import urlsplit
from dataclasses import asdict, dataclass, field
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from actors.enrich_trigger import EnrichTrigger
from actors.feed_crawler import FeedCrawler
from cluster.store.sources import Source

log = logging.getLogger(__name__)

SCHEDULER_NAME = "crawl-scheduler"
MAX_DISPATCH_ATTEMPTS = 3
CLAIM_BATCH = 1000
MAX_KEPT_ROUNDS = 20
# Sources of one host lane handed to a crawler in one call. A Ray call costs about a millisecond
# of CPU on both sides, as much as crawling an unchanged feed; the lane is sequential anyway
# (politeness), so a chunk only saves calls. Bounded, so a crawler's death costs little re-work.
LANE_CHUNK = 16


@dataclass
class RoundStatus:
    id: str
    force: bool
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    total: int = 0
    done: int = 0
    failed: int = 0
    inserted: int = 0
    updated: int = 0
    not_modified: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    redispatched: int = 0
    pages_improved: int = 0
    finished: bool = False

    def record(self, outcome: dict[str, Any]) -> None:
        self.done += 1
        self.inserted += int(outcome.get("inserted") or 0)
        self.updated += int(outcome.get("updated") or 0)
        self.not_modified += int(bool(outcome.get("not_modified")))
        if not outcome.get("ok"):
            self.failed += 1
            kind = str(outcome.get("error_kind") or "error")
            self.errors[kind] = self.errors.get(kind, 0) + 1


def default_pool_size() -> int:
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(2, min(16, cpus))


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class CrawlScheduler:
    def __init__(self, pool_size: int = 0, tick_s: float | None = None, host_concurrency: int | None = None,
                 host_delay_s: float | None = None, enrich_auto: bool | None = None) -> None:
        from cluster.settings import get_settings

        settings = get_settings()
        self._host_concurrency = host_concurrency or settings.host_concurrency
        self._host_delay_s = settings.host_delay_s if host_delay_s is None else host_delay_s
        self._pool_size = pool_size or settings.crawler_actors or default_pool_size()
        self._tick_s = tick_s if tick_s is not None else settings.scheduler_tick_s
        self._crawlers: list[Any] = []
        self._next_crawler = itertools.count()
        self._in_flight: list[int] = []  # calls running on each crawler, for choosing the least busy
        self._round_lock = asyncio.Lock()
        self._rounds: dict[str, RoundStatus] = {}
        self._loop_task: asyncio.Task[None] | None = None
        # New articles are enriched in micro-batches (NEWSRAY_ENRICH_AUTO; None = the setting).
        self._enrich = EnrichTrigger.from_settings(enrich_auto)

    # ------------------------------------------------------------------ public

    async def start(self) -> bool:
        """Start the periodic loop (idempotent); returns True when it was not running yet."""
        if self._loop_task is not None and not self._loop_task.done():
            return False
        self._loop_task = asyncio.get_running_loop().create_task(self._loop())
        return True

    async def start_round(self, force: bool = False) -> str:
        """Begin a round now (after any running one); poll round_status() for progress."""
        status = RoundStatus(id=uuid.uuid4().hex, force=force)
        self._remember(status)
        asyncio.get_running_loop().create_task(self._run_round(status))
        return status.id

    async def run_round(self, force: bool = False) -> dict[str, Any]:
        """One round, waited for; returns its summary."""
        status = RoundStatus(id=uuid.uuid4().hex, force=force)
        self._remember(status)
        await self._run_round(status)
        return asdict(status)

    async def round_status(self, round_id: str) -> dict[str, Any] | None:
        status = self._rounds.get(round_id)
        return asdict(status) if status else None

    async def ingest(self, source_id: int, body: bytes, content_type: str | None) -> dict[str, Any]:
        """Hand a WebSub push to a crawler (called by the Api's callback route)."""
        outcome: dict[str, Any] = await self._crawler().ingest.remote(source_id, body, content_type)
        self._enrich.stored(int(outcome.get("inserted") or 0) + int(outcome.get("updated") or 0))
        return outcome

    async def crawlers(self) -> list[Any]:
        """The crawler actors' handles (operators and tests use them to inspect or kill one)."""
        self._ensure_crawlers()
        return list(self._crawlers)

    async def info(self) -> dict[str, Any]:
        return {
            "crawlers": len(self._crawlers),
            "pool_size": self._pool_size,
            "tick_s": self._tick_s,
            "loop_running": self._loop_task is not None and not self._loop_task.done(),
            "rounds": [asdict(r) for r in list(self._rounds.values())[-5:]],
            "enrich": self._enrich.info(),
        }

    # ------------------------------------------------------------------ internals

    def _remember(self, status: RoundStatus) -> None:
        self._rounds[status.id] = status
        while len(self._rounds) > MAX_KEPT_ROUNDS:
            self._rounds.pop(next(iter(self._rounds)))

    def _ensure_crawlers(self) -> None:
        while len(self._crawlers) < self._pool_size:
            self._crawlers.append(FeedCrawler.remote())
            self._in_flight.append(0)

    def _crawler(self) -> Any:
        self._ensure_crawlers()
        return self._crawlers[next(self._next_crawler) % len(self._crawlers)]

    def _least_busy(self, avoid: int | None = None) -> int:
        """Index of the crawler with the fewest calls in flight, not `avoid` (one that just died:
        while it restarts, calls to it fail at once) when there is another."""
        self._ensure_crawlers()
        start = next(self._next_crawler)  # rotates ties
        order = [(start + i) % len(self._crawlers) for i in range(len(self._crawlers))]
        candidates = [i for i in order if i != avoid] or order
        return min(candidates, key=lambda i: self._in_flight[i])

    async def _loop(self) -> None:
        while True:
            try:
                status = RoundStatus(id=uuid.uuid4().hex, force=False)
                await self._run_round(status)
                if status.total:
                    self._remember(status)
            except Exception:  # noqa: BLE001 - the loop must outlive a bad round (e.g. DB restart)
                log.exception("scheduler: round failed; retrying at the next tick")
            self._enrich.tick()  # articles still pending (a failed batch, a backlog) get their turn
            await asyncio.sleep(self._tick_s)

    async def _run_round(self, status: RoundStatus) -> None:
        from cluster.db import get_pool
        from cluster.store.sources import claim_due_sources

        async with self._round_lock:
            try:
                pool = await get_pool()
                lanes: dict[str, asyncio.Queue[tuple[Source, float]]] = {}
                workers: list[asyncio.Task[None]] = []
                while True:
                    forced = status.force and status.total == 0
                    # A forced claim takes every enabled source in one go: a second forced claim
                    # would take the same sources again, so it cannot come in batches.
                    batch = await claim_due_sources(pool, None if forced else CLAIM_BATCH, force=forced)
                    if not batch:
                        break
                    status.total += len(batch)
                    # Sources that failed last time go first: a timeout or a retried 503 takes
                    # seconds, and started last it would be the round's tail.
                    batch.sort(key=lambda source: source.consecutive_errors == 0)
                    for source in batch:
                        host = host_of(source.url)
                        if host not in lanes:
                            # A few workers per host, each fetching one source at a time: the
                            # per-host concurrency limit holds across the cluster, because this
                            # actor is the only one that dispatches.
                            lanes[host] = asyncio.Queue()
                            workers.extend(asyncio.ensure_future(self._lane(lanes[host], status))
                                           for _ in range(self._host_concurrency))
                        lanes[host].put_nowait((source, time.monotonic()))
                    self._queue_depth(status)
                    if status.force:
                        break  # a forced claim takes every enabled source at once
                for queue in lanes.values():
                    for _ in range(self._host_concurrency):
                        queue.put_nowait(None)  # type: ignore[arg-type]  # end of the lane
                if workers:
                    await asyncio.gather(*workers)
            finally:
                status.finished = True
                status.finished_at = time.time()
                self._queue_depth(status)
        self._enrich.stored(status.inserted + status.updated + status.pages_improved)

    async def _lane(self, queue: "asyncio.Queue[tuple[Source, float] | None]", status: RoundStatus) -> None:
        first = True
        ended = False
        wants_pages: list[Source] = []
        while not ended:
            item = await queue.get()
            if item is None:
                break
            chunk, ended = take_chunk(item, queue, self._host_concurrency)
            if not first and self._host_delay_s > 0:
                await asyncio.sleep(self._host_delay_s)  # politeness: a pause between requests to one host
            first = False
            now = time.monotonic()
            for _, queued_at in chunk:
                _observe_host_wait(now - queued_at)
            wants_pages += await self._dispatch([source for source, _ in chunk], status)
            self._queue_depth(status)
        # Feeds first (their entries are visible at once), then the pages of teaser-only articles,
        # still one request at a time for this host.
        for source in wants_pages:
            if self._host_delay_s > 0:
                await asyncio.sleep(self._host_delay_s)
            try:
                report = await self._crawler().fetch_pages.remote(source.id, self._host_delay_s)
                status.pages_improved += int(report.get("improved", 0))
            except (RayActorError, RayTaskError) as exc:
                log.warning("scheduler: full-content pass of source %s failed: %s", source.id, exc)

    def _queue_depth(self, status: RoundStatus) -> None:
        try:
            from actors.metrics import crawl_metrics

            crawl_metrics()["queue"].set(0 if status.finished else status.total - status.done)
        except Exception:  # noqa: BLE001 - metrics must never break crawling
            pass

    async def _dispatch(self, sources: list[Source], status: RoundStatus) -> list[Source]:
        """Crawl a chunk of one lane on some crawler; returns the sources whose full-content
        pass should follow."""
        last_error = ""
        avoid: int | None = None
        for _attempt in range(MAX_DISPATCH_ATTEMPTS):
            index = self._least_busy(avoid)
            self._in_flight[index] += 1
            try:
                outcomes = await self._crawlers[index].crawl_lane.remote(sources, self._host_delay_s)
            except RayActorError as exc:
                # The crawler died mid-chunk; it restarts, and the chunk goes to another crawler
                # (sources it had finished are crawled again: the upsert makes that harmless).
                last_error = f"crawler died: {exc.__class__.__name__}"
                status.redispatched += 1
                avoid = index
                log.warning("scheduler: %d source(s) from %s: %s; re-dispatching", len(sources),
                            host_of(sources[0].url), last_error)
                continue
            except RayTaskError as exc:
                last_error = str(exc.cause) if exc.cause else str(exc)
                log.warning("scheduler: %d source(s) failed: %s", len(sources), last_error.splitlines()[0])
                break
            finally:
                self._in_flight[index] -= 1
            for outcome in outcomes:
                status.record(outcome)
            return [source for source, outcome in zip(sources, outcomes) if outcome.get("wants_pages")]
        for _source in sources:
            status.record({"ok": False, "error_kind": "dispatch", "error": last_error})
        return []


def take_chunk(first: tuple[Source, float], queue: "asyncio.Queue[tuple[Source, float] | None]",
               workers: int) -> tuple[list[tuple[Source, float]], bool]:
    """A lane worker's next call: `first` and what else its host has queued right now (the
    crawler keeps to one request at a time and the pause between them), shared out among the
    host's `workers` so that all of them have work, at most LANE_CHUNK. A chunk ends after a
    source that failed last time: it may take seconds, and the sources behind it would wait for
    it. Also returns whether the end-of-lane marker was taken."""
    chunk = [first]
    size = min(LANE_CHUNK, -(-(queue.qsize() + 1) // workers))
    while len(chunk) < size and not queue.empty() and chunk[-1][0].consecutive_errors == 0:
        more = queue.get_nowait()
        if more is None:
            return chunk, True
        chunk.append(more)
    return chunk, False


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _observe_host_wait(seconds: float) -> None:
    try:
        from actors.metrics import crawl_metrics

        crawl_metrics()["host_wait_s"].observe(seconds)
    except Exception:  # noqa: BLE001 - metrics must never break crawling
        pass


def get_or_create_scheduler(pool_size: int = 0, tick_s: float | None = None) -> Any:
    """The one scheduler of the cluster (named, detached: it outlives the CLI that made it)."""
    from cluster.ray_cluster import NAMESPACE

    return CrawlScheduler.options(
        name=SCHEDULER_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True
    ).remote(pool_size, tick_s)
