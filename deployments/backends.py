"""How the API reaches PostgreSQL, Redis and the query encoder: process-wide clients by default.

Routes read the store directly in the ingress (no DeploymentHandle hop: DESIGN.md measured a
hop at ~1.8 ms of CPU and a third of the throughput). The providers are injectable so tests
can point the app at a server that is down, for real, instead of mocking one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as redis_async

from cluster.db import get_pool, get_stateless_pool
from cluster.redis_client import get_redis
from cluster.store.health import ping
from deployments.query_encoding import EncodeQuery, in_process_encoder

logger = logging.getLogger("newsray.api")

PoolProvider = Callable[[], Awaitable[asyncpg.Pool]]
RedisProvider = Callable[[], redis_async.Redis]

# A health check answers within this, whatever state the servers are in: a load balancer
# probing a hung database must not hang too.
DATABASE_CHECK_TIMEOUT_S = 3.0
REDIS_CHECK_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class Backends:
    # Hot read paths (lists, one article, sources, the page, /health): single statements with
    # no session state, on a pool released without asyncpg's reset round trip.
    read_pool: PoolProvider = field(default=get_stateless_pool)
    # Everything else (writes, transactions, anything that may leave session state).
    pool: PoolProvider = field(default=get_pool)
    redis: RedisProvider = field(default=get_redis)
    # A search query's embedding. In-process by default (the model loads on the first semantic
    # search); the Serve app passes its QueryEncoder deployment's handle instead.
    encode_query: EncodeQuery = field(default=in_process_encoder())


@dataclass(frozen=True)
class PoolUsage:
    size: int
    in_use: int


def pool_usage(pool: asyncpg.Pool) -> PoolUsage:
    size = pool.get_size()
    return PoolUsage(size=size, in_use=size - pool.get_idle_size())


async def check_database(backends: Backends) -> tuple[bool, PoolUsage]:
    """Whether the database answers a round trip in time, and how busy the read pool (the one
    serving the hot paths) is."""
    pool: asyncpg.Pool | None = None
    try:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT_S):
            pool = await backends.read_pool()
            await ping(pool)
        ok = True
    except Exception as exc:  # noqa: BLE001 - any failure means "not ok"; say why in the log
        logger.warning("api: health: database check failed: %s: %s", type(exc).__name__, exc)
        ok = False
    return ok, pool_usage(pool) if pool is not None else PoolUsage(0, 0)


async def check_redis(backends: Backends) -> bool:
    try:
        async with asyncio.timeout(REDIS_CHECK_TIMEOUT_S):
            return bool(await backends.redis().ping())
    except Exception as exc:  # noqa: BLE001 - Redis is optional for serving; report, don't fail
        logger.warning("api: health: redis check failed: %s: %s", type(exc).__name__, exc)
        return False
