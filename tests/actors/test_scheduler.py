"""The CrawlScheduler and FeedCrawler actors on the session's real Ray cluster."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import ray
from aiohttp import web

from actors.scheduler import CrawlScheduler
from cluster.samplefeeds import SampleFeedServer
from cluster.store import articles as article_store
from cluster.store import sources as source_store
from cluster.store.sources import NewSource
from tests.polling import poll, poll_for, round_finished


def new_scheduler(pool_size: int = 2, host_concurrency: int = 1, host_delay_s: float = 0.0) -> Any:
    # A private scheduler per test (the named one belongs to `newsray up`); no periodic loop.
    return CrawlScheduler.options(name=f"test-scheduler-{uuid.uuid4().hex[:8]}").remote(
        pool_size, 3600.0, host_concurrency, host_delay_s)


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
    scheduler = new_scheduler(pool_size=2, host_concurrency=8)
    try:
        crawlers = await scheduler.crawlers.remote()
        await asyncio.gather(*(c.ping.remote() for c in crawlers))
        round_id = await scheduler.start_round.remote(False)
        # Requests in flight on both crawlers.
        await poll(lambda: sum(server.hits.values()) >= feeds // 2, "the round to start", 30)
        ray.kill(crawlers[0], no_restart=False)
        status = await round_finished(scheduler, round_id)
        assert status["total"] == feeds and status["failed"] == 0, status
        assert status["redispatched"] >= 1, "the kill hit no fetch in flight: the test proved nothing"
        assert await article_store.count_articles(db) == feeds * 3
        assert await duplicates(db) == 0
    finally:
        ray.kill(scheduler)


class HostsServer:
    """One aiohttp app listening on several loopback addresses: several "hosts" for politeness
    tests, each counting its requests in flight."""

    def __init__(self) -> None:
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.starts: dict[str, list[float]] = {}
        self.hosts: list[str] = []
        self.port = 0
        self.max_total = 0

    async def handle(self, request: web.Request) -> web.Response:
        host = request.host.split(":")[0]
        self.in_flight[host] = self.in_flight.get(host, 0) + 1
        self.max_in_flight[host] = max(self.max_in_flight.get(host, 0), self.in_flight[host])
        self.max_total = max(self.max_total, sum(self.in_flight.values()))
        self.starts.setdefault(host, []).append(time.monotonic())
        try:
            await asyncio.sleep(0.05)  # the server's own latency, so overlapping requests would show
            name = request.path.strip("/")
            body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{host}</title>'
                    f"<item><guid>{host}/{name}</guid><title>{name}</title></item></channel></rss>")
            return web.Response(body=body.encode(), content_type="application/rss+xml")
        finally:
            self.in_flight[host] -= 1


async def test_politeness_one_request_per_host_with_a_pause(ray_cluster: str, db: asyncpg.Pool) -> None:
    hosts = HostsServer()
    app = web.Application()
    app.router.add_get("/{name}", hosts.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    first = web.TCPSite(runner, "127.0.0.1", 0)
    await first.start()
    port = runner.addresses[0][1]
    addresses = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    for address in addresses[1:]:
        await web.TCPSite(runner, address, port).start()
    per_host, delay = 6, 0.2
    urls = [f"http://{a}:{port}/feed{i}" for a in addresses for i in range(per_host)]
    await source_store.add_sources(db, [NewSource(url=u) for u in urls])
    scheduler = new_scheduler(pool_size=2, host_concurrency=1, host_delay_s=delay)
    try:
        await asyncio.gather(*(c.ping.remote() for c in await scheduler.crawlers.remote()))
        result = await scheduler.run_round.remote(False)
        assert result["total"] == len(urls) and result["failed"] == 0 and result["inserted"] == len(urls)
        assert hosts.max_in_flight == {a: 1 for a in addresses}
        for address in addresses:
            # Feeds, then robots.txt and the pages of the new articles: all one at a time, with the pause.
            gaps = [b - a for a, b in zip(hosts.starts[address], hosts.starts[address][1:])]
            assert len(gaps) >= per_host - 1 and min(gaps) >= delay
        # Hosts are crawled side by side (seen by the server, not by a clock a busy machine skews).
        assert hosts.max_total >= 2
    finally:
        ray.kill(scheduler)
        await runner.cleanup()


async def test_crawl_metrics_reach_the_metrics_agent(ray_cluster: str, db: asyncpg.Pool,
                                                     sample_server: SampleFeedServer) -> None:
    """Fetch outcomes, bytes, parse time, articles, queue depth, host waits and store groups are exported
    through Ray's metrics agent (what the dashboard's metrics view and Prometheus scrape)."""
    import httpx

    await source_store.add_sources(db, [NewSource(url=u) for u in sample_server.feed_urls[:2]])
    scheduler = new_scheduler()
    try:
        assert (await scheduler.run_round.remote(False))["inserted"] > 0
        port = ray.nodes()[0]["MetricsExportPort"]
        wanted = {"newsray_crawl_fetches_total", "newsray_crawl_bytes_total", "newsray_crawl_parse_seconds",
                  "newsray_crawl_articles_total", "newsray_crawl_host_wait_seconds", "newsray_crawl_queue_depth",
                  "newsray_crawl_store_group_feeds"}

        async def exported() -> str:
            async with httpx.AsyncClient(trust_env=False) as client:
                return (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=10)).text

        # The agent exports on an interval.
        text = await poll_for(exported, lambda text: all(name in text for name in wanted),
                              f"the metrics {sorted(wanted)}", 90, interval_s=1.0)
        assert 'outcome="ok"' in text
    finally:
        ray.kill(scheduler)
