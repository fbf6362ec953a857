"""actors.site_scraper: Scrapy without a reactor, against a small news site on 127.0.0.1.

The site has a home page, article pages with navigation, comments and footer,
a sitemap, and a robots.txt that disallows /private/ and sets a Crawl-delay.
Every TCP connection the scraper opens is recorded: none may go anywhere but
loopback, and refused URLs must not cause one at all.
"""

from __future__ import annotations

import asyncio
import gzip
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web

from actors.asyncio_backend import AsyncioBackend
from actors.fetch import FetchPolicy
from actors.site_scraper import (
    ScrapeError,
    SiteConfig,
    looks_like_article,
    parse_sitemap,
    scrape_site,
    scrape_site_report,
)
from tests.actors.conftest import LocalServer
from tests.polling import poll

UA = "newsray/0.1 (+https://github.com/newsray/newsray)"
LOOPBACK = ("127.0.0.0/8",)


def policy(**overrides: Any) -> FetchPolicy:
    settings: dict[str, Any] = {"allowed_networks": LOOPBACK, "timeout_s": 3.0, "user_agent": UA}
    settings.update(overrides)
    return FetchPolicy(**settings)


# ---------------------------------------------------------------- the local news site

ARTICLES = {  # path: (title, published)
    "/news/2024/05/14/harbour-wind-farm-doubles-output":
        ("Harbour wind farm doubles its output", "2024-05-14T08:30:00+02:00"),
    "/news/2024/05/13/ferry-timetable-changes-for-summer":
        ("Ferry timetable changes for the summer", "2024-05-13T07:00:00Z"),
    "/sport/2024/05/12/rovers-promoted-after-final-day":
        ("Rovers promoted after dramatic final day", "2024-05-12T18:45:00Z"),
    "/culture/2024/05/11/library-reopens-after-refit":
        ("Library reopens after two-year refit", "2024-05-11T09:00:00Z"),
    "/business/2024/05/10/fish-market-becomes-operations-centre":
        ("Fish market becomes operations centre", "2024-05-10T12:00:00Z"),
    "/news/2024/05/09/storm-damage-repairs-finished":
        ("Storm damage repairs finished on the promenade", "2024-05-09T16:20:00Z"),
}
HOME_ONLY = "/news/2024/05/15/new-lifeboat-named-after-volunteer"  # linked from the home page, not in the sitemap
PRIVATE = "/private/2024/05/01/draft-budget-leak"


def article_page(title: str, published: str, topic: str) -> str:
    paragraphs = "".join(
        f"<p>{topic} paragraph {i}: residents, officials and business owners along the coast spoke to our "
        f"reporters about what the change means for them, for their families and for the harbour town.</p>"
        for i in range(5)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} | The Coastal Courier</title>
