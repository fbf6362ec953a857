"""GET /api/v1/stories/{story_id}: every article reporting one event, with its source."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request

from cluster.store.enrichment import story_articles
from deployments.errors import ApiError, JsonErrorRoute
from deployments.schemas import ErrorResponse, Story

# Far above any real story (a few dozen outlets report one event); a bound on the response.
MAX_STORY_ARTICLES = 1000

router = APIRouter(prefix="/api/v1/stories", tags=["stories"], route_class=JsonErrorRoute,
                   responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})


@router.get("/{story_id}", response_model=Story, summary="All articles of a story, oldest first",
            description="A story is the articles the enrichment found to report one event (each article's"
                        f" `story_id`). Oldest first: the first report leads. At most {MAX_STORY_ARTICLES}."
                        " 404 when no article has this story id.",
            responses={404: {"model": ErrorResponse}})
async def story(request: Request, story_id: UUID) -> dict[str, object]:
    pool = await request.app.state.backends.read_pool()
    articles = await story_articles(pool, story_id, limit=MAX_STORY_ARTICLES)
    if not articles:
        raise ApiError(404, f"api: story {story_id} not found")
    return {"story_id": story_id, "items": articles}
