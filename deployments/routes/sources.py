"""GET /api/v1/sources: every source with its crawl health, for readers and operators."""

from __future__ import annotations

from fastapi import APIRouter, Request

from cluster.store.sources import Source, list_sources
from deployments.backends import Backends
from deployments.errors import JsonErrorRoute
from deployments.schemas import ErrorResponse, SourceHealth, SourceList, SourceOut

# Far above any real subscription list; paginate when the reader UI needs more.
MAX_SOURCES = 5000

router = APIRouter(prefix="/api/v1/sources", tags=["sources"], route_class=JsonErrorRoute,
                   responses={503: {"model": ErrorResponse}})


def source_out(source: Source) -> SourceOut:
    return SourceOut(
        id=source.id, url=source.url, kind=source.kind, title=source.title, site_url=source.site_url,
        language=source.language, category=source.category,
        health=SourceHealth.model_validate(source),
    )


@router.get("", response_model=SourceList, summary="Sources and their health")
async def sources(request: Request) -> SourceList:
    backends: Backends = request.app.state.backends
    found = await list_sources(await backends.read_pool(), limit=MAX_SOURCES)
    return SourceList(items=[source_out(source) for source in found])
