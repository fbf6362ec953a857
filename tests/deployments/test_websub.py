"""WebSub end to end: subscribe through the hub, verification of intent, signed pushes stored fast."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import asyncpg
import httpx
import pytest
import pytest_asyncio
import uvicorn
from aiohttp import web

from actors.crawl import crawl_source
from actors.fetch import make_client
from actors.scheduler import get_or_create_scheduler
from cluster.store import sources as source_store
from cluster.store.sources import NewSource
from deployments.api import create_app
from tests.conftest import free_port
from tests.actors.conftest import LOOPBACK_POLICY as POLICY
from tests.polling import poll


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    """The real Api app under uvicorn on loopback: the callback URL hubs call."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "api did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@dataclass
class Hub:
    url: str = ""
    feed_url: str = ""
    subscriptions: dict[str, dict[str, str]] = field(default_factory=dict)  # topic → form
    verified: dict[str, bool] = field(default_factory=dict)

    async def push(self, topic: str, body: bytes, secret: str | None = None) -> httpx.Response:
        form = self.subscriptions[topic]
        signature = hmac.new((secret or form["hub.secret"]).encode(), body, hashlib.sha256).hexdigest()
        async with httpx.AsyncClient(trust_env=False) as client:
            return await client.post(form["hub.callback"], content=body, headers={
                "Content-Type": "application/rss+xml", "X-Hub-Signature": f"sha256={signature}"})


def rss(hub_url: str, *guids: str) -> bytes:
    items = "".join(f"<item><guid>{g}</guid><title>Story {g}</title><description>Text {g}</description></item>"
                    for g in guids)
    return (f'<?xml version="1.0"?><rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>'
            f'<title>Pushed</title><atom:link rel="hub" href="{hub_url}"/>{items}</channel></rss>').encode()


@pytest_asyncio.fixture
async def hub() -> AsyncIterator[Hub]:
    state = Hub()
    tasks: set[asyncio.Task[None]] = set()

    async def verify(form: dict[str, str]) -> None:
        params = {"hub.mode": "subscribe", "hub.topic": form["hub.topic"], "hub.challenge": "c-12345",
                  "hub.lease_seconds": form["hub.lease_seconds"]}
        async with httpx.AsyncClient(trust_env=False) as client:
            answer = await client.get(form["hub.callback"], params=params)
        state.verified[form["hub.topic"]] = answer.status_code == 200 and answer.text == "c-12345"

    async def subscribe(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        state.subscriptions[form["hub.topic"]] = form
        task = asyncio.ensure_future(verify(form))  # verification of intent happens after the 202
        tasks.add(task)
        return web.Response(status=202)

    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=rss(state.url, "one"), content_type="application/rss+xml")

    app = web.Application()
    app.router.add_post("/hub", subscribe)
    app.router.add_get("/feed.xml", feed)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.url, state.feed_url = f"http://{host}:{port}/hub", f"http://{host}:{port}/feed.xml"
    yield state
    await asyncio.gather(*tasks, return_exceptions=True)
    await runner.cleanup()


async def test_subscribe_verify_and_push(ray_cluster: str, db: asyncpg.Pool, api_url: str, hub: Hub) -> None:
    # The Api hands pushes to the cluster's scheduler; in a running app its crawlers are up.
    scheduler = get_or_create_scheduler()
    await asyncio.gather(*(crawler.ping.remote() for crawler in await scheduler.crawlers.remote()))
    source, _ = await source_store.add_source(db, NewSource(url=hub.feed_url))
    async with make_client(POLICY) as client:
        outcome = await crawl_source(client, db, source, POLICY, public_url=api_url)
    assert outcome.ok and outcome.inserted == 1
    topic = source.url
    assert hub.subscriptions[topic]["hub.callback"] == f"{api_url}/websub/{source.id}"
    await poll(lambda: topic in hub.verified, "the hub to verify the subscription", 10, interval_s=0.02)
    assert hub.verified[topic]
    row = await source_store.get_source(db, source.id)
    assert row is not None and row.websub_lease_until is not None and row.hub_url == hub.url

    # A forged push is refused and stores nothing.
    forged = await hub.push(topic, rss(hub.url, "forged"), secret="not-the-secret")
    assert forged.status_code == 403
    # A signed push is stored within a second.
    started = time.monotonic()
    answer = await hub.push(topic, rss(hub.url, "one", "two"))
    assert answer.status_code == 204
    stored = await db.fetchval("SELECT count(*) FROM articles WHERE source_id = $1 AND title = 'Story two'",
                               source.id)
    assert stored == 1 and time.monotonic() - started < 1.0
    assert await db.fetchval("SELECT count(*) FROM articles WHERE title = 'Story forged'") == 0
    assert await db.fetchval("SELECT count(*) FROM articles WHERE source_id = $1", source.id) == 2


async def test_verification_for_an_unknown_topic_is_refused(db: asyncpg.Pool, api_url: str) -> None:
    source, _ = await source_store.add_source(db, NewSource(url="http://127.0.0.1:9/never.xml"))
    async with httpx.AsyncClient(trust_env=False) as client:
        answer = await client.get(f"{api_url}/websub/{source.id}", params={
            "hub.mode": "subscribe", "hub.topic": "http://127.0.0.1:9/other.xml", "hub.challenge": "x"})
        assert answer.status_code == 404
        push = await client.post(f"{api_url}/websub/{source.id}", content=b"<rss/>")
        assert push.status_code == 404
