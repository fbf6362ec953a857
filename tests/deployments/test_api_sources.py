"""GET /api/v1/sources: every source with its crawl health."""

from __future__ import annotations

import httpx

from cluster.store.sources import record_failure, record_success
from tests.deployments.support import Seeder


async def test_sources_with_health(client: httpx.AsyncClient, seed: Seeder) -> None:
    healthy = await seed.source(title="Healthy Feed")
    failing = await seed.source(title="Broken Feed", language="tr")
    await record_success(seed.pool, healthy, status=200, next_fetch_in_s=300, articles_added=7)
    for _ in range(2):
        await record_failure(seed.pool, failing, error="fetch: HTTP 404", status=404, next_fetch_in_s=600)

    response = await client.get("/api/v1/sources")
    assert response.status_code == 200
    items = {item["id"]: item for item in response.json()["items"]}
    assert set(items) == {healthy, failing}

    good = items[healthy]
    assert good["title"] == "Healthy Feed" and good["kind"] == "feed" and good["url"].startswith("https://")
    assert good["health"]["enabled"] is True and good["health"]["last_status"] == 200
    assert good["health"]["articles_added"] == 7 and good["health"]["consecutive_errors"] == 0
    assert good["health"]["last_success_at"] and good["health"]["last_error"] is None

    bad = items[failing]["health"]
    assert items[failing]["language"] == "tr"
    assert bad["last_error"] == "fetch: HTTP 404" and bad["last_status"] == 404
    assert bad["consecutive_errors"] == 2 and bad["error_count"] == 2
    assert bad["last_error_at"] and bad["last_success_at"] is None
    assert bad["next_fetch_at"] and bad["interval_s"] == 300
    assert set(bad) == {"enabled", "last_status", "last_fetched_at", "last_success_at", "last_error", "last_error_at",
                        "consecutive_errors", "error_count", "articles_added", "next_fetch_at", "interval_s"}


async def test_no_sources(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/sources")
    assert response.status_code == 200 and response.json() == {"items": []}
