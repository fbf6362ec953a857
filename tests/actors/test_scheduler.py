"""The CrawlScheduler and FeedCrawler actors on the session's real Ray cluster."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
import ray
from aiohttp import web

from actors.scheduler import CrawlScheduler
from cluster.samplefeeds import SampleFeedServer, start_sample_server
from cluster.store import articles as article_store
from cluster.store import sources as source_store
from cluster.store.sources import NewSource


@pytest.fixture(scope="module")
def sample_server() -> Iterator[SampleFeedServer]:
    with start_sample_server() as server:
        yield server


def new_scheduler(pool_size: int = 2) -> Any:
    # A private scheduler per test (the named one belongs to `newsray up`); no periodic loop.
    return CrawlScheduler.options(name=f"test-scheduler-{uuid.uuid4().hex[:8]}").remote(pool_size, 3600.0)


async def duplicates(db: asyncpg.Pool) -> int:
    return int(await db.fetchval(
        "SELECT count(*) FROM (SELECT source_id, dedupe_key FROM articles GROUP BY 1, 2 HAVING count(*) > 1) d"))


async def test_rounds_store_every_entry_once(ray_cluster: str, db: asyncpg.Pool, sample_server: SampleFeedServer,
                                             closed_port: int) -> None:
    await source_store.add_sources(db, [NewSource(url=u) for u in sample_server.feed_urls])
    await source_store.add_source(db, NewSource(url=f"http://127.0.0.1:{closed_port}/down.xml"))
    scheduler = new_scheduler()
    try:
        first = await scheduler.run_round.remote(False)
        assert first["total"] == len(sample_server.feed_urls) + 1
        assert first["failed"] == 1 and first["errors"] == {"connect": 1}
        stored = await article_store.count_articles(db)
        assert stored == first["inserted"] >= 120
        # Nothing is due any more: a plain round finds no work.
        assert (await scheduler.run_round.remote(False))["total"] == 0
        for _ in range(2):
            forced = await scheduler.run_round.remote(True)
            # Forced: every enabled source, the failing one included, whether due or not.
            assert forced["total"] == len(sample_server.feed_urls) + 1
            assert forced["inserted"] == 0 and forced["failed"] == 1
        assert await article_store.count_articles(db) == stored
        assert await duplicates(db) == 0
        down = [s for s in await source_store.list_sources(db) if s.url.endswith("/down.xml")][0]
        assert down.last_error and down.last_error.startswith("fetch: ")
    finally:
        ray.kill(scheduler)


async def test_killed_crawler_mid_round_loses_and_duplicates_nothing(ray_cluster: str, db: asyncpg.Pool, server) -> None:
    feeds = 24

    async def slow_feed(request: web.Request) -> web.Response:
        # Answers slowly so that the round is certainly in flight when a crawler is killed.
        name = request.path.strip("/").split(".")[0]
        await asyncio.sleep(1.0)
        items = "".join(
            f"<item><guid>{name}-{i}</guid><title>{name} item {i}</title><link>{server.base_url}/{name}/{i}</link></item>"
            for i in range(3))
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>{items}</channel></rss>'
        return web.Response(body=body.encode(), content_type="application/rss+xml")

    urls = [server.add(f"/slow{i}.xml", slow_feed) for i in range(feeds)]
    await source_store.add_sources(db, [NewSource(url=u) for u in urls])
    scheduler = new_scheduler(pool_size=2)
    try:
        crawlers = await scheduler.crawlers.remote()
        await asyncio.gather(*(c.ping.remote() for c in crawlers))
        round_id = await scheduler.start_round.remote(False)
        deadline = time.monotonic() + 30
        while sum(server.hits.values()) < feeds // 2:  # requests are in flight on both crawlers
            assert time.monotonic() < deadline, "the round never started"
            await asyncio.sleep(0.05)
        ray.kill(crawlers[0], no_restart=False)
        status: dict[str, Any] = {}
        deadline = time.monotonic() + 90
        while not status.get("finished"):
            assert time.monotonic() < deadline, f"round did not finish: {status}"
            await asyncio.sleep(0.1)
            status = await scheduler.round_status.remote(round_id)
        assert status["total"] == feeds and status["failed"] == 0, status
        assert status["redispatched"] >= 1, "the kill hit no fetch in flight: the test proved nothing"
        assert await article_store.count_articles(db) == feeds * 3
        assert await duplicates(db) == 0
    finally:
        ray.kill(scheduler)
