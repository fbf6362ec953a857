"""PostgreSQL restarted in the middle of a crawl round: the round finishes late, nothing is lost.
PostgreSQL crashing right after a round: what the round stored survives, and the next round finds
nothing to add."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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
from tests.polling import poll, round_finished


def rss(name: str, items: int) -> web.Response:
    body = "".join(f"<item><guid>{name}-{i}</guid><title>{name} {i}</title></item>" for i in range(items))
    return web.Response(body=f'<rss version="2.0"><channel><title>{name}</title>{body}</channel></rss>'.encode(),
                        content_type="application/rss+xml")


async def assert_stored_once(db: asyncpg.Pool, expected: int) -> None:
    assert await article_store.count_articles(db) == expected
    assert await db.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM articles GROUP BY source_id, dedupe_key HAVING count(*) > 1) d") == 0


@asynccontextmanager
async def crawl_and_database(name: str, feeds: int, db: asyncpg.Pool,
                             test_env: SessionServices) -> AsyncIterator[tuple[Any, EmbeddedPostgres]]:
    """A scheduler with two ready crawlers (one lane per feed) and the session's PostgreSQL, which
    runs again afterwards whatever the test did to it."""
    if not test_env.urls.embedded_postgres:
        pytest.fail("this test stops the embedded PostgreSQL; run it without NEWSRAY_DATABASE_URL")
    scheduler = CrawlScheduler.options(name=f"{name}-{uuid.uuid4().hex[:6]}").remote(2, 3600.0, feeds, 0.0)
    postgres = EmbeddedPostgres(test_env.data_dir)
    try:
        await asyncio.gather(*(c.ping.remote() for c in await scheduler.crawlers.remote()))
        yield scheduler, postgres
    finally:
        ray.kill(scheduler)
        if not postgres.is_running():
            postgres.start()
        await db.expire_connections()


async def test_postgres_restart_mid_round(ray_cluster: str, db: asyncpg.Pool, server, test_env: SessionServices) -> None:
    feeds, items = 12, 4
    answered: list[str] = []

    async def slow_feed(request: web.Request) -> web.Response:
        name = request.path.strip("/").split(".")[0]
        await asyncio.sleep(1.0)  # the server's latency: fetches are in flight when PostgreSQL goes
        answered.append(name)
        return rss(name, items)

    await source_store.add_sources(db, [NewSource(url=server.add(f"/f{i}.xml", slow_feed)) for i in range(feeds)])
    async with crawl_and_database("restart", feeds, db, test_env) as (scheduler, postgres):
        round_id = await scheduler.start_round.remote(False)
        await poll(lambda: sum(server.hits.values()) == feeds, "every fetch to start", 30)
        await asyncio.to_thread(postgres.stop, "fast")
        # Every feed has been downloaded while the database is down: crawlers hold them in memory.
        await poll(lambda: len(answered) == feeds, "every feed to be answered", 30)
        await asyncio.to_thread(postgres.start)
        status = await round_finished(scheduler, round_id)
        assert status["total"] == feeds and status["failed"] == 0, status
        await db.expire_connections()
        await assert_stored_once(db, feeds * items)


async def test_postgres_crash_after_a_round_loses_nothing(
    ray_cluster: str, db: asyncpg.Pool, server, test_env: SessionServices
) -> None:
    feeds, items = 8, 5

    async def feed(request: web.Request) -> web.Response:
        return rss(request.path.strip("/").split(".")[0], items)

    await source_store.add_sources(db, [NewSource(url=server.add(f"/c{i}.xml", feed)) for i in range(feeds)])
    async with crawl_and_database("crash", feeds, db, test_env) as (scheduler, postgres):
        first = await round_finished(scheduler, await scheduler.start_round.remote(False))
        assert first["total"] == feeds and first["failed"] == 0 and first["inserted"] == feeds * items, first
        # Killed at once: no checkpoint, the server's buffers gone; recovery replays the WAL.
        await asyncio.to_thread(postgres.stop, "immediate")
        await asyncio.to_thread(postgres.start)
        await db.expire_connections()
        await assert_stored_once(db, feeds * items)
        assert await db.fetchval("SELECT count(*) FROM sources WHERE last_success_at IS NOT NULL") == feeds
        # The crawlers' pools lost their connections to the crash; the next round works regardless.
        second = await round_finished(scheduler, await scheduler.start_round.remote(True))
        assert second["total"] == feeds and second["failed"] == 0 and second["inserted"] == 0, second
        await assert_stored_once(db, feeds * items)
