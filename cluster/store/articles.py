"""SQL for articles: the idempotent batch upsert and the newest-first keyset listing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import asyncpg

from cluster.store import sources as source_store
from cluster.store.enrichment import topic_filter_sql

# Categories travel as one string per article: unnest() would flatten a text[][] parameter.
_CATEGORY_SEPARATOR = "\x1f"


class CursorError(ValueError):
    """An opaque cursor that was not produced by list_articles."""


@dataclass(frozen=True, slots=True)
class ArticleInput:
    """One entry as the crawler hands it to the store."""

    dedupe_key: str
    title: str
    guid: str | None = None
    url: str | None = None
    canonical_url: str | None = None
    author: str | None = None
    summary: str | None = None
    content: str | None = None
    published_at: datetime | None = None
    language: str | None = None
    categories: tuple[str, ...] = field(default_factory=tuple)

    @property
    def content_hash(self) -> str:
        # What a reader sees; when it changes the stored article is updated, otherwise untouched.
        parts = (self.title, self.url or "", self.author or "", self.summary or "", self.content or "",
                 _CATEGORY_SEPARATOR.join(self.categories))
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class UpsertResult:
    inserted: list[uuid.UUID]
    updated: list[uuid.UUID]
    unchanged: int


@dataclass(frozen=True, slots=True)
class Article:
    id: uuid.UUID
    source_id: int
    source_title: str | None
    guid: str | None
    url: str | None
    canonical_url: str | None
    title: str
    author: str | None
    summary: str | None
    content: str | None
    published_at: datetime
    fetched_at: datetime
    updated_at: datetime
    language: str | None
    categories: list[str]

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "Article":
        return cls(**dict(row))


@dataclass(frozen=True, slots=True)
class ArticleFilter:
    source_id: int | None = None
    language: str | None = None
    query: str | None = None
    since: datetime | None = None
    topics: tuple[str, ...] = ()  # any of them (enrichment topics)


@dataclass(frozen=True, slots=True)
class ArticlePage:
    articles: list[Article]
    next_cursor: str | None


def _unique_by_key(items: list[ArticleInput]) -> list[ArticleInput]:
    # A feed listing the same guid twice would make ON CONFLICT touch one row twice (an error);
    # the later entry wins, as it would on a second crawl.
    # Two guids for one canonical URL are one story re-published: the later entry wins too.
    by_key: dict[str, ArticleInput] = {}
    key_of_canonical: dict[str, str] = {}
    for item in items:
        key = key_of_canonical.get(item.canonical_url, item.dedupe_key) if item.canonical_url else item.dedupe_key
        by_key.pop(key, None)
        by_key[key] = item if key == item.dedupe_key else replace(item, dedupe_key=key)
        if item.canonical_url:
            key_of_canonical[item.canonical_url] = key
    return list(by_key.values())


# The upsert, with each entry's source at $1 and the entries at $2..$14 (see _upsert_params): the
# entries of several feeds can go in one statement.
_UPSERT = """
        INSERT INTO articles AS a (source_id, dedupe_key, guid, url, canonical_url, title, author, summary,
                                   content, published_at, language, categories, content_hash)
        SELECT r.source_id, r.key, r.guid, r.url, r.canonical_url, r.title, r.author, r.summary, r.content,
               coalesce(r.published_at, $13), r.language,
               coalesce(string_to_array(nullif(r.categories, ''), E'\\x1f'), '{}'), r.content_hash
        FROM (
            SELECT DISTINCT ON (t.source_id, key) key, t.*
            FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                        $8::text[], $9::text[], $10::timestamptz[], $11::text[], $12::text[], $14::text[])
                 WITH ORDINALITY AS t(source_id, dedupe_key, guid, url, canonical_url, title, author, summary,
                                      content, published_at, language, categories, content_hash, ord)
            -- An entry whose canonical URL is already stored under another key is that article
            -- again (the same story re-published with a new guid): it updates the stored row.
            LEFT JOIN LATERAL (
                SELECT e.dedupe_key FROM articles e
                WHERE e.source_id = t.source_id AND t.canonical_url IS NOT NULL AND e.canonical_url = t.canonical_url
                ORDER BY e.fetched_at, e.id LIMIT 1
            ) existing ON true
            CROSS JOIN LATERAL (SELECT coalesce(existing.dedupe_key, t.dedupe_key) AS key) k
            ORDER BY t.source_id, key, t.ord DESC
        ) r
        -- An entry stored with the same content is left out before the insert is tried: a tried
        -- insert computes the search vector and locks the conflicting row (a WAL record) even
        -- when the DO UPDATE below would change nothing. A refresh of a feed with two new
        -- entries then costs two inserts, not twenty-two.
        WHERE NOT EXISTS (
            SELECT 1 FROM articles same
            WHERE same.source_id = r.source_id AND same.dedupe_key = r.key AND same.content_hash = r.content_hash
        )
        ORDER BY r.ord  -- rows come back in the feed's order
        ON CONFLICT (source_id, dedupe_key) DO UPDATE SET
            guid = EXCLUDED.guid, url = EXCLUDED.url, canonical_url = EXCLUDED.canonical_url,
            title = EXCLUDED.title, author = EXCLUDED.author, summary = EXCLUDED.summary,
            -- The page's full text (content_text set) outlives later edits of the feed's teaser.
            content = CASE WHEN a.content_text IS NULL THEN EXCLUDED.content ELSE a.content END,
            language = coalesce(EXCLUDED.language, a.language),
            categories = EXCLUDED.categories, content_hash = EXCLUDED.content_hash, updated_at = now()
        WHERE a.content_hash IS DISTINCT FROM EXCLUDED.content_hash
        RETURNING a.id, a.source_id, (a.xmax = 0) AS inserted
