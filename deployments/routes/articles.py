"""GET /api/v1/articles (newest first, keyset-paginated), GET /api/v1/articles/{id} and
GET /api/v1/articles/{id}/similar."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, StringConstraints

from cluster.store.articles import Article, ArticleFilter, ArticlePage, CursorError, get_article, list_articles
from cluster.store.enrichment import has_embedding, similar_articles
from deployments.backends import Backends
from deployments.errors import ApiError, JsonErrorRoute, invalid_parameter
from deployments.schemas import ArticleDetail, ArticleList, ErrorResponse, SimilarArticles

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_QUERY_LENGTH = 200
# Checked here so that values PostgreSQL would refuse (a bigint overflow, a NUL byte in text)
# are the client's 422, not a server error.
MAX_SOURCE_ID = 2**63 - 1
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"
NO_NUL_PATTERN = r"^[^\x00]*$"
# Topic keys as the catalog writes them; anything else could never match.
TOPIC_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
MAX_TOPICS = 20
DEFAULT_SIMILAR = 10
MAX_SIMILAR = 50

Topic = Annotated[str, StringConstraints(pattern=TOPIC_PATTERN)]
TopicsQuery = Annotated[list[Topic] | None, Query(
    max_length=MAX_TOPICS,
    description="A topic key (see /api/v1/topics); repeat it for more: articles with **any** of the topics."
                " A key no article has gives an empty list.")]

router = APIRouter(prefix="/api/v1/articles", tags=["articles"], route_class=JsonErrorRoute,
                   responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})


async def fetch_page(
    backends: Backends, filters: ArticleFilter, limit: int, cursor: str | None
) -> ArticlePage:
    """One page from the store; a cursor it did not make is the client's error (422)."""
    pool = await backends.read_pool()
    # `?cursor=` (a form or a URL template with nothing filled in) means the first page.
    cursor = cursor or None
    try:
        return await list_articles(pool, filters, limit=limit, cursor=cursor)
    except CursorError:
        raise invalid_parameter("query", "cursor",
                                "invalid cursor: pass back a next_cursor exactly as received") from None


@router.get("", response_model=ArticleList, summary="Articles, newest first")
async def articles(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")] = None,
    source: Annotated[int | None, Query(ge=1, le=MAX_SOURCE_ID, description="Only this source's articles.")] = None,
    language: Annotated[str | None, Query(pattern=LANGUAGE_PATTERN, description="A language tag, e.g. `en`.")] = None,
    q: Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH, pattern=NO_NUL_PATTERN,
                                   description="Full-text search (web search syntax).")] = None,
    since: Annotated[AwareDatetime | None,
                     Query(description="Only articles published at or after this time (with a UTC offset).")] = None,
    topic: TopicsQuery = None,
) -> dict[str, object]:
    filters = ArticleFilter(source_id=source, language=language, query=q.strip() if q else None, since=since,
                            topics=tuple(dict.fromkeys(topic or ())))
    page = await fetch_page(request.app.state.backends, filters, limit, cursor)
    return {"items": page.articles, "next_cursor": page.next_cursor}


@router.get("/{article_id}", response_model=ArticleDetail, summary="One article with its content",
            responses={404: {"model": ErrorResponse}})
async def article(request: Request, article_id: UUID) -> Article:
    backends: Backends = request.app.state.backends
    found = await get_article(await backends.read_pool(), article_id)
    if found is None:
        raise ApiError(404, f"api: article {article_id} not found")
    return found


@router.get("/{article_id}/similar", response_model=SimilarArticles, summary="Articles similar to this one",
            description="The nearest articles by embedding (cosine similarity, best first), among articles embedded"
                        " with the same model; never the article itself. An article that has no embedding yet"
                        " answers 200 with `status: not_enriched` and no items (it is known, only not enriched);"
                        " an unknown article is 404.",
            responses={404: {"model": ErrorResponse}})
async def similar(
    request: Request,
    article_id: UUID,
    limit: Annotated[int, Query(ge=1, le=MAX_SIMILAR, description="How many.")] = DEFAULT_SIMILAR,
    other_stories: Annotated[bool, Query(description="Leave out articles of this article's own story.")] = False,
) -> dict[str, object]:
    pool = await request.app.state.backends.read_pool()
    hits = await similar_articles(pool, article_id, limit=limit, exclude_same_story=other_stories)
    status = "ok"
    if not hits:  # unknown, not enriched, or alone in its vector space: only now tell them apart
        embedded = await has_embedding(pool, article_id)
        if embedded is None:
            raise ApiError(404, f"api: article {article_id} not found")
        status = "ok" if embedded else "not_enriched"
    return {"article_id": article_id, "status": status, "items": hits}
