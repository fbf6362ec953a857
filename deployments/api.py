"""The FastAPI app behind the Api ingress; the same object runs under plain uvicorn.

    uvicorn --factory deployments.api:create_app

Building it does no I/O: Serve builds it when a replica imports deployments.app, and the
database pool is created on the first request that needs it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

import cluster
from cluster.db import close_pool, close_stateless_pool
from cluster.redis_client import close_redis
from deployments.auth.install import install_auth
from deployments.backends import Backends
from deployments.errors import JsonErrorRoute, install_error_handlers
from deployments.query_vectors import QueryVectors
from deployments.routes import articles, health, pages, search, sources, stories, topics, websub
from deployments.web import static_files, web_dir

DESCRIPTION = """\
The newsray reader API. Lists are newest first and paginated with an opaque `cursor`
(pass back `next_cursor`). Every error is JSON: `{"error": {"status", "message", "details"?}}`.
Similar articles, stories, semantic search and topics come from the enrichment job
(`python -m jobs.enrich`): before it has run they are empty, or 503 for semantic search.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Everything imported and built so far lives as long as the process: keep it out of the
    # cyclic GC. Without this each full collection walks ~90k import-time objects, pausing the
    # event loop 100-300 ms every few seconds under load (measured under uvicorn at c=64; it
    # was most of the p99). Serve replicas do the same after start-up
    # (RAY_SERVE_FREEZE_GC_ON_STARTUP); plain uvicorn needs it here. Collect first so that
    # start-up garbage is freed rather than frozen.
    gc.collect()
    gc.freeze()
    yield
    # Close this loop's pool and Redis client, so a stopped server leaves no sockets behind.
    await close_pool()
    await close_stateless_pool()
    await close_redis()


def create_app(*, backends: Backends | None = None, web_directory: Path | None = None) -> FastAPI:
    """The API and the `/` page. `backends` defaults to the process-wide PostgreSQL pool and
    Redis client (from NEWSRAY_DATABASE_URL / NEWSRAY_REDIS_URL)."""
    app = FastAPI(title="newsray", version=cluster.__version__, description=DESCRIPTION, lifespan=_lifespan)
    # Routes added later on app itself (tests, future modules) get the same JSON 500s.
    app.router.route_class = JsonErrorRoute
    app.state.backends = backends or Backends()
    app.state.query_vectors = QueryVectors(app.state.backends)
    app.state.topic_counts = topics.counts_cache()
    app.state.started_at = time.monotonic()
    directory = web_directory or web_dir()
    app.state.web_dir = directory
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(articles.router)
    app.include_router(stories.router)
    app.include_router(search.router)
    app.include_router(topics.router)
    app.include_router(sources.router)
    app.include_router(pages.router)
    install_auth(app)  # accounts: /api/v1/auth, /me, /admin, auth and security-header middleware
    app.include_router(websub.router)
    app.mount("/static", static_files(directory), name="static")
    return app
