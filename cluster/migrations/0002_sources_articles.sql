-- Sources: one row per feed or site, keyed by its normalized URL.
CREATE TABLE sources (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                 text NOT NULL UNIQUE,
    kind                text NOT NULL DEFAULT 'feed' CHECK (kind IN ('feed', 'site')),
    title               text,
    site_url            text,
    language            text,
    category            text,
    etag                text,
    last_modified       text,
    enabled             boolean NOT NULL DEFAULT true,
    interval_s          integer NOT NULL DEFAULT 300 CHECK (interval_s > 0),
    next_fetch_at       timestamptz NOT NULL DEFAULT now(),
    last_fetched_at     timestamptz,
    last_success_at     timestamptz,
    last_status         integer,
    consecutive_errors  integer NOT NULL DEFAULT 0,
    error_count         integer NOT NULL DEFAULT 0,
    last_error          text,
    last_error_at       timestamptz,
    articles_added      bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
-- The scheduler's question, "which enabled sources are due?", answered from an index.
CREATE INDEX sources_due_idx ON sources (next_fetch_at) WHERE enabled;

-- Articles: unique per source on dedupe_key (the guid, or the canonical URL when a feed has none).
CREATE TABLE articles (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    source_id      bigint NOT NULL REFERENCES sources (id) ON DELETE CASCADE,
    dedupe_key     text NOT NULL,
    guid           text,
    url            text,
    canonical_url  text,
    title          text NOT NULL,
    author         text,
    summary        text,
    content        text,
    published_at   timestamptz NOT NULL,
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    language       text,
    categories     text[] NOT NULL DEFAULT '{}',
    content_hash   text NOT NULL,
    -- 'simple' keeps every word of every language (English, Turkish, ...) searchable; stemming
    -- per language would need the language known at write time and would miss mixed feeds.
    search         tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('simple', coalesce(summary, '')), 'B') ||
        setweight(to_tsvector('simple', left(coalesce(content, ''), 100000)), 'C')
    ) STORED,
    CONSTRAINT articles_source_dedupe_key UNIQUE (source_id, dedupe_key)
);
CREATE INDEX articles_newest_idx ON articles (published_at DESC, id DESC);
CREATE INDEX articles_source_newest_idx ON articles (source_id, published_at DESC, id DESC);
CREATE INDEX articles_search_idx ON articles USING gin (search);
CREATE INDEX articles_canonical_url_idx ON articles (source_id, canonical_url);
