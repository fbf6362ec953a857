"""GET /: the server-rendered list of the latest articles, escaped and with security headers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from html import unescape

import httpx

from cluster.store.articles import ArticleInput, upsert_articles
from deployments.page_view import relative_time, safe_link
from tests.deployments.support import Seeder

HOSTILE_TITLE = '<script>alert("x")</script> & <b>bold</b>'


async def test_latest_articles_are_listed_and_escaped(client: httpx.AsyncClient, seed: Seeder) -> None:
    source_id = await seed.source(title="Daily <Example>")
    await seed.articles(source_id, 3, language="tr")
    await upsert_articles(seed.pool, source_id, [
        ArticleInput(dedupe_key="hostile", title=HOSTILE_TITLE, url="https://example.org/hostile",
                     published_at=datetime.now(timezone.utc) - timedelta(hours=2), language="en"),
        ArticleInput(dedupe_key="js", title="Click me", url="javascript:alert(1)",
                     published_at=datetime.now(timezone.utc) - timedelta(hours=3)),
    ])
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
    assert "Daily &lt;Example&gt;" in html
    assert '<a class="title" href="https://example.org/hostile" rel="noopener noreferrer">' in html
    # A javascript: link is shown as text, never as a link.
    assert "javascript:" not in html and '<span class="title">Click me</span>' in html
    for n in range(3):
        assert f'href="https://example.org/a/{n}"' in html and f">Article {n}<" in html
    assert "2 h ago" in html and "2025-03-01 12:02 UTC" in html
    assert 'lang="tr"' in html
    assert 'href="/static/style.css"' in html
    assert "Older" not in html  # five articles: one page


async def test_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


async def test_older_link_pages_through_with_the_cursor(client: httpx.AsyncClient, seed: Seeder) -> None:
    source_id = await seed.source()
    await seed.articles(source_id, 60)
    first = (await client.get("/")).text
    assert first.count('<li class="article">') == 50
    assert ">Article 59<" in first and ">Article 10<" in first and ">Article 9<" not in first
    older = re.search(r'<a href="([^"]+)" rel="next">Older</a>', first)
    assert older is not None and older.group(1).startswith("?cursor=")
    second = (await client.get("/" + unescape(older.group(1)))).text
    assert second.count('<li class="article">') == 10
    assert ">Article 9<" in second and ">Article 0<" in second and "Older" not in second
    assert ">Newest<" in second


async def test_invalid_cursor_on_the_page_is_422(client: httpx.AsyncClient) -> None:
    response = await client.get("/", params={"cursor": "bogus"})
    assert response.status_code == 422 and response.json()["error"]["status"] == 422


async def test_empty_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200 and "No articles yet" in response.text


async def test_stylesheet_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/static/style.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["x-content-type-options"] == "nosniff"
    missing = await client.get("/static/nope.css")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == 404


def test_safe_link_and_relative_time() -> None:
    assert safe_link("https://example.org/a") == "https://example.org/a"
    assert safe_link(" HTTP://example.org/a ") == "HTTP://example.org/a"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//example.org", "/local", "", None, "https://"):
        assert safe_link(bad) is None
    now = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert relative_time(now - timedelta(seconds=5), now) == "just now"
    assert relative_time(now - timedelta(minutes=5), now) == "5 min ago"
    assert relative_time(now - timedelta(hours=26), now) == "1 d ago"
    assert relative_time(now + timedelta(hours=1), now) == "scheduled"
