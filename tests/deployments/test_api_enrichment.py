"""The enrichment endpoints against the real PostgreSQL (pgvector), Redis and the real query
model: similar articles, stories, text / semantic / hybrid search, topic filters and topics."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import pytest
import pytest_asyncio
import redis.asyncio as redis_async

from cluster.keys import query_embedding_key, rate_limit_key
from cluster.store.enrichment import write_enrichment
from deployments.api import create_app
from deployments.auth.settings import get_auth_settings
from deployments.backends import Backends
from deployments.query_encoding import LOAD_FAILED, ModelSpec, QueryModel, in_process_encoder
from jobs.enrichment.config import PIPELINE_VERSION
from tests.deployments.enrichment_support import MODEL_VERSION, World, doc_vectors, enrichment_row, seed_world
from tests.deployments.support import Seeder, client_for

UNKNOWN = "00000000-0000-0000-0000-000000000000"
# No word of it is in any article: only semantic search can find the quake.
SEISMIC = "seismic catastrophe"


@pytest.fixture(scope="module")
def vectors() -> dict[str, np.ndarray]:
    return doc_vectors()


@pytest_asyncio.fixture(loop_scope="session")
async def world(db: asyncpg.Pool, vectors: dict[str, np.ndarray]) -> World:
    return await seed_world(db, vectors)


@pytest_asyncio.fixture(loop_scope="session")
async def redis_client(redis_url: str) -> AsyncIterator[redis_async.Redis]:
    client = redis_async.from_url(redis_url)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def unreachable_redis(closed_port: int) -> AsyncIterator[redis_async.Redis]:
    client = redis_async.from_url(f"redis://127.0.0.1:{closed_port}", socket_connect_timeout=1, socket_timeout=1)
    yield client
    await client.aclose()


def broken_model(tmp_path: Path) -> QueryModel:
    """A model configured at a directory that holds no model: loading it fails for real."""
    return QueryModel(spec=lambda: ModelSpec(str(tmp_path), "broken", 128, "auto"))


def ids(response: httpx.Response, world: World) -> list[str]:
    assert response.status_code == 200, response.text
    return world.keys([item["id"] for item in response.json()["items"]])


# --- similar -----------------------------------------------------------------------------------

async def test_similar_finds_the_same_event_first_and_never_itself(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(f"/api/v1/articles/{world.ids['quake-a']}/similar", params={"limit": 4})
    found = ids(response, world)
    body = response.json()
    assert body["status"] == "ok" and body["article_id"] == str(world.ids["quake-a"])
    assert found[0] == "quake-b" and "quake-a" not in found and len(found) == 4
    assert "museum" not in found  # not embedded, so never a neighbour
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    first = body["items"][0]
    assert first["source_title"] == "Capital Wire" and first["story_id"] == str(world.stories["quake"])
    assert first["topics"] == ["disasters"] and first["sentiment"] == pytest.approx(-0.2)
    assert first["summary"].startswith("Summary: Rescuers race")
    rates = ids(await client.get(f"/api/v1/articles/{world.ids['rates-a']}/similar"), world)
    assert rates[0] == "rates-b" and len(rates) == 6  # every other embedded article


async def test_similar_can_leave_out_the_own_story(client: httpx.AsyncClient, world: World) -> None:
    found = ids(await client.get(f"/api/v1/articles/{world.ids['quake-a']}/similar",
                                 params={"other_stories": "true"}), world)
    assert found and not {"quake-a", "quake-b"} & set(found)


async def test_similar_of_an_unenriched_article_says_so_and_unknown_is_404(client: httpx.AsyncClient,
                                                                          world: World) -> None:
    response = await client.get(f"/api/v1/articles/{world.ids['museum']}/similar")
    assert response.status_code == 200
    assert response.json() == {"article_id": str(world.ids["museum"]), "status": "not_enriched", "items": []}
    missing = await client.get(f"/api/v1/articles/{UNKNOWN}/similar")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == f"api: article {UNKNOWN} not found"
    for bad in ("not-a-uuid/similar", f"{UNKNOWN}/similar?limit=0", f"{UNKNOWN}/similar?limit=51"):
        assert (await client.get(f"/api/v1/articles/{bad}")).status_code == 422, bad


# --- stories -----------------------------------------------------------------------------------

async def test_story_lists_exactly_its_articles_oldest_first(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get(f"/api/v1/stories/{world.stories['quake']}")
    assert ids(response, world) == ["quake-a", "quake-b"]
    body = response.json()
    assert body["story_id"] == str(world.stories["quake"])
    assert [item["source_title"] for item in body["items"]] == ["Daily Ledger", "Capital Wire"]
    sources = [world.sources["Daily Ledger"], world.sources["Capital Wire"]]
    assert [item["source_id"] for item in body["items"]] == sources
    assert "score" not in body["items"][0]
    assert ids(await client.get(f"/api/v1/stories/{world.stories['derby']}"), world) == ["derby"]


async def test_unknown_story_is_404_and_a_bad_id_422(client: httpx.AsyncClient, world: World) -> None:
    missing = await client.get(f"/api/v1/stories/{UNKNOWN}")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == f"api: story {UNKNOWN} not found"
    # An article id that is not a story id (quake-b belongs to quake-a's story) is no story.
    assert (await client.get(f"/api/v1/stories/{world.ids['quake-b']}")).status_code == 404
    assert (await client.get("/api/v1/stories/42")).status_code == 422


# --- search ------------------------------------------------------------------------------------

async def test_text_search_ranks_the_article_with_the_words(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/api/v1/search", params={"q": "inflation", "mode": "text"})
    assert ids(response, world) == ["rates-a", "rates-b"]  # rates-a has it in its title too
    body = response.json()
    assert body["mode"] == "text" and body["fallback_reason"] is None and body["query"] == "inflation"
    assert body["items"][0]["score"] > body["items"][1]["score"] > 0
    assert ids(await client.get("/api/v1/search", params={"q": SEISMIC, "mode": "text"}), world) == []


async def test_semantic_search_finds_an_article_without_shared_words(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/api/v1/search", params={"q": f"  {SEISMIC} ", "mode": "semantic", "limit": 3})
    found = ids(response, world)
    assert set(found[:2]) == {"quake-a", "quake-b"} and len(found) == 3
    body = response.json()
    assert body["mode"] == "semantic" and body["query"] == SEISMIC
    scores = [item["score"] for item in body["items"]]
    assert scores == sorted(scores, reverse=True)
    economy = ids(await client.get("/api/v1/search", params={"q": SEISMIC, "mode": "semantic", "topic": "economy"}),
                  world)
    assert sorted(economy) == ["rates-a", "rates-b"]  # the topic filter applies to k-NN too


async def test_hybrid_search_puts_the_article_both_rankings_found_first(client: httpx.AsyncClient,
                                                                       world: World) -> None:
    # "earthquake" and "rescue" are both in quake-a only; quake-b is near in meaning only.
    response = await client.get("/api/v1/search", params={"q": "earthquake rescue"})
    assert response.json()["mode"] == "hybrid"
    assert ids(response, world)[:2] == ["quake-a", "quake-b"]
    semantic_only = ids(await client.get("/api/v1/search", params={"q": SEISMIC, "mode": "hybrid"}), world)
    assert set(semantic_only[:2]) == {"quake-a", "quake-b"}


async def test_semantic_search_without_embeddings_is_503_and_hybrid_falls_back(client: httpx.AsyncClient,
                                                                               db: asyncpg.Pool) -> None:
    seed = Seeder(db)
    await seed.articles(await seed.source(), 2, title="Inflation report {n}")
    response = await client.get("/api/v1/search", params={"q": "inflation", "mode": "semantic"})
    assert response.status_code == 503
    assert response.json()["error"]["message"] == (
        "api: semantic search is unavailable: no article has an embedding yet"
        " (run the enrichment: python -m jobs.enrich)")
    hybrid = await client.get("/api/v1/search", params={"q": "inflation"})
    assert hybrid.status_code == 200
    body = hybrid.json()
    assert body["mode"] == "text" and body["fallback_reason"].startswith("no article has an embedding yet")
    assert [item["title"] for item in body["items"]] == ["Inflation report 1", "Inflation report 0"]


async def test_embeddings_of_another_model_are_503(client: httpx.AsyncClient, db: asyncpg.Pool,
                                                   vectors: dict[str, np.ndarray]) -> None:
    await seed_world(db, vectors, model="another-model")
    response = await client.get("/api/v1/search", params={"q": SEISMIC, "mode": "semantic"})
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert "'another-model'" in message and f"'{MODEL_VERSION}'" in message


async def test_a_model_that_cannot_load_is_503_and_hybrid_falls_back(world: World, tmp_path: Path,
                                                                     process_clients: None) -> None:
    app = create_app(backends=Backends(encode_query=in_process_encoder(broken_model(tmp_path))))
    async with client_for(app) as http:
        response = await http.get("/api/v1/search", params={"q": "volcano eruption", "mode": "semantic"})
        assert response.status_code == 503
        assert response.json()["error"]["message"] == f"api: semantic search is unavailable: {LOAD_FAILED}"
        hybrid = await http.get("/api/v1/search", params={"q": "inflation", "mode": "hybrid"})
        assert hybrid.json()["mode"] == "text" and hybrid.json()["fallback_reason"] == LOAD_FAILED
        assert ids(hybrid, world) == ["rates-a", "rates-b"]


async def test_query_vectors_are_cached_in_redis(world: World, tmp_path: Path, client: httpx.AsyncClient,
                                                 redis_client: redis_async.Redis, process_clients: None) -> None:
    query = "tremors shake mountain towns"
    key = query_embedding_key(MODEL_VERSION, query)
    await redis_client.delete(key)
    first = ids(await client.get("/api/v1/search", params={"q": query, "mode": "semantic"}), world)
    cached = await redis_client.get(key)
    assert cached is not None and len(cached) == 384 * 4 and 0 < await redis_client.ttl(key) <= 24 * 3600
    # An app whose model cannot load answers the same query from the cache alone.
    app = create_app(backends=Backends(encode_query=in_process_encoder(broken_model(tmp_path))))
    async with client_for(app) as http:
        again = await http.get("/api/v1/search", params={"q": f"{query}  ", "mode": "semantic"})
        assert ids(again, world) == first
        assert (await http.get("/api/v1/search", params={"q": "uncached words", "mode": "semantic"})).status_code == 503


async def test_search_works_with_redis_down(world: World, unreachable_redis: redis_async.Redis,
                                            process_clients: None) -> None:
    app = create_app(backends=Backends(redis=lambda: unreachable_redis))
    async with client_for(app) as http:
        response = await http.get("/api/v1/search", params={"q": SEISMIC, "mode": "semantic", "limit": 2})
        assert sorted(ids(response, world)) == ["quake-a", "quake-b"]


async def test_anonymous_model_searches_are_limited_per_address(world: World, redis_client: redis_async.Redis,
                                                                process_clients: None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSRAY_ANONYMOUS_SEARCH_LIMIT", "3")
    get_auth_settings.cache_clear()
    try:
        keys = [key async for key in redis_client.scan_iter(match=rate_limit_key("search", "*", "*"))]
        if keys:
            await redis_client.delete(*keys)
        async with client_for(create_app()) as http:
            for mode in ("semantic", "hybrid", "semantic"):
                assert (await http.get("/api/v1/search", params={"q": SEISMIC, "mode": mode})).status_code == 200
            refused = await http.get("/api/v1/search", params={"q": SEISMIC, "mode": "hybrid"})
            assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
            # Text search costs no model call and stays open.
            assert (await http.get("/api/v1/search", params={"q": "inflation", "mode": "text"})).status_code == 200
    finally:
        get_auth_settings.cache_clear()


@pytest.mark.parametrize("params", [
    {}, {"q": ""}, {"q": "   "}, {"q": "x" * 201}, {"q": "nul\x00byte"}, {"q": "a", "mode": "fuzzy"},
    {"q": "a", "limit": 0}, {"q": "a", "limit": 101}, {"q": "a", "topic": "eco nomy"},
    {"q": "a", "topic": [f"t{n}" for n in range(21)]},
])
async def test_bad_search_parameters_are_422(client: httpx.AsyncClient, params: dict[str, Any]) -> None:
    response = await client.get("/api/v1/search", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"] == "api: invalid request parameters"


# --- topics ------------------------------------------------------------------------------------

async def test_topic_filter_returns_exactly_the_tagged_articles(client: httpx.AsyncClient, world: World) -> None:
    def listing(**params: Any) -> Any:
        return client.get("/api/v1/articles", params=params)

    assert ids(await listing(topic="economy"), world) == ["rates-b", "rates-a"]  # newest first, as the list is
    assert ids(await listing(topic=["economy", "football"]), world) == ["derby", "rates-b", "rates-a"]  # any of them
    assert ids(await listing(topic=["economy", "economy"]), world) == ["rates-b", "rates-a"]
    assert ids(await listing(topic="economy", source=world.sources["Daily Ledger"]), world) == ["rates-a"]
    assert ids(await listing(topic="economy", q="Frankfurt"), world) == ["rates-b"]
    assert ids(await listing(topic="no-such-topic"), world) == []
    assert (await listing(topic="no such topic")).status_code == 422


async def test_topic_filter_pages_have_no_duplicates_or_gaps(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    seed = Seeder(db)
    source = await seed.source()
    article_ids = await seed.articles(source, 23, step=timedelta(minutes=1))
    # Every article whose number is not a multiple of 3 is about the economy; two also share a minute.
    tagged = [article_id for n, article_id in enumerate(article_ids) if n % 3]
    rows = [await enrichment_row(db, uuid.UUID(article_id), {"economy": 0.9} if n % 3 else {"football": 0.9})
            for n, article_id in enumerate(article_ids)]
    await write_enrichment(db, rows, MODEL_VERSION, PIPELINE_VERSION)
    served: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"topic": "economy", "limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/articles", params=params)).json()
        served += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert served == list(reversed(tagged)) and len(served) == len(set(served)) == 15


async def test_topics_list_the_catalog_with_counts(client: httpx.AsyncClient, world: World) -> None:
    response = await client.get("/api/v1/topics")
    assert response.status_code == 200
    items = response.json()["items"]
    counts = {item["key"]: item["count"] for item in items}
    assert counts["disasters"] == 2 and counts["economy"] == 2 and counts["markets"] == 1
    assert counts["politics"] == 1 and counts["crypto"] == 0  # catalog topics without articles are listed too
    assert [item["key"] for item in items[:2]] == ["economy", "disasters"]  # most first, then catalog order
    economy = next(item for item in items if item["key"] == "economy")
    assert economy["names"]["en"] == "Economy" and economy["names"]["tr"]
    assert [item["count"] for item in items] == sorted(counts.values(), reverse=True)


async def test_enrichment_endpoints_are_documented(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    similar = spec["paths"]["/api/v1/articles/{article_id}/similar"]["get"]
    assert "not_enriched" in similar["description"] and "404" in similar["responses"]
    search = spec["paths"]["/api/v1/search"]["get"]
    assert "falls back to text" in search["description"] and "503" in search["responses"]
    assert "oldest first" in spec["paths"]["/api/v1/stories/{story_id}"]["get"]["summary"]
    topic = next(p for p in spec["paths"]["/api/v1/articles"]["get"]["parameters"] if p["name"] == "topic")
    assert "any" in topic["description"]



async def test_the_caller_is_checked_as_on_every_endpoint(client: httpx.AsyncClient, world: World) -> None:
    """Open to anonymous readers like the article list; a bad token is refused, not ignored."""
    paths = [f"/api/v1/articles/{world.ids['quake-a']}/similar", f"/api/v1/stories/{world.stories['quake']}",
             "/api/v1/search?q=inflation&mode=text", "/api/v1/topics", "/api/v1/articles?topic=economy"]
    for path in paths:
        assert (await client.get(path)).status_code == 200, path
        refused = await client.get(path, headers={"Authorization": "Bearer not-a-token"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer"), path