"""


def _upsert_params(writes: list[tuple[int, list[ArticleInput]]], now: datetime) -> tuple[object, ...]:
    items = [item for _, feed_items in writes for item in feed_items]
    return (
        [source_id for source_id, feed_items in writes for _ in feed_items],
        [i.dedupe_key for i in items], [i.guid for i in items], [i.url for i in items],
        [i.canonical_url for i in items], [i.title for i in items], [i.author for i in items],
        [i.summary for i in items], [i.content for i in items], [i.published_at for i in items],
        [i.language for i in items], [_CATEGORY_SEPARATOR.join(i.categories) for i in items],
        now, [i.content_hash for i in items],
    )


def _upsert_results(writes: list[tuple[int, list[ArticleInput]]], rows: list[asyncpg.Record]) -> list[UpsertResult]:
    """Each feed's share of the rows (the upsert names the source of each; a source is in a
    statement at most once)."""
    by_source: dict[int, UpsertResult] = {source_id: UpsertResult([], [], len(items)) for source_id, items in writes}
    for row in rows:
        result = by_source[row["source_id"]]
        (result.inserted if row["inserted"] else result.updated).append(row["id"])
    return [replace(result, unchanged=result.unchanged - len(result.inserted) - len(result.updated))
            for result in by_source.values()]


async def upsert_articles(
    conn: asyncpg.Pool | asyncpg.Connection, source_id: int, items: list[ArticleInput], now: datetime | None = None
) -> UpsertResult:
    """Insert new entries and update changed ones in a single round trip.

    Idempotent: the unique (source_id, dedupe_key) makes a re-crawl a no-op for unchanged
    entries. published_at is set once, so keyset pagination never sees an article move.
    """
    items = _unique_by_key(items)
    if not items:
        return UpsertResult([], [], 0)
    writes = [(source_id, items)]
    rows = await conn.fetch(_UPSERT, *_upsert_params(writes, now or datetime.now(timezone.utc)))
    return _upsert_results(writes, rows)[0]


@dataclass(frozen=True, slots=True)
class FeedWrite:
    """A fetched feed for :func:`store_feeds`: its entries, and what the fetch records on its source."""

    source_id: int
    items: list[ArticleInput]
    success: source_store.Success


# The upsert and the sources' record_success in one statement: the writes of several fetched feeds
# cost one round trip and one commit, and a source's row says "fetched" exactly when its entries
# are stored.
_STORE_FEEDS = f"""
    WITH stored AS ({_UPSERT}),
    recorded AS ({source_store.success_update_sql(
        15, "(SELECT count(*) FROM stored WHERE stored.inserted AND stored.source_id = u.id)")})
    SELECT id, source_id, inserted FROM stored
"""


async def store_feeds(
    conn: asyncpg.Pool | asyncpg.Connection, feeds: list[FeedWrite], now: datetime | None = None
) -> list[UpsertResult]:
    """upsert_articles() then sources.record_success() with the articles added, for each feed, in
    one statement; a result per feed, in order. A source may appear once."""
    if len({feed.source_id for feed in feeds}) != len(feeds):
        raise ValueError("store: a source may appear once in store_feeds")
    if not feeds:
        return []
    writes = [(feed.source_id, _unique_by_key(feed.items)) for feed in feeds]
    params = _upsert_params(writes, now or datetime.now(timezone.utc))
    success = source_store.success_columns([feed.source_id for feed in feeds], [feed.success for feed in feeds])
    rows = await conn.fetch(_STORE_FEEDS, *params, *success)
    return _upsert_results(writes, rows)


async def store_feed(
    conn: asyncpg.Pool | asyncpg.Connection,
    source_id: int,
    items: list[ArticleInput],
    success: source_store.Success,
    now: datetime | None = None,
) -> UpsertResult:
    """store_feeds() for one feed."""
    return (await store_feeds(conn, [FeedWrite(source_id, items, success)], now))[0]


_ARTICLE_COLUMNS = """
    a.id, a.source_id, s.title AS source_title, a.guid, a.url, a.canonical_url, a.title, a.author,
    a.summary, a.content, a.published_at, a.fetched_at, a.updated_at, a.language, a.categories
