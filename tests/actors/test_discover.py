"""Feed discovery against real local servers."""

from __future__ import annotations

import pytest

from actors.discover import alternate_feed_links, discover
from actors.fetch import FetchError, make_client
from tests.actors.conftest import LOOPBACK_POLICY as POLICY
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Found it</title><item><guid>1</guid><title>a</title></item></channel></rss>'
XML = {"Content-Type": "application/rss+xml"}
HTML = {"Content-Type": "text/html; charset=utf-8"}


def page(head: str = "", title: str = "A site") -> bytes:
    return f"<!doctype html><html><head><title>{title}</title>{head}</head><body><p>hi</p></body></html>".encode()


async def run(url: str):  # type: ignore[no-untyped-def]
    async with make_client(POLICY) as client:
        return await discover(client, url, POLICY)


async def test_feed_url_is_taken_as_is(server) -> None:
    found = await run(server.reply("/rss.xml", RSS, headers=XML))
    assert (found.kind, found.how, found.title) == ("feed", "direct", "Found it")


async def test_alternate_link_wins(server) -> None:
    server.reply("/news/feed.xml", RSS, headers=XML)
    home = server.reply("/", page('<link rel="alternate" type="application/rss+xml" href="/news/feed.xml" title="News">'),
                        headers=HTML)
    found = await run(home)
    assert found.url == server.url("/news/feed.xml") and found.how == "link"


async def test_common_path_when_no_link(server) -> None:
    server.reply("/atom.xml", RSS, headers=XML)
    found = await run(server.reply("/", page(), headers=HTML))
    assert found.url == server.url("/atom.xml") and found.how == "path"


async def test_site_without_feed_becomes_a_site_source(server) -> None:
    found = await run(server.reply("/", page(title="Plain News"), headers=HTML))
    assert (found.kind, found.how, found.title) == ("site", "fallback", "Plain News")


async def test_unreachable_url_raises(closed_port: int) -> None:
    with pytest.raises(FetchError):
        await run(f"http://127.0.0.1:{closed_port}/")


def test_alternate_links_resolve_relative_and_skip_other_types() -> None:
    html = ('<link rel="alternate" type="application/atom+xml" href="a.xml">'
            '<link rel="alternate" hreflang="de" href="/de/">'
            '<link rel="stylesheet" href="s.css">')
    assert alternate_feed_links(html, "http://127.0.0.1/x/") == [("http://127.0.0.1/x/a.xml", None)]
