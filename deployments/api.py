"""The FastAPI app behind the Api ingress; the same object runs under plain uvicorn.

    uvicorn --factory deployments.api:create_app

Building it does no I/O: Serve builds it when a replica imports deployments.app, and the
database pool is created on the first request that needs it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

import cluster
from cluster.db import close_pool
from cluster.redis_client import close_redis
from deployments.backends import Backends
from deployments.errors import JsonErrorRoute, install_error_handlers
from deployments.routes import articles, health, pages, sources, websub
from deployments.web import static_files, web_dir

DESCRIPTION = """\
The newsray reader API. Lists are newest first and paginated with an opaque `cursor`
(pass back `next_cursor`). Every error is JSON: `{"error": {"status", "message", "details"?}}`.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # Close this loop's pool and Redis client, so a stopped server leaves no sockets behind.
    await close_pool()
    await close_redis()


def create_app(*, backends: Backends | None = None, web_directory: Path | None = None) -> FastAPI:
    """The API and the `/` page. `backends` defaults to the process-wide PostgreSQL pool and
    Redis client (from NEWSRAY_DATABASE_URL / NEWSRAY_REDIS_URL)."""
    app = FastAPI(title="newsray", version=cluster.__version__, description=DESCRIPTION, lifespan=_lifespan)
    # Routes added later on app itself (tests, future modules) get the same JSON 500s.
    app.router.route_class = JsonErrorRoute
    app.state.backends = backends or Backends()
    app.state.started_at = time.monotonic()
    directory = web_directory or web_dir()
    app.state.web_dir = directory
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(articles.router)
    app.include_router(sources.router)
    app.include_router(pages.router)
    app.include_router(websub.router)
    app.mount("/static", static_files(directory), name="static")
    return app
