"""GET /: the latest articles as a server-rendered page (the full reader comes later)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cluster.store.articles import ArticleFilter
from deployments.errors import JsonErrorRoute
from deployments.page_view import article_row
from deployments.routes.articles import fetch_page
from deployments.web import PAGE_SECURITY_HEADERS, template_environment

PAGE_SIZE = 50

router = APIRouter(tags=["pages"], route_class=JsonErrorRoute)


@router.get("/", response_class=HTMLResponse, summary="The latest articles (HTML)")
async def index(
    request: Request,
    cursor: Annotated[str | None, Query(max_length=512, description="`Older` link of the previous page.")] = None,
) -> HTMLResponse:
    page = await fetch_page(request.app.state.backends, ArticleFilter(), PAGE_SIZE, cursor)
    now = datetime.now(timezone.utc)
    # Query-only relative links keep working under any route prefix or reverse proxy.
    older = "?" + urlencode({"cursor": page.next_cursor}) if page.next_cursor else None
    template = template_environment(request.app.state.web_dir).get_template("index.html")
    html = template.render(
        rows=[article_row(article, now) for article in page.articles],
        older_url=older,
        newest_url="./" if cursor else None,
        generated_at=now.strftime("%Y-%m-%d %H:%M UTC"),
    )
    return HTMLResponse(html, headers=PAGE_SECURITY_HEADERS)
