"""Fixtures for the account tests: an empty accounts schema and clean Redis counters per
test, and a fresh app (own limiter state) over the session's real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
import redis.asyncio as redis_async
from fastapi import FastAPI

from cluster.keys import PREFIX
from deployments.api import create_app
from deployments.auth.settings import get_auth_settings
from tests.deployments.auth.support import client_for

# Everything the accounts layer keeps in Redis; other keys (pub/sub, caches) are left alone.
OUR_PATTERNS = (f"{PREFIX}rl:*", f"{PREFIX}api:*", f"{PREFIX}auth:*")


@pytest.fixture(scope="module", autouse=True)
def fresh_auth_settings() -> Iterator[None]:
    get_auth_settings.cache_clear()
    yield
    get_auth_settings.cache_clear()


@pytest_asyncio.fixture(loop_scope="session")
async def accounts_db(db: asyncpg.Pool, redis_url: str) -> AsyncIterator[asyncpg.Pool]:
    """`db` (sources and articles emptied) plus no users (which cascades to everything
    per-user) and no rate-limit or revocation state in Redis."""
    await db.execute("TRUNCATE users, error_logs RESTART IDENTITY CASCADE")
    client = redis_async.from_url(redis_url)
    try:
        for pattern in OUR_PATTERNS:
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()
    yield db


@pytest_asyncio.fixture(loop_scope="session")
async def app(accounts_db: asyncpg.Pool, process_clients: None) -> FastAPI:
    return create_app()


@pytest_asyncio.fixture(loop_scope="session")
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http
