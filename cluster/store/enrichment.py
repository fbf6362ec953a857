"""SQL for enrichment: what is pending, batch writes, story neighbours, and the read queries
behind similar articles, stories, search and topic filters.

Embeddings live in an untyped `vector` column; k-NN queries cast to the model's dimension so
that the partial HNSW index for that dimension (`ensure_vector_index`) serves them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import numpy as np
from pgvector import Vector

Conn = asyncpg.Pool | asyncpg.Connection
# Serializes story assignment across writers (a batch job beside a micro-batch): each batch
# reads its neighbours and writes its story ids under this transaction-scoped lock.
STORY_LOCK_KEY = 0x656E72696368  # "enrich"
# Held for a whole scheduler micro-batch, so ticks never pile up runs.
MICRO_BATCH_LOCK_KEY = 0x656E72696368 + 1
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al.); dampens the top ranks' weight
# An HNSW scan yields at most hnsw.ef_search rows (pgvector's default 40, its maximum 1000): the
# read queries raise it to what they need, and filtered ones (topics, a model version among
# others) to this many times that, since the filter drops candidates after the scan.
HNSW_DEFAULT_EF_SEARCH = 40
HNSW_MAX_EF_SEARCH = 1000
FILTERED_KNN_FACTOR = 10


@dataclass(frozen=True, slots=True)
class Selection:
    """Which articles a run enriches.

    Pending = never enriched, enriched by another model version or an older pipeline, or
    changed by the crawler since. `force_before` also takes rows enriched before that time
    (`--all`); `since` keeps articles published from then on.
    """

    model_version: str
    pipeline_version: int
    force_before: datetime | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ArticleRow:
    """What the pipeline needs of an article."""

    id: uuid.UUID
    source_id: int
    title: str
    summary: str | None
    content: str | None
    published_at: datetime
    updated_at: datetime
    language: str | None


@dataclass(frozen=True, slots=True)
class EnrichmentRow:
    article_id: uuid.UUID
    source_id: int
    published_at: datetime
    article_updated_at: datetime
    language: str
    language_confidence: float | None
    sentiment: float | None
    topic_scores: dict[str, float]
    summary: str | None
    summary_kind: str | None
    embedding: np.ndarray | None
    minhash: bytes | None
    story_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A stored article that may share a story with a batch article."""

    for_index: int  # position of the batch article it was found for
    article_id: uuid.UUID
    source_id: int
    published_at: datetime
    story_id: uuid.UUID
    embedding: np.ndarray | None
    minhash: bytes | None


@dataclass(frozen=True, slots=True)
class Enrichment:
    article_id: uuid.UUID
    model_version: str
    enriched_at: datetime
    language: str
    sentiment: float | None
    topics: dict[str, float]
    summary: str | None
    summary_kind: str | None
    story_id: uuid.UUID
    story_size: int


@dataclass(frozen=True, slots=True)
class ArticleHit:
    """An article in a similarity, story or search result; `score` is higher for better hits.
    The enrichment fields are empty/None for an article not enriched yet (text search)."""

    id: uuid.UUID
    source_id: int
    source_title: str | None
    title: str
    url: str | None
    published_at: datetime
    language: str | None
    summary: str | None
    score: float
    topics: list[str]
    story_id: uuid.UUID | None
    sentiment: float | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "ArticleHit":
        return cls(row["id"], row["source_id"], row["source_title"], row["title"], row["url"],
                   row["published_at"], row["language"], row["summary"], float(row["score"]),
                   list(row["topics"]), row["story_id"], row["sentiment"])


# --- what is pending ---------------------------------------------------------------------------

