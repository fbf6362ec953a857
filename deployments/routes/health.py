"""GET /health: is this replica able to serve? (load balancers, `newsray status`, tests)."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from fastapi import APIRouter, Request, Response

import cluster
from deployments.backends import Backends, check_database, check_redis
from deployments.errors import JsonErrorRoute
from deployments.schemas import DatabaseHealth, Health, RedisHealth

router = APIRouter(tags=["health"], route_class=JsonErrorRoute)


@router.get("/health", response_model=Health, summary="Liveness and dependencies",
            responses={503: {"model": Health, "description": "The database is unreachable."}})
async def health(request: Request, response: Response) -> Health:
    backends: Backends = request.app.state.backends
    (database_ok, usage), redis_ok = await asyncio.gather(check_database(backends), check_redis(backends))
    status: Literal["ok", "degraded", "down"]
    if not database_ok:
        # Without the database nothing can be served: take the replica out of rotation.
        response.status_code = 503
        status = "down"
    else:
        # Redis only carries live updates and caches: reading still works without it.
        status = "ok" if redis_ok else "degraded"
    return Health(
        status=status,
        uptime_s=round(time.monotonic() - request.app.state.started_at, 3),
        version=cluster.__version__,
        database=DatabaseHealth(ok=database_ok, pool_size=usage.size, pool_in_use=usage.in_use),
        redis=RedisHealth(ok=redis_ok),
    )
