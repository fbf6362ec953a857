"""cluster/store/enrichment.py against the real PostgreSQL + pgvector: pending selection, batch
writes, story neighbours and the queries behind similar / story / search / topic filters."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import numpy as np
import pytest

from cluster.store import articles as article_store
from cluster.store import enrichment as store
from jobs.enrichment import text
from jobs.enrichment.embed import DEFAULT_MAX_TOKENS
from enrich_helpers import BASE_TIME, SeedArticle, Seeder, event_articles

MODEL = "test-model"
TOPIC_OF_GROUP = {"central-banks": "economy", "earthquakes": "disasters", "elections": "elections",
                  "football": "football", "tr-economy": "economy"}


async def seed_enriched(db: asyncpg.Pool, seed: Seeder, events: list[dict[str, Any]], embedder: Any,
                        model_version: str = MODEL) -> dict[str, uuid.UUID]:
    """The labelled events stored and enriched directly (no pipeline): a pair shares a story."""
    articles = event_articles(events)
    ids = await seed(db, articles)
    vectors = embedder.encode([text.model_input(a.title, a.body, DEFAULT_MAX_TOKENS) for a in articles])
    group = {e["id"]: e["group"] for e in events}
    stored = {row["id"]: row for row in await db.fetch("SELECT id, source_id, published_at, updated_at FROM articles")}
    rows = []
    for article, vector in zip(articles, vectors):
        event_id = article.key[:-2]
        topic = TOPIC_OF_GROUP.get(group[event_id])
        article_id = ids[article.key]
        rows.append(store.EnrichmentRow(
            article_id=article_id, source_id=stored[article_id]["source_id"],
            published_at=stored[article_id]["published_at"], article_updated_at=stored[article_id]["updated_at"],
            language="en",
            language_confidence=0.9, sentiment=0.1, topic_scores={topic: 0.8} if topic else {},
            summary=f"summary of {article.key}", summary_kind="extractive", embedding=vector,
            minhash=b"\x00" * 8, story_id=ids[f"{event_id}-a"],
        ))
    await store.write_enrichment(db, rows, model_version, 1)
    return ids


@pytest.fixture
async def enriched(db: asyncpg.Pool, seed: Seeder, story_events: list[dict[str, Any]],
                   embedder: Any) -> dict[str, uuid.UUID]:
    return await seed_enriched(db, seed, story_events, embedder)


def selection(**changes: Any) -> store.Selection:
    return store.Selection(**{"model_version": MODEL, "pipeline_version": 1, **changes})


async def test_pending_selection(db: asyncpg.Pool, seed: Seeder, story_events: list[dict[str, Any]],
                                 embedder: Any) -> None:
    ids = await seed(db, event_articles(story_events[:4]))
    assert await store.count_pending(db, selection()) == 8
    assert set(await store.pending_ids(db, selection())) == set(ids.values())
    assert len(await store.pending_ids(db, selection(), limit=3)) == 3
    await db.execute("TRUNCATE sources, articles RESTART IDENTITY CASCADE")
    ids = await seed_enriched(db, seed, story_events[:4], embedder)
    assert await store.count_pending(db, selection()) == 0
    assert await store.count_pending(db, selection(model_version="other-model")) == 8  # a model change re-embeds
    assert await store.count_pending(db, selection(pipeline_version=2)) == 8  # newer stage logic
    assert await store.count_pending(db, selection(force_before=datetime.now(timezone.utc))) == 8  # --all
    since = BASE_TIME + timedelta(days=4)  # events 4 days apart: the last three events
    assert await store.count_pending(db, selection(force_before=datetime.now(timezone.utc), since=since)) == 6
    # The crawler updating an article makes it pending again.
    row = await db.fetchrow("SELECT source_id, dedupe_key, title FROM articles WHERE id = $1", ids["ecb-hike-a"])
    await article_store.upsert_articles(db, row["source_id"], [article_store.ArticleInput(
        dedupe_key=row["dedupe_key"], title=row["title"] + " (updated)", published_at=BASE_TIME)])
    assert await store.pending_ids(db, selection()) == [ids["ecb-hike-a"]]
    # load_articles re-checks: only still-pending rows come back.
    loaded = await store.load_articles(db, list(ids.values()), selection())
    assert [r.id for r in loaded] == [ids["ecb-hike-a"]] and loaded[0].title.endswith("(updated)")


async def test_write_is_idempotent_keeps_story_ids_and_fills_language(
        enriched: dict[str, uuid.UUID], db: asyncpg.Pool) -> None:
    article_id = enriched["fed-hold-b"]
    before = await db.fetchrow("SELECT * FROM article_enrichment WHERE article_id = $1", article_id)
    row = store.EnrichmentRow(
        article_id=article_id, source_id=before["source_id"], published_at=before["published_at"],
        article_updated_at=before["article_updated_at"], language="tr",
        language_confidence=0.8, sentiment=None, topic_scores={"markets": 0.7, "economy": 0.9}, summary=None,
        summary_kind=None, embedding=before["embedding"].to_numpy(), minhash=None, story_id=uuid.uuid4())
    for _ in range(2):
        assert await store.write_enrichment(db, [row], "model-2", 2) == 1
    assert await db.fetchval("SELECT count(*) FROM article_enrichment") == len(enriched)
    after = await db.fetchrow("SELECT * FROM article_enrichment WHERE article_id = $1", article_id)
    assert after["story_id"] == before["story_id"]  # stable
    assert (after["model_version"], after["pipeline_version"], after["sentiment"]) == ("model-2", 2, None)
    assert sorted(after["topics"]) == ["economy", "markets"]
    # The detected language fills articles.language where the feed gave none, and only there.
    assert await db.fetchval("SELECT language FROM articles WHERE id = $1", article_id) == "en"
    await db.execute("UPDATE articles SET language = 'de' WHERE id = $1", article_id)
    await store.write_enrichment(db, [row], "model-2", 2)
    assert await db.fetchval("SELECT language FROM articles WHERE id = $1", article_id) == "de"


async def test_get_enrichment(enriched: dict[str, uuid.UUID], db: asyncpg.Pool) -> None:
    found = await store.get_enrichment(db, enriched["ecb-hike-b"])
    assert found is not None
    assert found.topics == {"economy": 0.8} and found.story_id == enriched["ecb-hike-a"] and found.story_size == 2
    assert found.summary == "summary of ecb-hike-b" and found.model_version == MODEL
    assert await store.get_enrichment(db, uuid.uuid4()) is None
    assert await store.latest_model_version(db) == MODEL


async def test_similar_articles_by_knn(enriched: dict[str, uuid.UUID], db: asyncpg.Pool) -> None:
    similar = await store.similar_articles(db, enriched["morocco-quake-a"], limit=5)
    assert len(similar) == 5
    assert similar[0].id == enriched["morocco-quake-b"]  # the same event from another outlet
    assert enriched["morocco-quake-a"] not in {hit.id for hit in similar}
    assert all(a.score >= b.score for a, b in zip(similar, similar[1:]))
    assert similar[0].source_title == "Global Herald" and similar[0].url
    others = await store.similar_articles(db, enriched["morocco-quake-a"], limit=5, exclude_same_story=True)
    assert enriched["morocco-quake-b"] not in {hit.id for hit in others}
    assert others[0].id in {enriched["japan-quake-a"], enriched["japan-quake-b"]}  # next: another quake
    assert await store.similar_articles(db, uuid.uuid4()) == []


async def test_story_articles(enriched: dict[str, uuid.UUID], db: asyncpg.Pool) -> None:
    story = await store.story_articles(db, enriched["derbi-a"])
    assert [hit.id for hit in story] == [enriched["derbi-a"], enriched["derbi-b"]]  # oldest first
    assert {hit.source_title for hit in story} == {"Spor Haber", "Fanatik Spor"}
    assert await store.story_articles(db, uuid.uuid4()) == []


async def test_semantic_search(enriched: dict[str, uuid.UUID], db: asyncpg.Pool, embedder: Any) -> None:
    query = embedder.encode(["deadly earthquake in Morocco"])[0]
    hits = await store.semantic_search(db, query, MODEL, limit=4)
    assert {hits[0].id, hits[1].id} == {enriched["morocco-quake-a"], enriched["morocco-quake-b"]}
    assert await store.semantic_search(db, query, "another-model") == []  # other vector spaces never mix
    football = await store.semantic_search(db, query, MODEL, limit=10, topics=["football"])
    assert football and {hit.id for hit in football} <= {enriched[k] for k in enriched if k.startswith(("city", "arsenal"))}


async def test_text_search(enriched: dict[str, uuid.UUID], db: asyncpg.Pool) -> None:
    hits = await store.text_search(db, "Lufthansa pilots")
    assert hits and {hit.id for hit in hits} <= {enriched["lufthansa-strike-a"], enriched["lufthansa-strike-b"]}
    assert hits[0].id == enriched["lufthansa-strike-a"]  # both words, one in the title
    assert await store.text_search(db, "Lufthansa", topics=["economy"]) == []


async def test_hybrid_search_fuses_both_rankings(enriched: dict[str, uuid.UUID], db: asyncpg.Pool,
                                                 embedder: Any) -> None:
    query = "Wilders election victory"
    hits = await store.hybrid_search(db, query, embedder.encode([query])[0], MODEL, limit=5)
    assert hits[0].id in {enriched["dutch-election-a"], enriched["dutch-election-b"]}
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    # An article found by both rankings scores more than the top of either one alone.
    both = await store.hybrid_search(db, "Wajima", embedder.encode(["Wajima"])[0], MODEL, limit=3)
    assert both[0].id in {enriched["japan-quake-a"], enriched["japan-quake-b"]}
    assert both[0].score > 1 / (store.RRF_K + 1)  # ranked by both lists, not one
    filtered = await store.hybrid_search(db, query, embedder.encode([query])[0], MODEL, topics=["economy"])
    assert filtered and all(hit.id not in {enriched["dutch-election-a"], enriched["dutch-election-b"]}
                            for hit in filtered)


async def test_topic_filter_and_counts(enriched: dict[str, uuid.UUID], db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        f"SELECT a.id FROM articles a WHERE {store.topic_filter_sql('$1')} ORDER BY a.published_at", ["elections"])
    assert {row["id"] for row in rows} == {enriched[k] for k in enriched if k.startswith(("dutch", "poland"))}
    rows = await db.fetch(f"SELECT a.id FROM articles a WHERE {store.topic_filter_sql('$1')}", ["economy", "football"])
    assert len(rows) == 12  # 2 central-bank + 2 tr-economy events + 2 football events, 2 articles each
    counts = await store.topic_counts(db)
    assert counts["economy"] == 8 and counts["elections"] == 4
    assert await store.topic_counts(db, since=BASE_TIME + timedelta(days=1000)) == {}


async def test_story_neighbours_window_source_and_exclusions(enriched: dict[str, uuid.UUID], db: asyncpg.Pool) -> None:
    row = await db.fetchrow(
        "SELECT e.embedding, a.published_at, a.source_id FROM article_enrichment e JOIN articles a ON a.id = e.article_id"
        " WHERE a.id = $1", enriched["iphone-a"])
    vector = row["embedding"].to_numpy()
    new_id = uuid.uuid4()
    found = await store.story_neighbours(db, [new_id], [vector], [row["published_at"]], [row["source_id"]], MODEL,
                                         timedelta(hours=72))
    assert found and all(n.for_index == 0 for n in found)
    assert found[0].article_id == enriched["iphone-b"]  # iphone-a is the same source: left out
    assert all(abs(n.published_at - row["published_at"]) <= timedelta(hours=72) for n in found)
    excluded = await store.story_neighbours(db, [enriched["iphone-b"]], [vector], [row["published_at"]],
                                            [row["source_id"]], MODEL, timedelta(hours=72))
    assert enriched["iphone-b"] not in {n.article_id for n in excluded}
    later = await store.story_neighbours(db, [new_id], [vector], [row["published_at"] + timedelta(days=1000)],
                                         [row["source_id"]], MODEL, timedelta(hours=72))
    assert later == []


async def test_knn_uses_the_hnsw_index_and_other_dims_get_one(enriched: dict[str, uuid.UUID], db: asyncpg.Pool) -> None:
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in await conn.fetch(
            "EXPLAIN SELECT article_id FROM article_enrichment e WHERE vector_dims(e.embedding) = 384"
            " ORDER BY e.embedding::vector(384) <=> $1::vector(384) LIMIT 5", np.ones(384, dtype=np.float32)))
    assert "article_enrichment_embedding_384_idx" in plan
    await store.ensure_vector_index(db, 768)
    await store.ensure_vector_index(db, 768)  # idempotent
    assert await db.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname = 'article_enrichment_embedding_768_idx'") == 1
    with pytest.raises(ValueError, match="store:"):
        await store.ensure_vector_index(db, 0)


async def test_micro_batch_lock(db: asyncpg.Pool) -> None:
    async with db.acquire() as first, db.acquire() as second:
        assert await store.try_lock_micro_batch(first)
        assert not await store.try_lock_micro_batch(second)
        await store.unlock_micro_batch(first)
        assert await store.try_lock_micro_batch(second)
        await store.unlock_micro_batch(second)


async def test_knn_reads_are_not_cut_at_the_hnsw_default_of_40(db: asyncpg.Pool, seed: Seeder) -> None:
    """An HNSW scan yields hnsw.ef_search rows (40 by default): a LIMIT above that, or a filter
    that drops candidates after the scan, would come back short without the store raising it."""
    articles = [SeedArticle(source=f"Outlet {n % 3}", key=f"knn-{n}", title=f"Item {n}", body="Text.",
                            published_at=BASE_TIME + timedelta(minutes=n)) for n in range(70)]
    ids = await seed(db, articles)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(70, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    stored = {row["id"]: row for row in await db.fetch("SELECT id, source_id, published_at, updated_at FROM articles")}
    rows = [store.EnrichmentRow(
        article_id=ids[a.key], source_id=stored[ids[a.key]]["source_id"], published_at=a.published_at,
        article_updated_at=stored[ids[a.key]]["updated_at"], language="en", language_confidence=None, sentiment=None,
        topic_scores={"rare": 0.9} if n % 7 == 0 else {}, summary=None, summary_kind=None, embedding=vectors[n],
        minhash=None, story_id=ids[a.key]) for n, a in enumerate(articles)]
    await store.write_enrichment(db, rows, MODEL, 1)
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")  # as on a large table: the index serves k-NN
        plan = "\n".join(row[0] for row in await conn.fetch(
            "EXPLAIN SELECT 1 FROM article_enrichment e WHERE vector_dims(e.embedding) = 384"
            " ORDER BY e.embedding::vector(384) <=> $1::vector(384) LIMIT 60", vectors[0]))
        assert "article_enrichment_embedding_384_idx" in plan
        assert len(await store.semantic_search(conn, vectors[0], MODEL, limit=60)) == 60
        assert len(await store.semantic_search(conn, vectors[0], MODEL, limit=10, topics=["rare"])) == 10
        assert len(await store.similar_articles(conn, ids["knn-0"], limit=50)) == 50
        hybrid = await store.hybrid_search(conn, "nothing matches this", vectors[0], MODEL, limit=70)
        assert len(hybrid) == 70
