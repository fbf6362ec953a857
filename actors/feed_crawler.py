"""The FeedCrawler actor: many concurrent fetches per actor, one HTTP client per actor."""

from __future__ import annotations

import asyncio
import logging

import ray

from actors.crawl import CrawlOutcome, crawl_source, fetch_policy, ingest_push
from actors.fetch import make_client
from actors.metrics import record_outcome
from cluster.store.sources import Source

log = logging.getLogger(__name__)

# Crawling is waiting on the network; an actor holds many fetches at once for a tenth of a CPU.
CRAWLER_NUM_CPUS = 0.1
MAX_CONCURRENT_FETCHES = 32


@ray.remote(num_cpus=CRAWLER_NUM_CPUS, max_restarts=-1, max_concurrency=MAX_CONCURRENT_FETCHES * 2)
class FeedCrawler:
    def __init__(self) -> None:
        from cluster.settings import get_settings

        self._settings = get_settings()
        self._policy = fetch_policy(self._settings)
        self._client = None
        self._limit = asyncio.Semaphore(MAX_CONCURRENT_FETCHES)

    async def crawl(self, source: Source) -> dict[str, object]:
        """Crawl one source; the outcome is also recorded on the source's row."""
        from cluster.db import get_pool

        if self._client is None:
            self._client = make_client(self._policy)
        async with self._limit:
            pool = await get_pool()
            redis = self._redis()
            outcome: CrawlOutcome = await crawl_source(self._client, pool, source, self._policy, redis,
                                                       default_interval_s=self._settings.crawl_interval_s,
                                                       public_url=self._settings.public_url)
        result = outcome.as_dict()
        try:
            record_outcome(result)
        except Exception:  # noqa: BLE001 - metrics must never break crawling
            log.debug("crawl: metrics unavailable", exc_info=True)
        return result

    async def ingest(self, source_id: int, body: bytes, content_type: str | None) -> dict[str, object]:
        """Store a WebSub push for a source (the Api checked its signature)."""
        from cluster.db import get_pool
        from cluster.store.sources import get_source

        pool = await get_pool()
        source = await get_source(pool, source_id)
        if source is None:
            return {"ok": False, "error": f"crawl: no source #{source_id}"}
        outcome = await ingest_push(pool, source, body, content_type, self._redis())
        return outcome.as_dict()

    def _redis(self) -> object | None:
        from cluster.redis_client import get_redis

        try:
            return get_redis()
        except RuntimeError:
            return None

    async def ping(self) -> bool:
        return True
