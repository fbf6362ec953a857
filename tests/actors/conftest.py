"""Shared fixtures for the crawling helpers: a real HTTP server on 127.0.0.1.

Every test gets its own aiohttp server (starting one takes a few
milliseconds), registers handlers for the paths it needs and reads back what
the server saw. Nothing here ever talks to a non-loopback address.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from actors.fetch import FetchPolicy, make_client

# What tests fetch with: loopback allowed (the guard refuses it otherwise), no retries.
LOOPBACK_POLICY = FetchPolicy(timeout_s=5, allowed_networks=("127.0.0.0/8",), max_retries=0)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class LocalServer:
    """A loopback HTTP server whose routes each test fills in."""

    base_url: str = ""
    routes: dict[str, Handler] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)
    requests: list[web.Request] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def add(self, path: str, handler: Handler) -> str:
        self.routes[path] = handler
        return self.url(path)

    def reply(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        """A fixed response (aiohttp sends ``body`` as is, even when a
        Content-Encoding header says it is compressed)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(body=body, status=status, headers=headers or {})

        return self.add(path, handler)

    def stream(
        self,
        path: str,
        chunk: bytes,
        *,
        limit: int,
        interval_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Send ``chunk`` over and over (chunked, or under the given headers)
        up to ``limit`` bytes, stopping quietly when the client hangs up."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers=headers or {"Content-Type": "application/rss+xml"})
            await response.prepare(request)
            sent = 0
            try:
                while sent < limit:
                    await response.write(chunk)
                    sent += len(chunk)
                    if interval_s:
                        await asyncio.sleep(interval_s)
            except ConnectionError:  # the client gave up, as intended
                pass
            return response

        return self.add(path, handler)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.reply(path, status=status, headers={"Location": location})

    def sequence(self, path: str, *responses: tuple[int, dict[str, str], bytes]) -> str:
        """Answer the n-th request with the n-th response (the last one repeats)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            status, headers, body = responses[min(self.hits[path], len(responses)) - 1]
            return web.Response(status=status, headers=headers, body=body)

        return self.add(path, handler)


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """The crawler's HTTP client on LOOPBACK_POLICY."""
    async with make_client(LOOPBACK_POLICY) as client:
        yield client


@pytest_asyncio.fixture
async def server() -> AsyncIterator[LocalServer]:
    state = LocalServer()

    async def dispatch(request: web.Request) -> web.StreamResponse:
        state.hits[request.path] += 1
        state.requests.append(request)
        handler = state.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="no such test route")
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    # handler_cancellation: a streaming handler stops when the client hangs up,
    # so teardown never waits for a drip or a 50 MB body to finish.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    state.base_url = f"http://{host}:{port}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture(scope="session")
def gzip_bomb() -> bytes:
    """200 MB of zeros gzip-compressed to about 200 KB, built in 1 MB steps so
    the 200 MB never exist at once."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1 << 20)
    parts = [compressor.compress(zeros) for _ in range(200)]
    parts.append(compressor.flush())
    return b"".join(parts)
