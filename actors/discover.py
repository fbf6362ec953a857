"""Feed discovery: from a site's address to its feed, or to kind `site` when it has none.

Order: the URL itself is a feed → `<link rel="alternate">` feeds on the page → common feed
paths on the same origin. Every request goes through the fetch policy (SSRF guard included).
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx

from actors.fetch import FetchError, FetchPolicy, fetch
from actors.parse import ParseError, parse_feed
from cluster.urls import normalize_source_url

FEED_TYPES = {
    "application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json",
    "application/json", "text/xml", "application/xml",
}
COMMON_PATHS = ("/feed", "/rss", "/rss.xml", "/feed.xml", "/atom.xml", "/index.xml", "/feeds/all.atom.xml",
                "/feed.json")


@dataclass(frozen=True, slots=True)
class Discovered:
    url: str
    kind: str  # "feed" or "site"
    title: str | None
    how: str  # "direct", "link", "path", or "fallback"


class _AlternateLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str | None]] = []
        self.title: str | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "link" and "alternate" in values.get("rel", "").lower().split():
            kind = values.get("type", "").lower().split(";")[0].strip()
            if kind in FEED_TYPES and values.get("href"):
                self.links.append((values["href"], values.get("title") or None))
        elif tag == "title" and self.title is None:
            self._in_title = True

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = (self.title or "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False


def alternate_feed_links(html: str, base_url: str) -> list[tuple[str, str | None]]:
    parser = _AlternateLinks()
    parser.feed(html)
    return [(urljoin(base_url, href), title) for href, title in parser.links]


async def _as_feed(client: httpx.AsyncClient, url: str, policy: FetchPolicy) -> tuple[str, str | None] | None:
    try:
        result = await fetch(client, url, policy)
        feed = parse_feed(result.body, result.url, result.content_type, result.headers)
    except (FetchError, ParseError):
        return None
    return result.url, feed.title


async def discover_url(url: str, policy: FetchPolicy) -> Discovered:
    """discover() with a client of its own (for the CLI and the API)."""
    from actors.fetch import make_client

    async with make_client(policy) as client:
        return await discover(client, url, policy)


async def discover(client: httpx.AsyncClient, url: str, policy: FetchPolicy) -> Discovered:
    """Find the feed behind `url`; a reachable page without one becomes a `site` source.

    Raises FetchError when the URL itself cannot be fetched (so the caller can tell the user).
    """
    url = normalize_source_url(url)
    result = await fetch(client, url, policy)
    try:
        feed = parse_feed(result.body, result.url, result.content_type, result.headers)
        return Discovered(normalize_source_url(result.url), "feed", feed.title, "direct")
    except ParseError:
        pass
    parser = _AlternateLinks()
    parser.feed(result.body.decode(result.encoding or "utf-8", errors="replace"))
    for href, _title in parser.links:
        found = await _as_feed(client, urljoin(result.url, href), policy)
        if found:
            return Discovered(normalize_source_url(found[0]), "feed", found[1], "link")
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(result.url))
    for path in COMMON_PATHS:
        found = await _as_feed(client, origin + path, policy)
        if found:
            return Discovered(normalize_source_url(found[0]), "feed", found[1], "path")
    title = parser.title.strip() if parser.title else None
    return Discovered(normalize_source_url(result.url), "site", title, "fallback")
