"""GET /health with everything up, with the database down and with Redis down (real servers,
or a real closed port on 127.0.0.1)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio
import redis.asyncio as redis_async

import cluster
from cluster.db import create_pool
from deployments.api import create_app
from deployments.backends import Backends
from tests.deployments.support import client_for


@pytest_asyncio.fixture(loop_scope="session")
async def closed_port() -> AsyncIterator[int]:
    # Bound but never listening: connecting is refused at once, and no one else can take it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def test_health_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["version"] == cluster.__version__
    assert body["uptime_s"] >= 0
    assert body["database"]["ok"] is True and body["database"]["pool_size"] >= 1
    assert 0 <= body["database"]["pool_in_use"] <= body["database"]["pool_size"]
    assert body["redis"] == {"ok": True}


async def test_database_down_is_503(db: asyncpg.Pool, process_clients: None, closed_port: int) -> None:
    async def unreachable_pool() -> asyncpg.Pool:
        return await create_pool(f"postgresql://newsray:hunter2@127.0.0.1:{closed_port}/newsray")

    app = create_app(backends=Backends(read_pool=unreachable_pool, pool=unreachable_pool))
    async with client_for(app) as http:
        response = await http.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "down"
        assert body["database"] == {"ok": False, "pool_size": 0, "pool_in_use": 0}
        assert body["redis"] == {"ok": True}
        # Routes that need the database say so as JSON, without the URL or its password.
        listing = await http.get("/api/v1/articles")
        assert listing.status_code == 503
        assert listing.json()["error"]["message"].startswith("api: ")
        assert "hunter2" not in listing.text and str(closed_port) not in listing.text


async def test_redis_down_is_degraded_but_200(db: asyncpg.Pool, process_clients: None, closed_port: int) -> None:
    unreachable = redis_async.from_url(f"redis://127.0.0.1:{closed_port}", socket_connect_timeout=1)
    try:
        app = create_app(backends=Backends(redis=lambda: unreachable))
        async with client_for(app) as http:
            response = await http.get("/health")
        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "degraded"
        assert body["database"]["ok"] is True and body["redis"] == {"ok": False}
    finally:
        await unreachable.aclose()
