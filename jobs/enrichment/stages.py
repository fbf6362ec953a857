"""The pipeline's stages as batch callables: Ray Data runs them with map_batches (the model
stages as actor pools), and the benchmark's single-process baseline calls the very same objects
in a loop. A batch is a dict of numpy arrays; timestamps travel as int64 microseconds (exact,
unlike Arrow's timezone handling) and ids as strings.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import threading
import uuid
from collections.abc import Coroutine
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import numpy as np

from cluster.store import enrichment as store
from jobs.enrichment import language as language_id
from jobs.enrichment import sentiment as vader
from jobs.enrichment import sentences, stories, summarize, text, topics
from jobs.enrichment.config import EnrichConfig

Batch = dict[str, np.ndarray]
T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Abstractive models read more than the embedding window, but not whole long reads.
BODY_CHARS = 4000


def to_us(when: datetime) -> int:
    return (when - EPOCH) // timedelta(microseconds=1)


def from_us(value: int | np.integer) -> datetime:
    return EPOCH + timedelta(microseconds=int(value))


def _strings(values: list[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _size(batch: Batch) -> int:
    return len(batch["id"]) if "id" in batch else 0


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even when the caller's thread already runs
    an event loop (an async actor calling the pipeline): then it runs on a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coroutine))
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="enrich-sync")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


# --- read --------------------------------------------------------------------------------------

def load_batch(batch: Batch, config: EnrichConfig, selection: store.Selection) -> Batch:
    """Ids → article rows, re-checking that each is still pending (resume and overlap safety)."""
    ids = [uuid.UUID(str(value)) for value in batch["id"]]
    rows = run_sync(_load(config.database_url, ids, selection))
    return {
        "id": _strings([str(r.id) for r in rows]),
        "source_id": np.array([r.source_id for r in rows], dtype=np.int64),
        "title": _strings([r.title or "" for r in rows]),
        "summary": _strings([r.summary or "" for r in rows]),
        "content": _strings([r.content or "" for r in rows]),
        "published_us": np.array([to_us(r.published_at) for r in rows], dtype=np.int64),
        "updated_us": np.array([to_us(r.updated_at) for r in rows], dtype=np.int64),
        "feed_language": _strings([r.language or "" for r in rows]),
    }


async def _load(database_url: str, ids: list[uuid.UUID], selection: store.Selection) -> list[store.ArticleRow]:
    import asyncpg

    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        return await store.load_articles(conn, ids, selection)
    finally:
        await conn.close()


# --- CPU stage ---------------------------------------------------------------------------------

class PrepareStage:
    """Text, language, sentiment, MinHash, topic keywords and the extractive summary."""

    def __init__(self, config: EnrichConfig) -> None:
        self.config = config
        self.catalog = topics.TopicCatalog.load(config.topics_file)
        self.keep_body = bool(config.summarizer_routes)

    def __call__(self, batch: Batch) -> Batch:
        n = _size(batch)
        model_texts, bodies, languages, confidences, sentiments, signatures, summaries = [], [], [], [], [], [], []
        weights = np.zeros((n, len(self.catalog.keys)), dtype=np.float32)
        for i in range(n):
            title = text.normalize(str(batch["title"][i]))
            body = text.body_text(str(batch["summary"][i]), str(batch["content"][i]))
            found = language_id.detect_article(title, body, str(batch["feed_language"][i]) or None)
            model_text = text.model_input(title, body, self.config.max_tokens)
            split = sentences.split_sentences(body, found.language)  # once, for sentiment and summary
            score = vader.sentiment_of(title, split, found.language)
            signature = stories.minhash(model_text)
            weights[i] = self.catalog.keyword_weights(title, body, found.language)
            model_texts.append(model_text)
            bodies.append(text.truncate(body, BODY_CHARS) if self.keep_body else "")
            languages.append(found.language)
            confidences.append(found.confidence)
            sentiments.append(math.nan if score is None else score)
            signatures.append(stories.signature_to_bytes(signature) or b"")
            summaries.append(summarize.extractive_of(title, split, found.language))
        return {
            "id": batch["id"], "source_id": batch["source_id"], "published_us": batch["published_us"],
            "updated_us": batch["updated_us"], "title": batch["title"],
            "model_text": _strings(model_texts), "body": _strings(bodies), "language": _strings(languages),
            "language_confidence": np.array(confidences, dtype=np.float32),
            "sentiment": np.array(sentiments, dtype=np.float32),
            "minhash": _bytes(signatures), "keyword_weights": weights,
            "summary": _strings(summaries), "summary_kind": _strings(["extractive" if s else "" for s in summaries]),
        }


def _bytes(values: list[bytes]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


_prepare: tuple[EnrichConfig, PrepareStage] | None = None


def load_and_prepare(batch: Batch, config: EnrichConfig, selection: store.Selection) -> Batch:
    """Ray Data's first stage: ids → article rows → prepared, in one task. Both parts are cheap; as
    one stage the article texts never cross processes between them and no actor process has to
    start for them. The PrepareStage is kept for the next task in the same worker process."""
    global _prepare
    if _prepare is None or _prepare[0] != config:
        _prepare = (config, PrepareStage(config))
    return _prepare[1](load_batch(batch, config, selection))


# --- model stages ------------------------------------------------------------------------------

def _threads(config: EnrichConfig, actors_per_node: int) -> int:
    """Torch threads for one CPU model actor: its share of the node's cores.

    Ray sets OMP_NUM_THREADS to the actor's (logical) CPUs, 1 here; the embedding actor would
    then use one core of two while the CPU stages, which are light, idle most of the time.
    """
    if config.torch_threads:
        return config.torch_threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, actors_per_node))


class EmbedStage:
    """Embeddings, and topic centroids with the same model (cheap: one matrix product)."""

    def __init__(self, config: EnrichConfig, actors_per_node: int = 1) -> None:
        from jobs.enrichment.embed import Embedder, pick_device

        self.config = config
        device = pick_device()
        batch_size = config.gpu_batch_size if device.startswith("cuda") else config.batch_size
        self.embedder = Embedder(config.model, device=device, dtype=config.dtype, batch_size=batch_size,
                                 max_tokens=config.max_tokens,
                                 threads=0 if device.startswith("cuda") else _threads(config, actors_per_node))
        self.catalog = topics.TopicCatalog.load(config.topics_file)
        self.centroids = self.catalog.centroids(self.embedder.encode)

    def __call__(self, batch: Batch) -> Batch:
        n = _size(batch)
        vectors = self.embedder.encode([str(t) for t in batch["model_text"]])
        similarities = vectors @ self.centroids.T if n else np.zeros((0, len(self.catalog.keys)), dtype=np.float32)
        scores = [
            json.dumps(topics.assign(batch["keyword_weights"][i], similarities[i], self.catalog.keys,
                                     self.config.topic_threshold), sort_keys=True)
            for i in range(n)
        ]
        out = {key: value for key, value in batch.items() if key not in ("model_text", "keyword_weights")}
        out["embedding"] = vectors.reshape(n, self.embedder.dims)
        out["topic_scores"] = _strings(scores)
        out["device"] = _strings([self.embedder.device] * n)
        return out


class SummarizeStage:
    """Abstractive summaries for the languages that have a configured model."""

    def __init__(self, config: EnrichConfig) -> None:
        from jobs.enrichment.embed import pick_device

        device = pick_device()
        self.summarizer = summarize.AbstractiveSummarizer(
            config.summarizer_routes, device=device, max_new_tokens=config.summary_max_tokens,
            batch_size=config.summary_gpu_batch_size if device.startswith("cuda") else config.summary_batch_size,
        )

    def __call__(self, batch: Batch) -> Batch:
        generated = self.summarizer.summarize([str(b) for b in batch["body"]], [str(l) for l in batch["language"]])
        summaries = [g if g else str(old) for g, old in zip(generated, batch["summary"])]
        kinds = ["abstractive" if g else str(old) for g, old in zip(generated, batch["summary_kind"])]
        out = dict(batch)
        out["summary"] = _strings(summaries)
        out["summary_kind"] = _strings(kinds)
        return out


# --- write -------------------------------------------------------------------------------------

class WriteStage:
    """Story assignment and the idempotent batch upsert, one transaction per batch.

    One actor: story ids depend on what earlier batches wrote, and the transaction-scoped
    story lock keeps a concurrent run (a micro-batch beside a batch job) from interleaving.
    """

    def __init__(self, config: EnrichConfig) -> None:
        from cluster.db import create_pool

        self.config = config
        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(create_pool(config.database_url, min_size=1, max_size=2))
        self.lock = threading.Lock()

    def __call__(self, batch: Batch) -> Batch:
        with self.lock:
            written = self.loop.run_until_complete(write_batch(self.pool, batch, self.config))
        devices = [str(d) for d in batch.get("device", [])]
        return {"written": np.array([written], dtype=np.int64),
                "device": _strings([devices[0] if devices else ""])}

    def close(self) -> None:
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()


async def write_batch(pool: Any, batch: Batch, config: EnrichConfig) -> int:
    n = _size(batch)
    if not n:
        return 0
    ids = [uuid.UUID(str(v)) for v in batch["id"]]
    published = [from_us(v) for v in batch["published_us"]]
    sources = [int(v) for v in batch["source_id"]]
    embeddings = [np.asarray(v, dtype=np.float32) for v in batch["embedding"]]
    signatures = [bytes(v) if len(v) else None for v in batch["minhash"]]
    async with pool.acquire() as conn, conn.transaction():
        await store.lock_stories(conn)
        existing = await store.existing_story_ids(conn, ids)
        neighbours = await store.story_neighbours(conn, ids, embeddings, published, sources, config.model_version,
                                                  config.story.window)
        items = [
            stories.StoryItem(str(ids[i]), sources[i], published[i], embeddings[i],
                              stories.signature_from_bytes(signatures[i]),
                              str(existing[ids[i]]) if ids[i] in existing else None)
            for i in range(n)
        ]
        found: dict[str, list[stories.StoryItem]] = {}
        for neighbour in neighbours:
            found.setdefault(str(ids[neighbour.for_index]), []).append(stories.StoryItem(
                str(neighbour.article_id), neighbour.source_id, neighbour.published_at, neighbour.embedding,
                stories.signature_from_bytes(neighbour.minhash), str(neighbour.story_id)))
        story_of = stories.assign_stories(items, found, config.story)
        rows = [
            store.EnrichmentRow(
                article_id=ids[i],
                source_id=sources[i],
                published_at=published[i],
                article_updated_at=from_us(batch["updated_us"][i]),
                language=str(batch["language"][i]),
                language_confidence=float(batch["language_confidence"][i]),
                sentiment=None if math.isnan(float(batch["sentiment"][i])) else float(batch["sentiment"][i]),
                topic_scores=json.loads(str(batch["topic_scores"][i])),
                summary=str(batch["summary"][i]) or None,
                summary_kind=str(batch["summary_kind"][i]) or None,
                embedding=embeddings[i],
                minhash=signatures[i],
                story_id=uuid.UUID(story_of[str(ids[i])]),
            )
            for i in range(n)
        ]
        return await store.write_enrichment(conn, rows, config.model_version, config.pipeline_version)