def _selection_sql(selection: Selection, params: list[object]) -> str:
    def param(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    if selection.force_before is not None:
        condition = f"(e.article_id IS NULL OR e.enriched_at < {param(selection.force_before)})"
    else:
        condition = (
            f"(e.article_id IS NULL OR e.model_version <> {param(selection.model_version)}"
            f" OR e.pipeline_version < {param(selection.pipeline_version)}"
            " OR e.article_updated_at < a.updated_at)"
        )
    if selection.since is not None:
        condition += f" AND a.published_at >= {param(selection.since)}"
    return condition


async def pending_ids(conn: Conn, selection: Selection, limit: int | None = None) -> list[uuid.UUID]:
    """Pending article ids, most recently fetched first (fresh news is enriched first)."""
    params: list[object] = []
    where = _selection_sql(selection, params)
    limit_sql = ""
    if limit is not None:
        params.append(limit)
        limit_sql = f"LIMIT ${len(params)}"
    rows = await conn.fetch(
        f"""
        SELECT a.id FROM articles a LEFT JOIN article_enrichment e ON e.article_id = a.id
        WHERE {where}
        ORDER BY a.fetched_at DESC, a.id
        {limit_sql}
        """,
        *params,
    )
    return [row["id"] for row in rows]


async def count_pending(conn: Conn, selection: Selection) -> int:
    params: list[object] = []
    where = _selection_sql(selection, params)
    return int(await conn.fetchval(
        f"SELECT count(*) FROM articles a LEFT JOIN article_enrichment e ON e.article_id = a.id WHERE {where}",
        *params,
    ))


async def load_articles(conn: Conn, ids: Sequence[uuid.UUID], selection: Selection) -> list[ArticleRow]:
    """The rows of `ids` that are still pending: another run may have finished some meanwhile."""
    params: list[object] = [list(ids)]
    where = _selection_sql(selection, params)
    rows = await conn.fetch(
        f"""
        SELECT a.id, a.source_id, a.title, a.summary, a.content, a.published_at, a.updated_at, a.language
        FROM articles a LEFT JOIN article_enrichment e ON e.article_id = a.id
        WHERE a.id = ANY($1::uuid[]) AND {where}
        """,
        *params,
    )
    return [ArticleRow(**dict(row)) for row in rows]


# --- writing -----------------------------------------------------------------------------------

async def lock_stories(conn: asyncpg.Connection) -> None:
    """Take the story lock until the end of the caller's transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", STORY_LOCK_KEY)


async def try_lock_micro_batch(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", MICRO_BATCH_LOCK_KEY))


async def unlock_micro_batch(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", MICRO_BATCH_LOCK_KEY)


async def existing_story_ids(conn: Conn, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Story ids already given to these articles: re-enriching an article never moves it."""
    rows = await conn.fetch(
        "SELECT article_id, story_id FROM article_enrichment WHERE article_id = ANY($1::uuid[])", list(ids)
    )
    return {row["article_id"]: row["story_id"] for row in rows}


async def story_neighbours(
    conn: Conn,
    ids: Sequence[uuid.UUID],
    embeddings: Sequence[np.ndarray],
    published_at: Sequence[datetime],
    source_ids: Sequence[int],
    model_version: str,
    window: timedelta,
    per_article: int = 8,
    candidates: int = 64,
) -> list[Neighbour]:
    """For each batch article, the nearest stored articles (same model) from other sources
    published within `window` of it; batch articles themselves are left out. Call it inside a
    transaction (the writer does) so that the planner settings below apply.

    The `candidates` nearest come from the HNSW index first and the window filter is applied
    to them after: with the window inside the k-NN query the planner scans every article of
    the window by time instead (it cannot estimate a window around a lateral parameter), which
    measured ~13 ms an article at a thousand articles a window, against ~0.5 ms this way. A
    same-event article is among the nearest by construction; what can fall out are near
    duplicates from outside the window, which would be filtered away anyway.
    """
    if not ids:
        return []
    dims = _dims(embeddings[0])
    if isinstance(conn, asyncpg.Connection) and conn.is_in_transaction():
        # HNSW yields at most ef_search rows per scan; it must cover the candidate count. Right
        # after a bulk load the statistics still say "empty table" and the planner would sort
        # the whole table per article (measured ~19 ms each at 2,000 rows); the index is always
        # right for this query, so the alternatives are switched off for this transaction.
        await conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, int(candidates))}")
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_bitmapscan = off")
    rows = await conn.fetch(
        f"""
        SELECT n.ord, c.article_id, c.source_id, c.published_at, c.story_id, c.embedding, c.minhash
        FROM unnest($1::vector[], $2::timestamptz[], $3::bigint[]) WITH ORDINALITY AS n(embedding, published_at, source_id, ord)
        CROSS JOIN LATERAL (
            SELECT near.article_id, near.source_id, near.published_at, near.story_id, near.embedding, near.minhash
            FROM (
                SELECT e.article_id, e.source_id, e.published_at, e.story_id, e.embedding, e.minhash,
                       e.embedding::vector({dims}) <=> n.embedding::vector({dims}) AS distance
                FROM article_enrichment e
                WHERE vector_dims(e.embedding) = {dims} AND e.model_version = $4 AND e.article_id <> ALL($6::uuid[])
                ORDER BY e.embedding::vector({dims}) <=> n.embedding::vector({dims})
                LIMIT $8
            ) near
            WHERE near.source_id <> n.source_id
              AND near.published_at BETWEEN n.published_at - $5::interval AND n.published_at + $5::interval
            ORDER BY near.distance
            LIMIT $7
        ) c
        """,
        [Vector(e) for e in embeddings], list(published_at), list(source_ids), model_version, window,
        list(ids), per_article, candidates,
    )
    return [
        Neighbour(int(row["ord"]) - 1, row["article_id"], row["source_id"], row["published_at"], row["story_id"],
                  row["embedding"].to_numpy() if row["embedding"] is not None else None, row["minhash"])
        for row in rows
    ]


