"""The Redis client (one per process and event loop), created from settings on first use."""

from __future__ import annotations

import asyncio

import redis.asyncio as redis_async

_clients: dict[int, redis_async.Redis] = {}


def get_redis() -> redis_async.Redis:
    from cluster.settings import get_settings

    key = id(asyncio.get_running_loop())
    client = _clients.get(key)
    if client is None:
        url = get_settings().redis_url
        if not url:
            raise RuntimeError("redis: NEWSRAY_REDIS_URL is not set in this process (start with `newsray up`)")
        # Short timeouts: Redis is a cache and a fan-out, never worth stalling a request for.
        client = redis_async.from_url(url, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30)
        _clients[key] = client
    return client


async def close_redis() -> None:
    client = _clients.pop(id(asyncio.get_running_loop()), None)
    if client is not None:
        await client.aclose()
