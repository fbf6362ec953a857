"""The API's response models: what OpenAPI documents and what FastAPI serializes.

FastAPI serializes a declared response model straight to JSON bytes in pydantic's Rust core,
so routes return the store's dataclasses and let validation read their attributes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class _FromStore(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ArticleSummary(_FromStore):
    """An article as lists show it: no content, which can be hundreds of kilobytes."""

    id: UUID
    source_id: int
    source_title: str | None
    title: str
    url: str | None
    canonical_url: str | None
    author: str | None
    summary: str | None
    published_at: datetime
    fetched_at: datetime
    language: str | None
    categories: list[str]


class ArticleDetail(ArticleSummary):
    guid: str | None
    updated_at: datetime
    content: str | None


class ArticleList(BaseModel):
    items: list[ArticleSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next (older) page; null on the last page.")


class SourceHealth(_FromStore):
    enabled: bool
    last_status: int | None = Field(description="HTTP status of the last fetch.")
    last_fetched_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_errors: int
    error_count: int
    articles_added: int
    next_fetch_at: datetime
    interval_s: int


class SourceOut(BaseModel):
    id: int
    url: str
    kind: Literal["feed", "site"]
    title: str | None
    site_url: str | None
    language: str | None
    category: str | None
    health: SourceHealth


class SourceList(BaseModel):
    items: list[SourceOut]


class DatabaseHealth(BaseModel):
    ok: bool
    pool_size: int
    pool_in_use: int


class RedisHealth(BaseModel):
    ok: bool


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    uptime_s: float
    version: str
    database: DatabaseHealth
    redis: RedisHealth


class ErrorBody(BaseModel):
    status: int
    message: str
    details: list[dict[str, object]] | None = None


class ErrorResponse(BaseModel):
    """Every error the API returns, whatever its status."""

    error: ErrorBody


class StoryArticle(_FromStore):
    """An article in a story, a similarity or a search result, with what enrichment found."""

    id: UUID
    source_id: int
    source_title: str | None
    title: str
    url: str | None
    published_at: datetime
    language: str | None
    summary: str | None = Field(description="The enrichment's summary where there is one, else the feed's.")
    topics: list[str] = Field(description="Topic keys (see /api/v1/topics); empty before enrichment.")
    story_id: UUID | None = Field(description="Articles with one story_id report one event; null before enrichment.")
    sentiment: float | None = Field(description="VADER compound score in [-1, 1]; null where the language has none.")


class ScoredArticle(StoryArticle):
    score: float = Field(description="Higher is better: cosine similarity (similar, semantic search), "
                                     "ts_rank_cd (text search), reciprocal rank fusion (hybrid search).")


class SimilarArticles(BaseModel):
    article_id: UUID
    status: Literal["ok", "not_enriched"] = Field(
        description="`not_enriched`: the article has no embedding yet, so `items` is empty; ask again later.")
    items: list[ScoredArticle]


class Story(BaseModel):
    story_id: UUID
    items: list[StoryArticle] = Field(description="The story's articles, oldest first.")


class SearchResults(BaseModel):
    query: str = Field(description="The query as searched (spaces folded).")
    mode: Literal["semantic", "text", "hybrid"] = Field(description="The mode that produced `items`.")
    fallback_reason: str | None = Field(
        description="Set when a hybrid search fell back to text only: why semantic search was unavailable.")
    items: list[ScoredArticle]


class TopicCount(BaseModel):
    key: str = Field(description="Pass as `topic` to /api/v1/articles and /api/v1/search.")
    names: dict[str, str] = Field(description="Display names by language; empty for a topic no longer in the catalog.")
    count: int = Field(description="Enriched articles with this topic.")


class TopicList(BaseModel):
    items: list[TopicCount]