async def write_enrichment(conn: Conn, rows: Sequence[EnrichmentRow], model_version: str, pipeline_version: int) -> int:
    """Upsert a batch in one statement (idempotent); a row keeps the story id it already had.

    Also fills articles.language where the feed declared none, so the language filter of the
    article list works for such feeds too.
    """
    if not rows:
        return 0
    await conn.execute(
        """
        INSERT INTO article_enrichment AS e (article_id, source_id, published_at, model_version, pipeline_version,
            article_updated_at, enriched_at, language, language_confidence, sentiment, topics, topic_scores, summary,
            summary_kind, embedding, minhash, story_id)
        SELECT t.article_id, t.source_id, t.published_at, $1, $2, t.article_updated_at, now(), t.language,
               t.language_confidence, t.sentiment, ARRAY(SELECT jsonb_object_keys(t.topic_scores)), t.topic_scores,
               t.summary, t.summary_kind, t.embedding, t.minhash, t.story_id
        FROM unnest($3::uuid[], $4::timestamptz[], $5::text[], $6::real[], $7::real[], $8::jsonb[], $9::text[],
                    $10::text[], $11::vector[], $12::bytea[], $13::uuid[], $14::bigint[], $15::timestamptz[])
             AS t(article_id, article_updated_at, language, language_confidence, sentiment, topic_scores, summary,
                  summary_kind, embedding, minhash, story_id, source_id, published_at)
        ON CONFLICT (article_id) DO UPDATE SET
            source_id = EXCLUDED.source_id, published_at = EXCLUDED.published_at, model_version = EXCLUDED.model_version, pipeline_version = EXCLUDED.pipeline_version,
            article_updated_at = EXCLUDED.article_updated_at, enriched_at = EXCLUDED.enriched_at,
            language = EXCLUDED.language, language_confidence = EXCLUDED.language_confidence,
            sentiment = EXCLUDED.sentiment, topics = EXCLUDED.topics, topic_scores = EXCLUDED.topic_scores,
            summary = EXCLUDED.summary, summary_kind = EXCLUDED.summary_kind, embedding = EXCLUDED.embedding,
            minhash = EXCLUDED.minhash, story_id = e.story_id
        """,
        model_version, pipeline_version,
        [r.article_id for r in rows], [r.article_updated_at for r in rows], [r.language for r in rows],
        [r.language_confidence for r in rows], [r.sentiment for r in rows],
        [json.dumps(r.topic_scores, sort_keys=True) for r in rows], [r.summary for r in rows],
        [r.summary_kind for r in rows], [Vector(r.embedding) if r.embedding is not None else None for r in rows],
        [r.minhash for r in rows], [r.story_id for r in rows], [r.source_id for r in rows],
        [r.published_at for r in rows],
    )
    await conn.execute(
        """
        UPDATE articles a SET language = t.language
        FROM unnest($1::uuid[], $2::text[]) AS t(id, language)
        WHERE a.id = t.id AND a.language IS NULL AND t.language <> 'unknown'
        """,
        [r.article_id for r in rows], [r.language for r in rows],
    )
    return len(rows)


