"""Enriched test articles for the Api tests: stored through the store as the crawler stores them,
embedded by the real query model (the bundled all-MiniLM-L6-v2, the enrichment's default), and
enriched through cluster.store.enrichment.write_enrichment as the pipeline writes them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
import numpy as np

from cluster.store.articles import get_article
from cluster.store.enrichment import EnrichmentRow, write_enrichment
from deployments.query_encoding import process_model
from jobs.enrichment.config import PIPELINE_VERSION
from jobs.enrichment.embed import DEFAULT_MAX_TOKENS, model_version
from jobs.enrichment.text import model_input
from tests.deployments.support import BASE_TIME, Seeder

# The version the default query encoder reports: what `newsray up` would have stored.
MODEL_VERSION = model_version("")


@dataclass(frozen=True)
class Doc:
    key: str
    source: str
    title: str
    body: str
    topics: dict[str, float]
    story: str
    hours: int
    enriched: bool = True


# Two articles a story for the quake and the rate rise; no word of "seismic catastrophe" appears
# anywhere (semantic search must find the quake anyway); "inflation" is in both rate articles'
# text, in one title.
DOCS = [
    Doc("quake-a", "Daily Ledger", "Powerful earthquake kills hundreds in Morocco",
        "A magnitude 6.8 quake struck the High Atlas mountains late on Friday, flattening villages near"
        " Marrakech. Rescue teams dug through rubble for survivors.", {"disasters": 0.9}, "quake", 0),
    Doc("quake-b", "Capital Wire", "Rescuers race to reach mountain villages after Moroccan tremor",
        "Soldiers and volunteers cleared rockfalls to reach remote hamlets where homes collapsed during the"
        " night. The death toll rose above two thousand.", {"disasters": 0.85}, "quake", 2),
    Doc("rates-a", "Daily Ledger", "Central bank raises interest rates to fight inflation",
        "The central bank lifted its main rate by a quarter point on Thursday and warned that inflation is"
        " still running too fast.", {"economy": 0.9}, "rates", 24),
    Doc("rates-b", "Continental Times", "ECB lifts borrowing costs for the tenth time",
        "Policymakers in Frankfurt voted to raise the deposit rate to a record high, saying inflation"
        " remains stubborn.", {"economy": 0.88, "markets": 0.8}, "rates", 26),
    Doc("derby", "Capital Wire", "Late goal settles the derby as City beat United",
        "A header in stoppage time gave City a dramatic win in front of sixty thousand fans.",
        {"football": 0.9}, "derby", 48),
    Doc("election", "Continental Times", "Opposition party wins parliamentary election by a landslide",
        "Voters turned out in record numbers and the governing coalition conceded defeat before midnight.",
        {"politics": 0.9, "elections": 0.95}, "election", 72),
    Doc("phone", "Daily Ledger", "New smartphone unveiled with a foldable screen",
        "The company showed a handset whose display folds in half, with a faster chip and a longer battery"
        " life.", {"technology": 0.9}, "phone", 96),
    Doc("museum", "Capital Wire", "City museum reopens after a long renovation",
        "Visitors queued for hours to see the restored galleries.", {}, "museum", 120, enriched=False),
]


def embed(texts: list[str]) -> np.ndarray:
    """Document vectors as the pipeline makes them: the model input of title and body."""
    _, vectors = process_model().encode_sync(texts)
    return vectors


def doc_vectors() -> dict[str, np.ndarray]:
    vectors = embed([model_input(d.title, d.body, DEFAULT_MAX_TOKENS) for d in DOCS])
    return {doc.key: vector for doc, vector in zip(DOCS, vectors)}


@dataclass
class World:
    ids: dict[str, uuid.UUID] = field(default_factory=dict)  # article id by doc key
    stories: dict[str, uuid.UUID] = field(default_factory=dict)  # story id by story name
    sources: dict[str, int] = field(default_factory=dict)

    def keys(self, ids: list[str]) -> list[str]:
        """Doc keys of article ids as the API returns them (unknown ids stay as they are)."""
        by_id = {str(v): k for k, v in self.ids.items()}
        return [by_id.get(i, i) for i in ids]


async def seed_world(db: asyncpg.Pool, vectors: dict[str, np.ndarray], model: str = MODEL_VERSION) -> World:
    """DOCS stored, and the enriched ones written with `model` as their model version."""
    seed = Seeder(db)
    world = World()
    for n, doc in enumerate(DOCS):
        if doc.source not in world.sources:
            world.sources[doc.source] = await seed.source(title=doc.source)
        [article_id] = await seed.articles(world.sources[doc.source], 1, start=BASE_TIME + timedelta(hours=doc.hours),
                                           title=doc.title, content=doc.body, prefix=f"k{n}")
        world.ids[doc.key] = uuid.UUID(article_id)
    rows = []
    for doc in DOCS:
        if not doc.enriched:
            continue
        story = world.stories.setdefault(doc.story, world.ids[doc.key])  # the first report names it
        rows.append(await enrichment_row(db, world.ids[doc.key], doc.topics, story, vectors[doc.key]))
    await write_enrichment(db, rows, model, PIPELINE_VERSION)
    return world


async def enrichment_row(db: asyncpg.Pool, article_id: uuid.UUID, topics: dict[str, float],
                         story_id: uuid.UUID | None = None, vector: np.ndarray | None = None) -> EnrichmentRow:
    article = await get_article(db, article_id)
    assert article is not None
    return EnrichmentRow(
        article_id=article.id, source_id=article.source_id, published_at=article.published_at,
        article_updated_at=article.updated_at, language="en", language_confidence=0.99, sentiment=-0.2,
        topic_scores=topics, summary=f"Summary: {article.title}", summary_kind="extractive", embedding=vector,
        minhash=None, story_id=story_id or article.id,
    )