<meta property="article:published_time" content="{published}">
<meta name="author" content="Staff Reporter">
<script>window.analytics = {{}};</script></head>
<body>
<header><a href="/">The Coastal Courier</a>
<nav><ul><li><a href="/news/">News</a></li><li><a href="/sport/">Sport</a></li>
<li><a href="/subscribe/">Subscribe</a></li></ul></nav></header>
<main><article><h1>{title}</h1><p class="byline">By Staff Reporter</p>{paragraphs}</article>
<section class="comments" id="comments"><h3>3 comments</h3>
<div class="comment"><p>COMMENT-MARKER first!</p></div>
<div class="comment"><p>COMMENT-MARKER what a shame</p></div></section></main>
<aside><h3>Most read</h3><a href="/news/2024/05/14/harbour-wind-farm-doubles-output">Wind farm</a></aside>
<footer><p>&copy; 2024 The Coastal Courier. All rights reserved.</p><a href="/privacy">Privacy</a></footer>
</body></html>"""


@dataclass
class SiteLog:
    """What the server saw: when each request started and how many overlapped."""

    starts: list[tuple[float, str]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    user_agents: set[str] = field(default_factory=set)


def news_site(server: LocalServer, *, crawl_delay: str | None = None, latency_s: float = 0.02) -> SiteLog:
    log = SiteLog()
    base = server.base_url

    def page(path: str, body: str | bytes, content_type: str = "text/html; charset=utf-8") -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            log.starts.append((time.monotonic(), request.path))
            log.user_agents.add(request.headers.get("User-Agent", ""))
            log.in_flight += 1
            log.max_in_flight = max(log.max_in_flight, log.in_flight)
            try:
                await asyncio.sleep(latency_s)  # server think time, so overlapping requests would show
                return web.Response(body=body if isinstance(body, bytes) else body.encode(),
                                    headers={"Content-Type": content_type})
            finally:
                log.in_flight -= 1

        server.add(path, handler)

    delay_line = f"Crawl-delay: {crawl_delay}\n" if crawl_delay else ""
    server.reply(
        "/robots.txt",
        f"User-agent: *\nDisallow: /private/\n{delay_line}Sitemap: {base}/sitemap.xml\n".encode(),
        headers={"Content-Type": "text/plain"},
    )
    urls = "".join(
        f"<url><loc>{base}{path}</loc><lastmod>{published}</lastmod></url>" for path, (_, published) in ARTICLES.items()
    )
    sitemap = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"{urls}<url><loc>{base}{PRIVATE}</loc></url><url><loc>{base}/about</loc></url>"
        "<url><loc>http://elsewhere.example/2024/05/01/not-our-story</loc></url></urlset>"
    )
    page("/sitemap.xml", sitemap, "application/xml")
    links = "".join(f'<li><a href="{path}?utm_source=home">{title}</a></li>' for path, (title, _) in ARTICLES.items())
    page(
        "/",
        f"""<html><head><title>The Coastal Courier</title></head><body>
        <nav><a href="/">Home</a> <a href="/news/">News</a> <a href="/about">About</a>
        <a href="/tag/harbour/page-two-of-it">Tag</a></nav>
        <ul>{links}<li><a href="{HOME_ONLY}">New lifeboat named after volunteer</a></li>
        <li><a href="{PRIVATE}">Draft budget leak</a></li>
        <li><a href="http://elsewhere.example/2024/05/02/their-big-story">Elsewhere</a></li></ul>
        <a href="/static/logo-of-the-paper.png">logo</a></body></html>""",
    )
    for path, (title, published) in ARTICLES.items():
        page(path, article_page(title, published, title.split()[0]))
    page(HOME_ONLY, article_page("New lifeboat named after volunteer", "2024-05-15T10:00:00Z", "Lifeboat"))
    page(PRIVATE, article_page("Draft budget leak", "2024-05-01T10:00:00Z", "Secret"))
    page("/about", "<html><body><p>About us</p></body></html>")
    return log


# ---------------------------------------------------------------- connection spy


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every address a TCP connection was opened to (the backend under the guarded one)."""
    opened: list[str] = []
    original = AsyncioBackend.connect_tcp

    async def spy(self: AsyncioBackend, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        opened.append(host)
        assert host.startswith("127."), f"a connection to {host} was attempted"
        return await original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(AsyncioBackend, "connect_tcp", spy)
    yield opened


def fixed_resolver(table: dict[str, list[str]]) -> Callable[[str, int], Awaitable[list[str]]]:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"test resolver: unknown host {host}")
        return table[host]

    return resolve


# ---------------------------------------------------------------- unit-level


def test_looks_like_article() -> None:
    yes = [
        "https://n.example/news/2024/05/14/harbour-wind-farm",
        "https://n.example/2024-05-14/short",
        "https://n.example/world/europe/elections-called-for-june.html",
        "https://n.example/story/123456",
        "https://n.example/politics/vote-counted-a-98765432",
    ]
    no = [
        "https://n.example/",
        "https://n.example/news/",
        "https://n.example/about",
        "https://n.example/contact-us",
        "https://n.example/tag/harbour-wind-farm-news",
        "https://n.example/static/logo-of-the-paper.png",
        "https://n.example/author/aisha-rahman-staff-writer",
    ]
    assert [u for u in yes if not looks_like_article(u)] == []
    assert [u for u in no if looks_like_article(u)] == []