async def ensure_vector_index(conn: Conn, dims: int) -> None:
    """A partial HNSW index for another model's dimension (the migration made the 384 one)."""
    dims = _dims_value(dims)
    await conn.execute(
        f"""
        CREATE INDEX IF NOT EXISTS article_enrichment_embedding_{dims}_idx ON article_enrichment
        USING hnsw ((embedding::vector({dims})) vector_cosine_ops) WHERE vector_dims(embedding) = {dims}
        """
    )


# --- reading -----------------------------------------------------------------------------------

_HIT_COLUMNS = """
    a.id, a.source_id, s.title AS source_title, a.title, a.url, a.published_at,
    coalesce(a.language, e.language) AS language, coalesce(e.summary, a.summary) AS summary,
    coalesce(e.topics, '{}') AS topics, e.story_id, e.sentiment
"""


async def get_enrichment(conn: Conn, article_id: uuid.UUID) -> Enrichment | None:
    row = await conn.fetchrow(
        """
        SELECT e.article_id, e.model_version, e.enriched_at, e.language, e.sentiment, e.topic_scores, e.summary,
               e.summary_kind, e.story_id,
               (SELECT count(*) FROM article_enrichment s WHERE s.story_id = e.story_id) AS story_size
        FROM article_enrichment e WHERE e.article_id = $1
        """,
        article_id,
    )
    if row is None:
        return None
    topics = json.loads(row["topic_scores"]) if isinstance(row["topic_scores"], str) else dict(row["topic_scores"])
    return Enrichment(row["article_id"], row["model_version"], row["enriched_at"], row["language"],
                      row["sentiment"], topics, row["summary"], row["summary_kind"], row["story_id"],
                      int(row["story_size"]))


async def latest_model_version(conn: Conn) -> str | None:
    """The model version of the most recent enrichment: the vector space a search query must be
    embedded in (None before anything was enriched)."""
    return await conn.fetchval("SELECT model_version FROM article_enrichment ORDER BY enriched_at DESC LIMIT 1")


@asynccontextmanager
async def _knn_scope(conn: Conn, candidates: int) -> AsyncIterator[asyncpg.Connection]:
    """A connection whose HNSW scans yield `candidates` rows, inside a transaction: SET LOCAL
    dies with it, so a pool released without asyncpg's reset (the read pool) keeps nothing."""
    ef_search = max(HNSW_DEFAULT_EF_SEARCH, min(HNSW_MAX_EF_SEARCH, int(candidates)))
    statement = f"SET LOCAL hnsw.ef_search = {ef_search}"
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as connection, connection.transaction():
            await connection.execute(statement)
            yield connection
    elif conn.is_in_transaction():
        await conn.execute(statement)
        yield conn
    else:
        async with conn.transaction():
            await conn.execute(statement)
            yield conn


async def similar_articles(conn: Conn, article_id: uuid.UUID, limit: int = 10,
                           exclude_same_story: bool = False) -> list[ArticleHit]:
    """Nearest articles by embedding (cosine), same model only; [] when the article has none."""
    anchor = await conn.fetchrow(
        "SELECT embedding, model_version, story_id FROM article_enrichment WHERE article_id = $1 AND embedding IS NOT NULL",
        article_id,
    )
    if anchor is None:
        return []
    vector = anchor["embedding"].to_numpy()
    dims = _dims(vector)
    story_filter = "AND e.story_id <> $5" if exclude_same_story else ""
    params: list[object] = [Vector(vector), anchor["model_version"], article_id, limit]
    if exclude_same_story:
        params.append(anchor["story_id"])
    async with _knn_scope(conn, (limit + 1) * FILTERED_KNN_FACTOR if exclude_same_story else limit + 1) as knn:
        rows = await knn.fetch(
            f"""
            SELECT {_HIT_COLUMNS}, 1 - (e.embedding::vector({dims}) <=> $1::vector({dims})) AS score
            FROM article_enrichment e JOIN articles a ON a.id = e.article_id JOIN sources s ON s.id = a.source_id
            WHERE vector_dims(e.embedding) = {dims} AND e.model_version = $2 AND e.article_id <> $3 {story_filter}
            ORDER BY e.embedding::vector({dims}) <=> $1::vector({dims})
            LIMIT $4
            """,
            *params,
        )
    return [ArticleHit.from_row(row) for row in rows]


