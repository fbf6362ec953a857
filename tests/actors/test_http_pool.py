"""The fetch client's connection pooling (actors.http_pool) against real servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from actors import fetch as fetch_module
from actors.fetch import fetch, make_client, make_transport
from actors.http_pool import OriginPools
from tests.actors.conftest import LOOPBACK_POLICY as POLICY
from tests.actors.conftest import LocalServer

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def client_port(request: web.Request) -> int:
    transport = request.transport
    assert transport is not None
    return int(transport.get_extra_info("peername")[1])


@pytest_asyncio.fixture
async def other_server() -> AsyncIterator[str]:
    """A second origin: another aiohttp server on 127.0.0.1, answering every path."""

    async def feed(request: web.Request) -> web.Response:
        return web.Response(body=FEED, headers={"Content-Type": "application/rss+xml"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", feed)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


def pools_of(client: httpx.AsyncClient) -> OriginPools:
    pools = client._transport._pool  # type: ignore[attr-defined]
    assert isinstance(pools, OriginPools)
    return pools


async def test_200_304_and_empty_redirects_keep_their_connection(server: LocalServer) -> None:
    ports: list[int] = []

    async def conditional(request: web.Request) -> web.Response:
        ports.append(client_port(request))
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(body=FEED, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    async def moved(request: web.Request) -> web.Response:
        ports.append(client_port(request))
        return web.Response(status=302, headers={"Location": "/feed.xml"})

    url = server.add("/feed.xml", conditional)
    old_url = server.add("/old.xml", moved)
    async with make_client(POLICY) as client:
        first = await fetch(client, url, POLICY)
        assert first.status == 200
        for _ in range(5):
            assert (await fetch(client, url, POLICY, etag=first.etag)).not_modified
        assert (await fetch(client, old_url, POLICY)).status == 200
        assert len(ports) == 8
        # One TCP connection for all of them: closing an unread 304 or an empty redirect used to
        # close the connection, so every refresh opened a new one.
        assert len(set(ports)) == 1
        assert pools_of(client).connection_count() == 1


async def test_an_error_body_is_not_waited_for(server: LocalServer) -> None:
    url = server.reply("/missing.xml", b"x" * 5000, status=404)
    async with make_client(POLICY) as client:
        with pytest.raises(fetch_module.FetchError) as caught:
            await fetch(client, url, POLICY)
        assert caught.value.status == 404


async def test_idle_origins_beyond_the_bound_are_closed(
    server: LocalServer, other_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch_module, "MAX_ORIGINS", 1)
    first = server.reply("/feed.xml", FEED, headers={"Content-Type": "application/rss+xml"})
    async with make_client(POLICY, transport=make_transport(POLICY)) as client:
        assert (await fetch(client, first, POLICY)).status == 200
        assert pools_of(client).connection_count() == 1
        assert (await fetch(client, f"{other_server}/feed.xml", POLICY)).status == 200
        # The first origin's idle connection went when the second origin came.
        assert pools_of(client).connection_count() == 1
        assert (await fetch(client, first, POLICY)).status == 200


async def test_many_concurrent_requests_to_two_origins(server: LocalServer, other_server: str) -> None:
    url = server.reply("/feed.xml", FEED, headers={"Content-Type": "application/rss+xml"})
    async with make_client(POLICY) as client:
        results = await asyncio.gather(*(fetch(client, url if i % 2 else f"{other_server}/{i}.xml", POLICY)
                                         for i in range(60)))
        assert all(result.status == 200 and result.body == FEED for result in results)
        assert pools_of(client).connection_count() <= 2 * fetch_module.MAX_CONNECTIONS_PER_ORIGIN