def test_parse_sitemap_forms() -> None:
    index = (
        b'<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<sitemap><loc>https://n.example/s1.xml</loc><lastmod>2024-05-01</lastmod></sitemap></sitemapindex>"
    )
    assert parse_sitemap(index) == ("sitemapindex", [parse_sitemap(index)[1][0]])
    assert parse_sitemap(index)[1][0].loc == "https://n.example/s1.xml"
    news = (
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        b'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url><loc> https://n.example/a </loc>'
        b"<news:news><news:title>A</news:title></news:news><lastmod>2024-05-02T10:00:00+02:00</lastmod></url></urlset>"
    )
    kind, entries = parse_sitemap(gzip.compress(news))
    assert kind == "urlset"
    assert entries[0].loc == "https://n.example/a" and entries[0].news
    assert entries[0].lastmod == datetime(2024, 5, 2, 8, 0, tzinfo=UTC)
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">]>'
        b"<urlset><url><loc>https://n.example/&lol2;</loc></url></urlset>"
    )
    kind, entries = parse_sitemap(laughs)
    assert "lollol" not in "".join(e.loc for e in entries)  # entities are never expanded
    assert parse_sitemap(b"<html><body>not a sitemap</body></html>") == (None, [])
    assert parse_sitemap(b"\x1f\x8bnot really gzip") == (None, [])
    with pytest.raises(ScrapeError, match="^scrape: "):
        parse_sitemap(gzip.compress(b"<urlset>" + b" " * 10_000 + b"</urlset>"), max_bytes=1000)


def test_site_config_validation() -> None:
    config = SiteConfig.from_mapping({"start_urls": ["https://n.example/"], "link_pattern": r"/\d{4}/"})
    assert config.start_urls == ("https://n.example/",) and config.max_pages == 50 and config.download_delay_s == 1.0
    bad_configs: list[dict[str, Any]] = [
        {"start_urls": []},
        {"start_urls": "https://n.example/"},
        {"start_urls": ["ftp://n.example/"]},
        {"start_urls": ["https://n.example/"], "link_pattern": "("},
        {"start_urls": ["https://n.example/"], "max_pages": 0},
        {"start_urls": ["https://n.example/"], "surprise": 1},
    ]
    for bad in bad_configs:
        with pytest.raises(ValueError, match="^scrape: "):
            SiteConfig.from_mapping(bad)


# ---------------------------------------------------------------- crawling the local site


async def test_scrapes_allowed_articles_politely(server: LocalServer, connections: list[str]) -> None:
    log = news_site(server, crawl_delay="0.15")
    # max_pages is exactly the number of allowed articles: the disallowed one,
    # listed in the sitemap before the home page's extra story, must not use it up.
    config = SiteConfig(start_urls=(server.url("/"),), download_delay_s=0.01, max_pages=7)
    report = await scrape_site_report(config, policy(), UA)

    expected = {title for title, _ in ARTICLES.values()} | {"New lifeboat named after volunteer"}
    assert {e.title for e in report.entries} == expected
    assert report.close_reason == "finished"
    assert report.delay_s == 0.15  # robots.txt's Crawl-delay beat the configured 0.01
    # robots.txt: the private article was listed and linked, but never requested.
    assert server.hits[PRIVATE] == 0
    assert report.disallowed == (server.url(PRIVATE),)
    # Off-site links and non-articles were never followed.
    assert server.hits["/about"] == 0 and server.hits["/static/logo-of-the-paper.png"] == 0
    assert all(h.startswith("127.") for h in connections)
    # Politeness: one request at a time, spaced by the Crawl-delay.
    assert log.max_in_flight == 1
    starts = [t for t, _ in log.starts]
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert min(gaps) >= 0.15 * 0.95, gaps
    assert log.user_agents == {UA}
    # Sitemaps first: the sitemap, then its articles' budget is claimed before the home page's links.
    paths = [p for _, p in log.starts]
    assert paths[0] == "/sitemap.xml"
    assert paths.index("/") < paths.index(HOME_ONLY)
    # Each page extracted: text without comments or boilerplate, metadata, one entry per article.
    by_title = {e.title: e for e in report.entries}
    wind = by_title["Harbour wind farm doubles its output"]
    assert wind.published_at == datetime(2024, 5, 14, 6, 30, tzinfo=UTC)
    assert wind.author == "Staff Reporter"
    assert wind.language == "en"
    assert wind.guid is None
    assert wind.canonical_url == server.url("/news/2024/05/14/harbour-wind-farm-doubles-output")
    assert wind.dedupe_key == wind.canonical_url
    for entry in report.entries:
        assert entry.content is not None and "paragraph 4" in entry.content
        for noise in ("COMMENT-MARKER", "All rights reserved", "Most read", "Subscribe", "<script"):
            assert noise not in entry.content, (entry.title, noise)
    assert len({e.dedupe_key for e in report.entries}) == len(report.entries)
    assert report.paywalled == frozenset()
    assert report.pages_fetched == 7 and report.refused == () and report.errors == ()