async def has_embedding(conn: Conn, article_id: uuid.UUID) -> bool | None:
    """Whether the article has an embedding to look for neighbours with; None when there is no
    such article. Tells "not enriched yet" from "unknown" where similar_articles says [] to both."""
    row = await conn.fetchrow(
        """
        SELECT e.embedding IS NOT NULL AS embedded
        FROM articles a LEFT JOIN article_enrichment e ON e.article_id = a.id WHERE a.id = $1
        """,
        article_id,
    )
    return None if row is None else bool(row["embedded"])


async def story_articles(conn: Conn, story_id: uuid.UUID, limit: int | None = None) -> list[ArticleHit]:
    """Every article of a story (at most `limit`), oldest first (the first report leads); score is 1."""
    rows = await conn.fetch(
        f"""
        SELECT {_HIT_COLUMNS}, 1.0 AS score
        FROM article_enrichment e JOIN articles a ON a.id = e.article_id JOIN sources s ON s.id = a.source_id
        WHERE e.story_id = $1
        ORDER BY a.published_at, a.id
        LIMIT $2
        """,
        story_id, limit,
    )
    return [ArticleHit.from_row(row) for row in rows]


async def semantic_search(conn: Conn, query_embedding: np.ndarray | Sequence[float], model_version: str,
                          limit: int = 20, topics: Sequence[str] | None = None) -> list[ArticleHit]:
    """Articles nearest to a query embedded with the model of `model_version`."""
    vector = np.asarray(query_embedding, dtype=np.float32)
    dims = _dims(vector)
    params: list[object] = [Vector(vector), model_version, limit]
    # `e` is joined already: its topics column needs no EXISTS.
    topic_sql = _and_topics(params, topics, lambda placeholder: f"e.topics && {placeholder}::text[]")
    async with _knn_scope(conn, limit * FILTERED_KNN_FACTOR if topics else limit) as knn:
        rows = await knn.fetch(
            f"""
            SELECT {_HIT_COLUMNS}, 1 - (e.embedding::vector({dims}) <=> $1::vector({dims})) AS score
            FROM article_enrichment e JOIN articles a ON a.id = e.article_id JOIN sources s ON s.id = a.source_id
            WHERE vector_dims(e.embedding) = {dims} AND e.model_version = $2 {topic_sql}
            ORDER BY e.embedding::vector({dims}) <=> $1::vector({dims})
            LIMIT $3
            """,
            *params,
        )
    return [ArticleHit.from_row(row) for row in rows]


async def text_search(conn: Conn, query: str, limit: int = 20, topics: Sequence[str] | None = None) -> list[ArticleHit]:
    """Full-text search ranked by relevance (ts_rank_cd), newest first among equals."""
    params: list[object] = [query, limit]
    topic_sql = _and_topics(params, topics)
    rows = await conn.fetch(
        f"""
        SELECT {_HIT_COLUMNS}, ts_rank_cd(a.search, q) AS score
        FROM articles a JOIN sources s ON s.id = a.source_id
        LEFT JOIN article_enrichment e ON e.article_id = a.id,
        websearch_to_tsquery('simple', $1) AS q
        WHERE a.search @@ q {topic_sql}
        ORDER BY score DESC, a.published_at DESC, a.id
        LIMIT $2
        """,
        *params,
    )
    return [ArticleHit.from_row(row) for row in rows]


