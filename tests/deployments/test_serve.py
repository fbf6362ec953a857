"""The Serve app on the session's Ray cluster (HAProxy ingress), reached over HTTP on 127.0.0.1;
one deploy for everything (an ingress drains >= 30 s)."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import redis.asyncio as redis_async
from ray import serve

from cluster.keys import query_embedding_key
from deployments.app import APP_NAME, deploy
from tests.conftest import free_port
from tests.deployments.enrichment_support import MODEL_VERSION, doc_vectors, seed_world
from tests.deployments.support import Seeder
from tests.polling import poll_for


async def semantic_search_goes_through_the_query_encoder(http: httpx.AsyncClient, db: asyncpg.Pool,
                                                         redis_url: str) -> None:
    """Api -> QueryEncoder: the encoder replica embeds an uncached query (its counter moves), the
    Api caches the vector in Redis, and the same query again never reaches the encoder."""
    world = await seed_world(db, doc_vectors())
    encoder = serve.get_deployment_handle("QueryEncoder", app_name=APP_NAME)
    # It loads in the background.
    before = await poll_for(encoder.stats.remote, lambda stats: bool(stats["loaded"]), "the QueryEncoder to load its model",
                            120, interval_s=0.5)
    query = "seismic catastrophe in the mountains"
    client = redis_async.from_url(redis_url)
    try:
        await client.delete(query_embedding_key(MODEL_VERSION, query))
        for _ in range(2):
            response = await http.get("/api/v1/search", params={"q": query, "mode": "semantic", "limit": 2})
            assert response.status_code == 200, response.text
            assert sorted(world.keys([item["id"] for item in response.json()["items"]])) == ["quake-a", "quake-b"]
        assert await client.exists(query_embedding_key(MODEL_VERSION, query))
    finally:
        await client.aclose()
    after = await encoder.stats.remote()
    assert after["queries"] == before["queries"] + 1  # the second search came from Redis


async def test_serve_app_answers_through_the_http_ingress(ray_cluster: str, test_env: Any, db: asyncpg.Pool,
                                                         redis_url: str) -> None:
    seed = Seeder(db)
    source_id = await seed.source(title="Served Daily")
    ids = await seed.articles(source_id, 30)
    url = deploy(http_host="127.0.0.1", http_port=free_port(), env=test_env.env(), timeout_s=240)
    try:
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=url, timeout=30, trust_env=False) as http:
            health = await http.get("/health")
            assert health.status_code == 200, health.text
            assert health.json()["status"] == "ok" and health.json()["database"]["ok"] is True

            first = (await http.get("/api/v1/articles", params={"limit": 25})).json()
            second = (await http.get("/api/v1/articles", params={"limit": 25, "cursor": first["next_cursor"]})).json()
            served = [item["id"] for item in first["items"] + second["items"]]
            assert served == list(reversed(ids)) and second["next_cursor"] is None
            assert first["items"][0]["source_title"] == "Served Daily"

            page = await http.get("/")
            assert page.status_code == 200 and ">Article 29<" in page.text
            assert page.headers["x-content-type-options"] == "nosniff"
            missing = await http.get("/api/v1/articles/00000000-0000-0000-0000-000000000000")
            assert missing.status_code == 404 and missing.json()["error"]["status"] == 404
            await semantic_search_goes_through_the_query_encoder(http, db, redis_url)
    finally:
        # The cluster is shared by the whole session: remove our app, leave Serve running.
        # Not blocking: an ingress drains for >= 30 s (HAProxy direct ingress) before it is gone,
        # and nothing else in the session uses this app name; the session cluster stops at the end.
        serve.delete(APP_NAME, _blocking=False)
