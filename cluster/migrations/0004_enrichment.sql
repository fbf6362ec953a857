-- Enrichment results, one row per article, written by jobs/enrich.py (Ray Data) in batches.
-- A table of its own rather than columns on articles: the crawler's upsert never touches it,
-- and deleting an article takes its enrichment with it.
CREATE TABLE article_enrichment (
    article_id          uuid PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    -- Copies of the article's (never changing) source and publication time: the story
    -- neighbour query filters the k-NN candidates on them without a join per candidate.
    source_id           bigint NOT NULL,
    published_at        timestamptz NOT NULL,
    -- What produced the row: a different embedding model or a newer pipeline makes it pending.
    model_version       text NOT NULL,
    pipeline_version    integer NOT NULL,
    -- articles.updated_at as it was when enriched: a crawler update after that makes it pending.
    article_updated_at  timestamptz NOT NULL,
    enriched_at         timestamptz NOT NULL DEFAULT now(),
    language            text NOT NULL DEFAULT 'unknown',
    language_confidence real,
    -- VADER compound score in [-1, 1]; NULL for languages VADER does not know.
    sentiment           real,
    topics              text[] NOT NULL DEFAULT '{}',
    topic_scores        jsonb NOT NULL DEFAULT '{}',
    summary             text,
    summary_kind        text CHECK (summary_kind IN ('extractive', 'abstractive')),
    -- Untyped so another model (say 768 dims) needs no migration; each dimension gets its own
    -- partial HNSW index on a cast expression (HNSW needs a fixed dimension).
    embedding           vector,
    -- MinHash signature of the text's word shingles (uint32 little-endian), for near duplicates.
    minhash             bytea,
    story_id            uuid NOT NULL
);

-- The default model (all-MiniLM-L6-v2) has 384 dimensions; cosine distance on normalized vectors.
CREATE INDEX article_enrichment_embedding_384_idx ON article_enrichment
    USING hnsw ((embedding::vector(384)) vector_cosine_ops)
    WHERE vector_dims(embedding) = 384;
CREATE INDEX article_enrichment_story_idx ON article_enrichment (story_id);
CREATE INDEX article_enrichment_topics_idx ON article_enrichment USING gin (topics);
