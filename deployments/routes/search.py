"""GET /api/v1/search: text (PostgreSQL full text), semantic (pgvector k-NN over the query's
embedding) or hybrid (both, fused by reciprocal rank)."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from cluster.store.enrichment import hybrid_search, semantic_search, text_search
from deployments.auth.context import auth_context
from deployments.auth.dependencies import AuthError, address_of
from deployments.auth.middleware import principal_of
from deployments.auth.ratelimit import RateLimiterUnavailable
from deployments.errors import ApiError, JsonErrorRoute, invalid_parameter
from deployments.query_encoding import normalize_query
from deployments.query_vectors import QueryVectors, SemanticUnavailable
from deployments.routes.articles import DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERY_LENGTH, NO_NUL_PATTERN, TopicsQuery
from deployments.schemas import ErrorResponse, SearchResults

logger = logging.getLogger("newsray.api")

Mode = Literal["semantic", "text", "hybrid"]

DESCRIPTION = """\
- `text`: PostgreSQL full-text search (web search syntax: `"a phrase"`, `-word`, `or`), best match first.
- `semantic`: the articles whose embeddings are nearest the query's, so an article can match without
  sharing a word with the query. The query is embedded with the model the articles were embedded
  with; when there is none (nothing enriched yet, the model cannot be loaded, the encoder does not
  answer) the answer is **503** with the reason.
- `hybrid` (default): both rankings fused by reciprocal rank. When semantic search is unavailable
  it **falls back to text**: `mode` says `text` and `fallback_reason` says why.

`topic` keeps articles that have any of the given topics.
"""

router = APIRouter(prefix="/api/v1/search", tags=["search"], route_class=JsonErrorRoute,
                   responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})


@router.get("", response_model=SearchResults, summary="Search articles (text, semantic or hybrid)",
            description=DESCRIPTION)
async def search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_LENGTH, pattern=NO_NUL_PATTERN,
                            description="What to look for.")],
    mode: Annotated[Mode, Query(description="How to search.")] = "hybrid",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="How many results.")] = DEFAULT_LIMIT,
    topic: TopicsQuery = None,
) -> dict[str, object]:
    query = normalize_query(q)
    if not query:
        raise invalid_parameter("query", "q", "the query has no words")
    topics = list(dict.fromkeys(topic or ())) or None
    pool = await request.app.state.backends.read_pool()
    fallback_reason = None
    if mode != "text":
        await _limit_anonymous(request)
        vectors: QueryVectors = request.app.state.query_vectors
        try:
            vector = await vectors.vector_for(query)
        except SemanticUnavailable as exc:
            if mode == "semantic":
                raise ApiError(503, f"api: semantic search is unavailable: {exc}") from None
            mode, fallback_reason = "text", str(exc)
    if mode == "semantic":
        hits = await semantic_search(pool, vector.vector, vector.model_version, limit=limit, topics=topics)
    elif mode == "hybrid":
        hits = await hybrid_search(pool, query, vector.vector, vector.model_version, limit=limit, topics=topics)
    else:
        hits = await text_search(pool, query, limit=limit, topics=topics)
    return {"query": query, "mode": mode, "fallback_reason": fallback_reason, "items": hits}


async def _limit_anonymous(request: Request) -> None:
    """Anonymous callers of the model path are limited per client address (signed-in ones by
    the per-user API limit). Redis down: allowed — the QueryEncoder's queue bounds the cost,
    and search must not fail because the limiter is blind."""
    if principal_of(request.scope) is not None:
        return
    context = auth_context(request.app)
    try:
        decision = await context.anonymous_search_limiter.hit("search", [("address", address_of(request))])
    except RateLimiterUnavailable:
        logger.warning("api: search: rate limiter unavailable; anonymous semantic search not limited")
        return
    if not decision.allowed:
        raise AuthError(429, "api: too many searches from this address; sign in or try again later",
                        {"Retry-After": str(decision.retry_after_s)})
