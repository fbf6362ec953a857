"""The FeedCrawler actor: many concurrent fetches per actor, one HTTP client per actor."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from dataclasses import asdict

import asyncpg
import ray

from actors.announce import Announcer
from actors.crawl import CrawlOutcome, NotModifiedBatch, crawl_site, crawl_source, fetch_policy, ingest_push
from actors.fetch import make_client
from actors.full_content import fetch_full_contents
from actors.metrics import record_outcome, record_store_group
from actors.robots import RobotsCache
from actors.store_batch import FeedStoreBatcher
from cluster.store.sources import Source

log = logging.getLogger(__name__)

# Crawling is waiting on the network; an actor holds many fetches at once for a tenth of a CPU.
CRAWLER_NUM_CPUS = 0.1
# A source that times out holds its slot through every attempt and retry pause (seconds), and a
# round starts with the sources that failed before (scheduler.py): the slots must outnumber them
# (the crawl benchmark has about a hundred, on two actors). Not many more: every busy slot adds to
# each fetch's wait for the event loop, and the fetch deadline counts that wait.
MAX_CONCURRENT_FETCHES = 64


@ray.remote(num_cpus=CRAWLER_NUM_CPUS, max_restarts=-1, max_concurrency=MAX_CONCURRENT_FETCHES * 2)
class FeedCrawler:
    # Its database work is single statements and transactions that close themselves: it uses the
    # stateless pool (no reset round trip after each; cluster/db.py), of crawl_db_connections.
    def __init__(self) -> None:
        import cluster.db  # noqa: F401 - imported now rather than during the first crawl, so frozen below
        import cluster.redis_client  # noqa: F401
        from cluster.settings import get_settings

        self._settings = get_settings()
        self._policy = fetch_policy(self._settings)
        self._client = None
        self._robots: RobotsCache | None = None
        self._announcer: Announcer | None = None
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_FETCHES)
        self._stores = FeedStoreBatcher(on_group=record_store_group)
        # What exists now (Ray, the imported libraries) lives as long as the process: keep it out
        # of the cyclic GC, which otherwise walks all of it in every full collection while a crawl
        # allocates (deployments/api.py does the same).
        gc.collect()
        gc.freeze()

    async def crawl_lane(self, sources: list[Source], delay_s: float) -> list[dict[str, object]]:
        """Crawl sources of one host one after the other, `delay_s` apart (the scheduler's host
        lane, handed over in chunks to save a Ray call per source). One outcome per source, in
        order; a source whose crawl raised (the database is down) gets a "dispatch" failure and
        comes back when its claim lease runs out. The 304s of the chunk are recorded together at
        its end."""
        outcomes: list[dict[str, object]] = []
        not_modified = NotModifiedBatch()
        for position, source in enumerate(sources):
            if position and delay_s > 0:
                await asyncio.sleep(delay_s)
            try:
                outcomes.append(await self.crawl(source, not_modified))
            except Exception as exc:  # noqa: BLE001 - one source's failure must not lose the others' outcomes
                outcomes.append(_dispatch_failure(source.id, exc))
        try:
            await not_modified.flush(await self._pool())
        except Exception as exc:  # noqa: BLE001 - as above: those sources come back after their lease
            outcomes = [_dispatch_failure(source.id, exc) if outcome.get("not_modified") else outcome
                        for source, outcome in zip(sources, outcomes)]
        return outcomes

    async def crawl(self, source: Source, not_modified: NotModifiedBatch | None = None) -> dict[str, object]:
        """Crawl one source; the outcome is also recorded on the source's row (a 304 in
        `not_modified` instead, when given: the caller flushes it)."""
        if self._client is None:
            self._client = make_client(self._policy)
        async with self._limit:
            pool = await self._pool()
            announcer = self._announcements()
            if source.kind == "site":
                outcome: CrawlOutcome = await crawl_site(pool, source, self._policy, self._settings.user_agent,
                                                         self._robots_cache(), announcer)
            else:
                outcome = await crawl_source(self._client, pool, source, self._policy, announcer,
                                             default_interval_s=self._settings.crawl_interval_s,
                                             public_url=self._settings.public_url,
                                             full_content=self._settings.full_content, not_modified=not_modified,
                                             stores=self._stores)
        result = outcome.as_dict()
        try:
            record_outcome(result)
        except Exception:  # noqa: BLE001 - metrics must never break crawling
            log.debug("crawl: metrics unavailable", exc_info=True)
        return result

    async def fetch_pages(self, source_id: int, delay_s: float) -> dict[str, object]:
        """The full-content pass for one source (its host's lane calls this after the feeds)."""
        if self._client is None:
            self._client = make_client(self._policy)
        report = await fetch_full_contents(self._client, await self._pool(), source_id, self._policy,
                                           self._robots_cache(), delay_s=delay_s)
        return asdict(report)

    async def _pool(self) -> asyncpg.Pool:
        from cluster.db import get_stateless_pool

        return await get_stateless_pool(self._settings.crawl_db_connections)

    def _robots_cache(self) -> RobotsCache:
        if self._robots is None:
            if self._client is None:
                self._client = make_client(self._policy)
            self._robots = RobotsCache(self._client, self._policy, user_agent=self._settings.user_agent)
        return self._robots

    async def ingest(self, source_id: int, body: bytes, content_type: str | None) -> dict[str, object]:
        """Store a WebSub push for a source (the Api checked its signature)."""
        from cluster.store.sources import get_source

        pool = await self._pool()
        source = await get_source(pool, source_id)
        if source is None:
            return {"ok": False, "error": f"crawl: no source #{source_id}"}
        outcome = await ingest_push(pool, source, body, content_type, self._announcements())
        return outcome.as_dict()

    def _announcements(self) -> Announcer | None:
        """This crawler's announcer of new articles; None without Redis (nothing to announce on)."""
        if self._announcer is None:
            from cluster.redis_client import get_redis

            try:
                self._announcer = Announcer(get_redis())
            except RuntimeError:
                return None
        return self._announcer

    async def ping(self) -> bool:
        return True

    async def stats(self) -> dict[str, int]:
        """This process's id and memory (current and peak RSS), for operators and benchmarks."""
        import resource

        import psutil

        return {"pid": os.getpid(), "rss_bytes": int(psutil.Process().memory_info().rss),
                # ru_maxrss is in KiB on Linux.
                "peak_rss_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
                "store_statements": self._stores.statements, "stored_feeds": self._stores.feeds}


def _dispatch_failure(source_id: int, exc: Exception) -> dict[str, object]:
    log.warning("crawl: source %s failed: %s", source_id, exc)
    return {"source_id": source_id, "ok": False, "error_kind": "dispatch",
            "error": f"crawl: {type(exc).__name__}: {exc}"}