"""


async def get_article(conn: asyncpg.Pool | asyncpg.Connection, article_id: uuid.UUID) -> Article | None:
    row = await conn.fetchrow(
        f"SELECT {_ARTICLE_COLUMNS} FROM articles a JOIN sources s ON s.id = a.source_id WHERE a.id = $1",
        article_id,
    )
    return Article.from_row(row) if row else None


def encode_cursor(published_at: datetime, article_id: uuid.UUID) -> str:
    raw = json.dumps([published_at.isoformat(), str(article_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        published, article_id = json.loads(raw)
        if not isinstance(published, str) or not isinstance(article_id, str):
            # uuid.UUID(5) raises AttributeError, which would escape as a server error.
            raise TypeError("cursor parts must be strings")
        when = datetime.fromisoformat(published)
        if when.tzinfo is None:
            raise ValueError("naive timestamp")
        return when, uuid.UUID(article_id)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise CursorError("invalid cursor") from None


async def list_articles(
    conn: asyncpg.Pool | asyncpg.Connection,
    filters: ArticleFilter = ArticleFilter(),
    limit: int = 20,
    cursor: str | None = None,
    with_content: bool = False,
) -> ArticlePage:
    """Newest first, keyset-paginated on (published_at, id): pages stay correct while new
    articles arrive, and every page costs an index range scan however deep it is."""
    if limit < 1:  # LIMIT 1 would fetch a row, and an empty page has no last article to point at
        raise ValueError(f"store: limit must be at least 1, got {limit}")
    conditions: list[str] = []
    params: list[object] = []

    def param(value: object) -> str:
        params.append(value)
        return f"${len(params)}"

    # Only the filters present go into the SQL, so the planner can use the listing indexes.
    if filters.source_id is not None:
        conditions.append(f"a.source_id = {param(filters.source_id)}")
    if filters.language is not None:
        conditions.append(f"a.language = {param(filters.language)}")
    if filters.query:
        conditions.append(f"a.search @@ websearch_to_tsquery('simple', {param(filters.query)})")
    if filters.since is not None:
        conditions.append(f"a.published_at >= {param(filters.since)}")
    if filters.topics:
        conditions.append(topic_filter_sql(param(list(filters.topics))))
    if cursor is not None:
        published_at, article_id = decode_cursor(cursor)
        conditions.append(f"(a.published_at, a.id) < ({param(published_at)}, {param(article_id)})")
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    columns = _ARTICLE_COLUMNS if with_content else _ARTICLE_COLUMNS.replace("a.content,", "NULL::text AS content,")
    rows = await conn.fetch(
        f"""
        SELECT {columns} FROM articles a JOIN sources s ON s.id = a.source_id
        {where}
        ORDER BY a.published_at DESC, a.id DESC
        LIMIT {param(limit + 1)}
        """,
        *params,
    )
    articles = [Article.from_row(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = articles[-1]
        next_cursor = encode_cursor(last.published_at, last.id)
    return ArticlePage(articles, next_cursor)


async def count_articles(conn: asyncpg.Pool | asyncpg.Connection, source_id: int | None = None) -> int:
    if source_id is None:
        return int(await conn.fetchval("SELECT count(*) FROM articles"))
    return int(await conn.fetchval("SELECT count(*) FROM articles WHERE source_id = $1", source_id))


@dataclass(frozen=True, slots=True)
class FullContentCandidate:
    id: uuid.UUID
    url: str
    summary: str | None
    content: str | None


async def missing_full_content(
    conn: asyncpg.Pool | asyncpg.Connection, source_id: int, limit: int
) -> list[FullContentCandidate]:
    """A source's newest articles whose page has not been looked at yet."""
    rows = await conn.fetch(
        """
        SELECT id, url, summary, content FROM articles
        WHERE source_id = $1 AND full_content_at IS NULL AND url IS NOT NULL
        ORDER BY published_at DESC, id DESC LIMIT $2
        """,
        source_id, limit,
    )
    return [FullContentCandidate(**dict(row)) for row in rows]


async def set_full_content(
    conn: asyncpg.Pool | asyncpg.Connection,
    article_id: uuid.UUID,
    *,
    html: str | None,
    text: str | None,
    paywalled: bool,
    canonical_url: str | None = None,
) -> None:
    """Record the outcome of looking at an article's page (also when nothing better was found,
    so the page is not fetched again). content_hash stays the feed's, so the next crawl of an
    unchanged feed does not overwrite the fuller text."""
    await conn.execute(
        """
        UPDATE articles SET content = coalesce($2, content), content_text = coalesce($3, content_text),
            paywalled = $4, canonical_url = coalesce(canonical_url, $5), full_content_at = now(),
            updated_at = CASE WHEN $2 IS NULL THEN updated_at ELSE now() END
        WHERE id = $1
        """,
        article_id, html, text, paywalled, canonical_url,
    )


async def mark_scraped(conn: asyncpg.Pool | asyncpg.Connection, source_id: int, keys: list[str],
                       paywalled_keys: list[str]) -> None:
    """Articles scraped from their own pages need no full-content pass; some are paywalled."""
    await conn.execute(
        """
        UPDATE articles SET full_content_at = coalesce(full_content_at, now()),
                            paywalled = dedupe_key = ANY($3::text[])
        WHERE source_id = $1 AND dedupe_key = ANY($2::text[])
        """,
        source_id, keys, paywalled_keys,
    )
