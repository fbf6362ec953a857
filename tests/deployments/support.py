"""Helpers for the Api tests: an HTTP client on the ASGI app, and test data written through the
store as the crawler writes it (no SQL of our own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx
from fastapi import FastAPI

from cluster.store.articles import ArticleInput, upsert_articles
from cluster.store.sources import NewSource, add_source

BASE_TIME = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def client_for(app: FastAPI) -> httpx.AsyncClient:
    # raise_app_exceptions=False: a 500 must reach the test as a client would see it.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@dataclass
class Seeder:
    """Inserts sources and articles through the store, as the crawler does."""

    pool: asyncpg.Pool
    serial: int = 0

    async def source(self, title: str = "Example News", language: str | None = "en") -> int:
        self.serial += 1
        source, _ = await add_source(self.pool, NewSource(url=f"https://news{self.serial}.example.org/feed.xml",
                                                          title=title, language=language))
        return source.id

    async def articles(
        self,
        source_id: int,
        count: int,
        *,
        start: datetime = BASE_TIME,
        step: timedelta = timedelta(minutes=1),
        language: str | None = "en",
        title: str = "Article {n}",
        prefix: str = "a",
        content: str | None = None,
    ) -> list[str]:
        """`count` articles published `step` apart from `start` onwards; returns their ids."""
        items = [
            ArticleInput(
                dedupe_key=f"{prefix}-{n}", guid=f"{prefix}-{n}", title=title.format(n=n),
                url=f"https://example.org/{prefix}/{n}", summary=f"Summary of {prefix} {n}",
                content=content if content is not None else f"Full text of {prefix} {n}",
                published_at=start + step * n, language=language,
            )
            for n in range(count)
        ]
        result = await upsert_articles(self.pool, source_id, items)
        assert len(result.inserted) == count
        return [str(article_id) for article_id in result.inserted]
