"""Fixtures for the Api: the FastAPI app over the session's real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest
import pytest_asyncio

from cluster.db import close_pool, close_stateless_pool
from cluster.redis_client import close_redis
from cluster.settings import get_settings
from deployments.api import create_app
from tests.deployments.support import Seeder, client_for


@pytest.fixture(scope="module")
def service_settings(test_env: object) -> Iterator[None]:
    # test_env exported NEWSRAY_DATABASE_URL / NEWSRAY_REDIS_URL; settings read before that
    # (by another module) would be cached without them.
    get_settings.cache_clear()
    yield


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def process_clients(service_settings: None) -> AsyncIterator[None]:
    """The app uses the process-wide pool and Redis client; close them when the module ends,
    or their sockets would be collected unclosed (a warning, hence an error, under pytest)."""
    yield
    await close_pool()
    await close_stateless_pool()
    await close_redis()


@pytest_asyncio.fixture(loop_scope="session")
async def client(db: asyncpg.Pool, process_clients: None) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(create_app()) as http:
        yield http


@pytest.fixture
def seed(db: asyncpg.Pool) -> Seeder:
    return Seeder(db)