async def hybrid_search(conn: Conn, query: str, query_embedding: np.ndarray | Sequence[float], model_version: str,
                        limit: int = 20, candidates: int = 100, topics: Sequence[str] | None = None) -> list[ArticleHit]:
    """Text and semantic results fused by reciprocal rank: score = Σ 1 / (60 + rank).

    Rank fusion needs no calibration between ts_rank and cosine, which live on different scales.
    """
    vector = np.asarray(query_embedding, dtype=np.float32)
    dims = _dims(vector)
    params: list[object] = [query, Vector(vector), model_version, candidates, limit]
    topic_sql = _and_topics(params, topics)
    async with _knn_scope(conn, candidates * FILTERED_KNN_FACTOR if topics else candidates) as knn:
        rows = await knn.fetch(
            f"""
            WITH semantic AS (
                SELECT id, row_number() OVER (ORDER BY distance, id) AS rank FROM (
                    SELECT e.article_id AS id, e.embedding::vector({dims}) <=> $2::vector({dims}) AS distance
                    FROM article_enrichment e JOIN articles a ON a.id = e.article_id
                    WHERE vector_dims(e.embedding) = {dims} AND e.model_version = $3 {topic_sql}
                    ORDER BY e.embedding::vector({dims}) <=> $2::vector({dims})
                    LIMIT $4
                ) nearest
            ), lexical AS (
                SELECT id, row_number() OVER (ORDER BY relevance DESC, id) AS rank FROM (
                    SELECT a.id, ts_rank_cd(a.search, q) AS relevance
                    FROM articles a, websearch_to_tsquery('simple', $1) AS q
                    WHERE a.search @@ q {topic_sql}
                    ORDER BY relevance DESC
                    LIMIT $4
                ) matching
            ), fused AS (
                SELECT coalesce(semantic.id, lexical.id) AS id,
                       coalesce(1.0 / ({RRF_K} + semantic.rank), 0) + coalesce(1.0 / ({RRF_K} + lexical.rank), 0) AS score
                FROM semantic FULL OUTER JOIN lexical ON lexical.id = semantic.id
            )
            SELECT {_HIT_COLUMNS}, f.score
            FROM fused f JOIN articles a ON a.id = f.id JOIN sources s ON s.id = a.source_id
            LEFT JOIN article_enrichment e ON e.article_id = a.id
            ORDER BY f.score DESC, a.published_at DESC, a.id
            LIMIT $5
            """,
            *params,
        )
    return [ArticleHit.from_row(row) for row in rows]


def topic_filter_sql(placeholder: str, article_alias: str = "a") -> str:
    """A WHERE condition for `articles {article_alias}`: the article has any of the topics bound
    to `placeholder` (a text[] parameter such as "$3"). For the topic filter of the article list:

        conditions.append(topic_filter_sql(param(list_of_topics)))
    """
    return (
        f"EXISTS (SELECT 1 FROM article_enrichment topic_e WHERE topic_e.article_id = {article_alias}.id"
        f" AND topic_e.topics && {placeholder}::text[])"
    )


def _and_topics(params: list[object], topics: Sequence[str] | None,
                condition: Callable[[str], str] = topic_filter_sql) -> str:
    """`AND <condition>` with the topics bound as the next parameter, or "" without topics."""
    if not topics:
        return ""
    params.append(list(topics))
    return f"AND {condition(f'${len(params)}')}"


async def topic_counts(conn: Conn, since: datetime | None = None) -> dict[str, int]:
    """Articles per topic (optionally published since a time), for a topic menu."""
    rows = await conn.fetch(
        """
        SELECT topic, count(*) AS n
        FROM article_enrichment e JOIN articles a ON a.id = e.article_id, unnest(e.topics) AS topic
        WHERE $1::timestamptz IS NULL OR a.published_at >= $1
        GROUP BY topic ORDER BY n DESC, topic
        """,
        since,
    )
    return {row["topic"]: int(row["n"]) for row in rows}


def _dims(vector: np.ndarray | Sequence[float]) -> int:
    return _dims_value(len(vector))


def _dims_value(dims: int) -> int:
    # Formatted into SQL (a cast's type modifier cannot be a parameter): only a sane int passes.
    dims = int(dims)
    if not 1 <= dims <= 16000:
        raise ValueError(f"store: embedding dimension {dims} out of range")
    return dims
