"""PostgreSQL restarted in the middle of a crawl round: the round finishes late, nothing is lost."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest
import ray
from aiohttp import web

from actors.scheduler import CrawlScheduler
from cluster.services import EmbeddedPostgres
from cluster.store import articles as article_store
from cluster.store import sources as source_store
from cluster.store.sources import NewSource
from tests.conftest import SessionServices


async def wait_for(predicate, timeout_s: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_postgres_restart_mid_round(ray_cluster: str, db: asyncpg.Pool, server, test_env: SessionServices) -> None:
    if not test_env.urls.embedded_postgres:
        pytest.fail("this test restarts the embedded PostgreSQL; run it without NEWSRAY_DATABASE_URL")
    feeds, items = 12, 4
    answered: list[str] = []

    async def slow_feed(request: web.Request) -> web.Response:
        name = request.path.strip("/").split(".")[0]
        await asyncio.sleep(1.0)  # the server's latency: fetches are in flight when PostgreSQL goes
        body = "".join(f"<item><guid>{name}-{i}</guid><title>{name} {i}</title></item>" for i in range(items))
        answered.append(name)
        return web.Response(body=f'<rss version="2.0"><channel><title>{name}</title>{body}</channel></rss>'.encode(),
                            content_type="application/rss+xml")

    await source_store.add_sources(db, [NewSource(url=server.add(f"/f{i}.xml", slow_feed)) for i in range(feeds)])
    scheduler = CrawlScheduler.options(name=f"restart-{uuid.uuid4().hex[:6]}").remote(2, 3600.0, feeds, 0.0)
    postgres = EmbeddedPostgres(test_env.data_dir)
    try:
        await asyncio.gather(*(c.ping.remote() for c in await scheduler.crawlers.remote()))
        round_id = await scheduler.start_round.remote(False)
        await wait_for(lambda: sum(server.hits.values()) == feeds, 30, "fetches never started")
        await asyncio.to_thread(postgres.stop, "fast")
        # Every feed has been downloaded while the database is down: crawlers hold them in memory.
        await wait_for(lambda: len(answered) == feeds, 30, "feeds never answered")
        await asyncio.to_thread(postgres.start)
        status: dict = {}
        deadline = time.monotonic() + 90
        while not status.get("finished"):
            assert time.monotonic() < deadline, f"round never finished: {status}"
            await asyncio.sleep(0.1)
            status = await scheduler.round_status.remote(round_id)
        assert status["total"] == feeds and status["failed"] == 0, status
        await db.expire_connections()
        assert await article_store.count_articles(db) == feeds * items
        assert await db.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM articles GROUP BY source_id, dedupe_key HAVING count(*) > 1) d") == 0
    finally:
        ray.kill(scheduler)
        if not postgres.is_running():
            postgres.start()
        await db.expire_connections()
