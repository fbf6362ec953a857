"""GET /api/v1/articles (newest first, keyset-paginated) and GET /api/v1/articles/{id}."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime

from cluster.store.articles import Article, ArticleFilter, ArticlePage, CursorError, get_article, list_articles
from deployments.backends import Backends
from deployments.errors import ApiError, JsonErrorRoute, invalid_parameter
from deployments.schemas import ArticleDetail, ArticleList, ErrorResponse

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_QUERY_LENGTH = 200
# Checked here so that values PostgreSQL would refuse (a bigint overflow, a NUL byte in text)
# are the client's 422, not a server error.
MAX_SOURCE_ID = 2**63 - 1
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$"
NO_NUL_PATTERN = r"^[^\x00]*$"

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
) -> dict[str, object]:
    filters = ArticleFilter(source_id=source, language=language, query=q.strip() if q else None, since=since)
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
