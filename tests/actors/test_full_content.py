"""Full content and site sources through the crawl path, against the real database (no Ray)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx

from actors.crawl import crawl_site, crawl_source
from actors.fetch import make_client
from actors.full_content import fetch_full_contents
from actors.robots import RobotsCache
from cluster.samplefeeds import SampleFeedServer
from cluster.store import sources as source_store
from cluster.store.sources import NewSource
from tests.actors.conftest import LOOPBACK_POLICY as POLICY
from tests.actors.test_site_scraper import ARTICLES, news_site

PAGES = Path(__file__).parent / "data" / "pages"


async def test_teasers_get_the_main_text_of_their_page(db: asyncpg.Pool, client: httpx.AsyncClient,
                                                       sample_server: SampleFeedServer) -> None:
    feed = next(url for url in sample_server.feed_urls if url.endswith("world-en.xml"))
    source, _ = await source_store.add_source(db, NewSource(url=feed))
    outcome = await crawl_source(client, db, source, POLICY)
    assert outcome.ok and outcome.inserted > 0 and outcome.wants_pages
    robots = RobotsCache(client, POLICY)
    report = await fetch_full_contents(client, db, source.id, POLICY, robots, limit=5)
    assert report.looked_at == 5 and report.fetched >= 1 and report.improved >= 1 and report.failed == 0
    rows = await db.fetch("SELECT content, content_text, summary FROM articles "
                          "WHERE source_id = $1 AND content_text IS NOT NULL", source.id)
    assert len(rows) == report.improved
    for row in rows:
        assert len(row["content_text"]) > len(row["summary"] or "")  # more than the teaser
        assert "<script" not in row["content"]
    # Looked-at articles are not fetched again; the next pass takes the next five.
    again = await fetch_full_contents(client, db, source.id, POLICY, robots, limit=5)
    assert again.looked_at == 5
    assert await db.fetchval("SELECT count(*) FROM articles WHERE source_id = $1 AND full_content_at IS NOT NULL",
                             source.id) == 10


async def test_paywalled_page_keeps_the_feed_text(db: asyncpg.Pool, client: httpx.AsyncClient, server) -> None:
    page = server.reply("/story.html", (PAGES / "paywall_jsonld.html").read_bytes(),
                        headers={"Content-Type": "text/html; charset=utf-8"})
    rss = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>P</title><item><guid>p1</guid>'
           f"<title>Locked story</title><link>{page}</link><description>A short teaser.</description>"
           f"</item></channel></rss>").encode()
    source, _ = await source_store.add_source(db, NewSource(url=server.reply("/p.xml", rss, headers={
        "Content-Type": "application/rss+xml"})))
    assert (await crawl_source(client, db, source, POLICY)).inserted == 1
    report = await fetch_full_contents(client, db, source.id, POLICY, RobotsCache(client, POLICY))
    assert report.paywalled == 1
    row = await db.fetchrow("SELECT paywalled, summary, content_text FROM articles WHERE source_id = $1", source.id)
    assert row["paywalled"] and row["content_text"] is None and "short teaser" in row["summary"]


async def test_site_source_is_scraped_into_articles(db: asyncpg.Pool, server) -> None:
    news_site(server)
    config = {"start_urls": [server.url("/")], "download_delay_s": 0.01, "max_pages": 20}
    source, _ = await source_store.add_source(db, NewSource(url=server.url("/"), kind="site"))
    await source_store.set_scrape_config(db, source.id, config)
    source = await source_store.get_source(db, source.id)
    assert source is not None and source.scrape_config == config
    async with make_client(POLICY) as client:
        robots = RobotsCache(client, POLICY)
        first = await crawl_site(db, source, POLICY, "newsray-test/1.0", robots)
        assert first.ok and first.inserted >= len(ARTICLES)
        titles = {r["title"] for r in await db.fetch("SELECT title FROM articles WHERE source_id = $1", source.id)}
        assert {title for title, _ in ARTICLES.values()} <= titles
        assert not any("budget leak" in t.lower() for t in titles)  # /private/ is disallowed by robots.txt
        assert await db.fetchval("SELECT count(*) FROM articles WHERE source_id = $1 AND full_content_at IS NULL",
                                 source.id) == 0
        again = await crawl_site(db, source, POLICY, "newsray-test/1.0", robots)
        assert again.ok and again.inserted == 0