async def test_max_pages_and_link_pattern(server: LocalServer) -> None:
    news_site(server)
    config = SiteConfig(
        start_urls=(server.url("/"),), link_pattern=r"/news/\d{4}/", max_pages=2, download_delay_s=0.0
    )
    entries = await scrape_site(config, policy(), UA)
    # Only /news/ URLs match; of those the two newest in the sitemap win the budget.
    assert {e.title for e in entries} == {
        "Harbour wind farm doubles its output",
        "Ferry timetable changes for the summer",
    }
    assert server.hits[HOME_ONLY] == 0 and server.hits["/sport/2024/05/12/rovers-promoted-after-final-day"] == 0


async def test_repeated_and_concurrent_scrapes_in_one_loop(server: LocalServer) -> None:
    """What an async Ray actor does: many scrapes, one event loop, no reactor, no signal handlers."""
    log = news_site(server, latency_s=0.03)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    config = SiteConfig(start_urls=(server.url("/"),), download_delay_s=0.0, use_sitemaps=False)
    first = await scrape_site(config, policy(), UA)
    second = await scrape_site(config, policy(), UA)
    assert len(first) == 7 and {e.dedupe_key for e in first} == {e.dedupe_key for e in second}
    # Without any delay there is still only one request in flight at a time.
    assert log.max_in_flight == 1
    # Two sites at once (two names for the loopback server) in the same loop.
    resolver = fixed_resolver({"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]})
    port = server.base_url.rsplit(":", 1)[1]
    configs = [SiteConfig(start_urls=(f"http://{h}:{port}/",), download_delay_s=0.0, use_sitemaps=False)
               for h in ("a.test", "b.test")]
    both = await asyncio.gather(*(scrape_site(c, policy(), UA, resolver=resolver) for c in configs))
    assert [len(r) for r in both] == [7, 7]
    assert {urlsplit(e.url).hostname for e in both[0]} == {"a.test"}
    assert {urlsplit(e.url).hostname for e in both[1]} == {"b.test"}
    assert "twisted.internet.reactor" not in sys.modules
    assert {s: signal.getsignal(s) for s in handlers} == handlers


async def test_runs_in_an_event_loop_outside_the_main_thread(server: LocalServer) -> None:
    """Ray runs an async actor's event loop in a thread of its own, where
    nothing that needs the main thread (signal handlers, a reactor) may run."""
    news_site(server)
    config = SiteConfig(start_urls=(server.url("/"),), download_delay_s=0.0, use_sitemaps=False)

    def in_thread() -> list[int]:
        async def twice() -> list[int]:
            return [len(await scrape_site(config, policy(), UA)) for _ in range(2)]

        return asyncio.run(twice())

    assert await asyncio.to_thread(in_thread) == [7, 7]


async def test_redirects_to_internal_addresses_are_refused_before_connecting(
    server: LocalServer, connections: list[str]
) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    base = f"http://news.test:{port}"
    server.reply("/robots.txt", b"User-agent: *\nAllow: /\n")
    server.reply("/sitemap.xml", b"", status=404)
    server.redirect("/news/2024/05/20/moved-to-internal-host", "http://10.0.0.1/latest/meta-data/")
    server.redirect("/news/2024/05/21/moved-to-metadata-service", f"http://metadata.news.test:{port}/latest/")
    server.redirect("/news/2024/05/22/moved-to-ipv6-mapped", "http://[::ffff:169.254.169.254]/")
    real = article_page("A real story stays", "2024-05-23T10:00:00Z", "Real").encode()
    server.reply("/news/2024/05/23/a-real-story-stays", real, headers={"Content-Type": "text/html"})
    links = "".join(
        f'<a href="{base}{p}">x</a>'
        for p in (
            "/news/2024/05/20/moved-to-internal-host",
            "/news/2024/05/21/moved-to-metadata-service",
            "/news/2024/05/22/moved-to-ipv6-mapped",
            "/news/2024/05/23/a-real-story-stays",
        )
    )
    server.reply("/", f"<html><body>{links}</body></html>".encode(), headers={"Content-Type": "text/html"})
    resolver = fixed_resolver({"news.test": ["127.0.0.1"], "metadata.news.test": ["169.254.169.254"]})
    strict = policy(allowed_networks=LOOPBACK)
    report = await scrape_site_report(
        SiteConfig(start_urls=(base + "/",), download_delay_s=0.0), strict, UA, resolver=resolver
    )
    assert [e.title for e in report.entries] == ["A real story stays"]
    assert set(report.refused) == {
        "http://10.0.0.1/latest/meta-data/",
        f"http://metadata.news.test:{port}/latest/",
        "http://[::ffff:169.254.169.254]/",
    }
    assert connections and all(h == "127.0.0.1" for h in connections)


async def test_dns_rebinding_is_caught_at_connect_time(server: LocalServer, connections: list[str]) -> None:
    """The middleware's lookup says loopback; by the time the transport connects the
    name points at the metadata service. The transport's own check refuses it."""
    port = server.base_url.rsplit(":", 1)[1]
    server.reply("/robots.txt", b"User-agent: *\nAllow: /\n")
    server.reply("/", b"<html><body>home</body></html>", headers={"Content-Type": "text/html"})
    answers = {"rebind.test": 0}

    async def rebinding(host: str, port_: int) -> list[str]:
        answers[host] += 1
        # Lookups 1-2: robots.txt (pre-flight and connect); 3: the guard
        # middleware for the start page; 4: the page's connect. Rebind at 4.
        return ["127.0.0.1"] if answers[host] <= 3 else ["169.254.169.254"]

    report = await scrape_site_report(
        SiteConfig(start_urls=(f"http://rebind.test:{port}/",), download_delay_s=0.0, use_sitemaps=False),
        policy(), UA, resolver=rebinding,
    )
    assert report.refused == (f"http://rebind.test:{port}/",)
    assert server.hits["/"] == 0 and server.hits["/robots.txt"] == 1
    assert answers["rebind.test"] == 4


async def test_unreachable_robots_disallows_the_whole_site(server: LocalServer) -> None:
    news_site(server)
    server.reply("/robots.txt", b"down for maintenance", status=503)
    report = await scrape_site_report(SiteConfig(start_urls=(server.url("/"),), download_delay_s=0.0), policy(), UA)
    assert report.entries == []
    assert server.url("/") in report.disallowed
    assert set(server.hits) == {"/robots.txt"}


async def test_css_selectors_override_extraction(server: LocalServer) -> None:
    server.reply("/robots.txt", b"", status=404)
    server.reply("/sitemap.xml", b"", status=404)
    story = """<html><head><title>Site title - The Gazette</title></head><body>
    <div class="story"><h2 class="headline">The <em>real</em> headline</h2>
    <span class="who">Ines Duarte</span><span class="when">14 May 2024 08:30</span>
    <div class="text"><p>First paragraph of the body, picked by the site's selector.</p>
    <p>Second paragraph <a href="javascript:alert(1)">with a bad link</a>.</p><script>alert(2)</script></div></div>
    <div class="ad">Buy now</div></body></html>"""
    server.reply("/stories/1001", story.encode(), headers={"Content-Type": "text/html"})
    server.reply("/stories/1002", b"", status=500)
    home = b'<a href="/stories/1001">a</a><a href="/stories/1002">b</a><a href="/about-the-gazette-team">c</a>'
    server.reply("/", home, headers={"Content-Type": "text/html"})
    config = SiteConfig(
        start_urls=(server.url("/"),), link_pattern=r"/stories/\d+$", title_css="h2.headline",
        body_css="div.text", date_css="span.when", author_css=".who::text", download_delay_s=0.0,
    )
    report = await scrape_site_report(config, policy(), UA)
    [entry] = report.entries
    assert entry.title == "The real headline"
    assert entry.author == "Ines Duarte"
    assert entry.published_at == datetime(2024, 5, 14, 8, 30, tzinfo=UTC)
    assert entry.content is not None and "First paragraph of the body" in entry.content
    assert "javascript" not in entry.content and "alert(2)" not in entry.content and "Buy now" not in entry.content
    assert server.hits["/about-the-gazette-team"] == 0
    assert report.errors == (f"scrape: {server.url('/stories/1002')}: HTTP 500",)
    assert server.hits["/stories/1002"] == 2  # one retry for a 5xx


async def test_paywalled_pages_are_reported(server: LocalServer) -> None:
    server.reply("/robots.txt", b"", status=404)
    server.reply("/sitemap.xml", b"", status=404)
    free = article_page("Free story", "2024-05-06T10:00:00Z", "Free")
    locked = article_page("Members story", "2024-05-07T10:00:00Z", "Members").replace(
        "</article>", '<div class="paywall-overlay"><p>Subscribe to continue reading</p></div></article>'
    )
    server.reply("/2024/05/06/free-story-for-all", free.encode(), headers={"Content-Type": "text/html"})
    server.reply("/2024/05/07/members-story-locked", locked.encode(), headers={"Content-Type": "text/html"})
    home = '<a href="/2024/05/06/free-story-for-all">a</a><a href="/2024/05/07/members-story-locked">b</a>'
    server.reply("/", home.encode(), headers={"Content-Type": "text/html"})
    report = await scrape_site_report(SiteConfig(start_urls=(server.url("/"),), download_delay_s=0.0), policy(), UA)
    assert {e.title for e in report.entries} == {"Free story", "Members story"}
    assert report.paywalled == {server.url("/2024/05/07/members-story-locked")}  # dedupe keys


async def test_body_cap_and_timeout(server: LocalServer) -> None:
    server.reply("/robots.txt", b"", status=404)
    server.reply("/sitemap.xml", b"", status=404)
    big = b"<html><body><p>" + b"x" * 200_000 + b"</p></body></html>"
    server.reply("/2024/05/01/big-page", big, headers={"Content-Type": "text/html"})
    bomb = gzip.compress(b"<html><body>" + b" " * 5_000_000 + b"</body></html>")
    server.reply("/2024/05/02/compressed-bomb", bomb, headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})
    server.stream("/2024/05/03/slow-drip", b"<p>.", limit=10_000, interval_s=0.1, headers={"Content-Type": "text/html"})
    normal = article_page("Normal story", "2024-05-04T10:00:00Z", "Normal").encode()
    server.reply("/2024/05/04/normal-story-here", normal, headers={"Content-Type": "text/html"})
    bad = ("/2024/05/01/big-page", "/2024/05/02/compressed-bomb", "/2024/05/03/slow-drip")
    links = "".join(f'<a href="{p}">x</a>' for p in (*bad, "/2024/05/04/normal-story-here"))
    server.reply("/", f"<html><body>{links}</body></html>".encode(), headers={"Content-Type": "text/html"})
    small = policy(max_bytes=64 * 1024, timeout_s=1.0)
    started = time.monotonic()
    report = await scrape_site_report(SiteConfig(start_urls=(server.url("/"),), download_delay_s=0.0), small, UA)
    assert [e.title for e in report.entries] == ["Normal story"]
    failed = {e.split(": ")[1] for e in report.errors}
    assert failed == {server.url(p) for p in bad}
    assert time.monotonic() - started < 10  # the drip (25 s at full length) was cut off


async def test_time_budget_closes_the_crawl_keeping_what_it_has(server: LocalServer) -> None:
    news_site(server, crawl_delay="0.2")
    config = SiteConfig(start_urls=(server.url("/"),), download_delay_s=0.0, time_budget_s=0.5)
    report = await scrape_site_report(config, policy(), UA)
    assert report.close_reason == "closespider_timeout"
    assert 0 < len(report.entries) < 7


async def test_cancelled_scrape_stops_cleanly(server: LocalServer) -> None:
    log = news_site(server, crawl_delay="0.2")
    config = SiteConfig(start_urls=(server.url("/"),), download_delay_s=0.0)
    task = asyncio.create_task(scrape_site(config, policy(), UA))
    await poll(lambda: any(path.startswith("/news/") for _, path in log.starts), "the scrape to reach an article", 5,
               interval_s=0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(log.starts) < 9  # stopped before the whole site was fetched
    again = await scrape_site(SiteConfig(start_urls=(server.url("/"),), download_delay_s=0.0, use_sitemaps=False),
                              policy(), UA)
    assert len(again) == 7


async def test_reactor_installed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("actors.site_scraper.is_reactor_installed", lambda: True)
    with pytest.raises(ScrapeError, match="^scrape: a Twisted reactor is installed"):
        await scrape_site(SiteConfig(start_urls=("http://127.0.0.1:9/",)), policy(), UA)

