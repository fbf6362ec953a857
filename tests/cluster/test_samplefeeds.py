"""Tests for the offline sample feed server and the bundled OPML files.

Everything here talks only to 127.0.0.1: the server under test is started on a
free loopback port, and default_sources.opml is parsed but never fetched.
"""

from __future__ import annotations

import html
import http.client
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

import feedparser
import pytest

from cluster.samplefeeds import FEEDS_DIR, SampleFeedServer, sample_feed_files, start_sample_server

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCES = REPO_ROOT / "cluster" / "data" / "default_sources.opml"
CATEGORIES = {"World", "Business", "Technology", "Science", "Sports", "Culture"}
TURKISH_LETTERS = set("çğıİöşüÇĞÖŞÜ")

# An explicit empty ProxyHandler: an ambient http_proxy must never route loopback traffic elsewhere.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Response = tuple[int, dict[str, str], bytes]


def _request(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> Response:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with _OPENER.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:  # 304 and 404 arrive as exceptions
        try:
            return err.code, dict(err.headers), err.read()
        finally:
            err.close()  # an unclosed response would raise ResourceWarning (an error here)


@pytest.fixture(scope="module")
def server() -> Iterator[SampleFeedServer]:
    with start_sample_server("127.0.0.1", 0) as srv:
        yield srv


@pytest.fixture(scope="module")
def parsed_feeds(server: SampleFeedServer) -> dict[str, feedparser.FeedParserDict]:
    feeds = {}
    for url in server.feed_urls:
        status, _, body = _request(url)
        assert status == 200, url
        feeds[url] = feedparser.parse(body)
    return feeds


def test_bundled_files_are_found_next_to_the_package() -> None:
    files = sample_feed_files()
    assert len(files) >= 6
    assert all(f.parent == FEEDS_DIR and f.suffix in {".xml", ".rdf", ".atom"} for f in files)
    assert (FEEDS_DIR / "index.opml").is_file()


def test_server_urls(server: SampleFeedServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert server.feed_urls == sorted(server.feed_urls)
    assert server.feed_urls == [f"{server.base_url}/feeds/{f.name}" for f in sample_feed_files()]
    assert server.opml_url == f"{server.base_url}/feeds/index.opml"


def test_every_feed_parses_cleanly(server: SampleFeedServer, parsed_feeds: dict[str, feedparser.FeedParserDict]) -> None:
    assert len(parsed_feeds) >= 6
    versions = set()
    languages = set()
    entries = 0
    for url, parsed in parsed_feeds.items():
        assert not parsed.bozo, f"{url}: {parsed.get('bozo_exception')!r}"
        versions.add(parsed.version)
        languages.add(parsed.feed.get("language", "")[:2])
        assert parsed.feed.get("title"), url
        for entry in parsed.entries:
            assert entry.get("title"), url
            assert entry.get("link", "").startswith(f"{server.base_url}/articles/"), (url, entry.get("link"))
            assert entry.get("summary"), (url, entry.title)
        entries += len(parsed.entries)
    assert entries >= 120
    assert {"en", "tr"} <= languages
    assert {"rss20", "rss10", "atom10"} <= versions


def test_feed_variety(parsed_feeds: dict[str, feedparser.FeedParserDict]) -> None:
    all_entries = [e for p in parsed_feeds.values() for e in p.entries]
    links = [e.link for e in all_entries]
    assert len(links) == len(set(links)), "article links must be unique across feeds"
    # At least one RSS feed has no guids at all, so readers must fall back to keying by link.
    assert any(p.version == "rss20" and not any("id" in e for e in p.entries) for p in parsed_feeds.values())
    assert sum("content" in e for e in all_entries) >= 10
    assert sum(bool(e.get("author")) for e in all_entries) == len(all_entries)
    turkish = [p for p in parsed_feeds.values() if p.feed.get("language", "").startswith("tr")]
    assert len(turkish) >= 2
    for parsed in turkish:
        assert any(TURKISH_LETTERS & set(e.title) for e in parsed.entries)
    dates = [e.get("published_parsed") or e.get("updated_parsed") for e in all_entries]
    assert all(d is not None for d in dates)
    assert {(d.tm_year, d.tm_mon) for d in dates if d} == {(2026, 11)}


def test_feed_headers_and_placeholder(server: SampleFeedServer) -> None:
    expected = {".xml": "application/rss+xml", ".atom": "application/atom+xml", ".rdf": "application/rdf+xml"}
    for url in server.feed_urls:
        status, headers, body = _request(url)
        assert status == 200
        assert headers["Content-Type"].startswith(expected[Path(url).suffix]), url
        assert headers["ETag"].startswith('"') and not headers["ETag"].startswith("W/")
        assert headers["Last-Modified"].endswith("GMT")
        assert int(headers["Content-Length"]) == len(body)
        assert b"{base}" not in body


def test_conditional_requests(server: SampleFeedServer) -> None:
    url = server.feed_urls[0]
    status, headers, body = _request(url)
    assert status == 200 and body
    etag, last_modified = headers["ETag"], headers["Last-Modified"]

    status, headers, body = _request(url, {"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["ETag"] == etag

    assert _request(url, {"If-None-Match": f'"stale", {etag}'})[0] == 304
    assert _request(url, {"If-None-Match": '"stale"'})[0] == 200
    assert _request(url, {"If-Modified-Since": last_modified})[0] == 304
    old = format_datetime(datetime(2026, 10, 1, tzinfo=timezone.utc), usegmt=True)
    assert _request(url, {"If-Modified-Since": old})[0] == 200
    # If-None-Match takes precedence over If-Modified-Since.
    assert _request(url, {"If-None-Match": '"stale"', "If-Modified-Since": last_modified})[0] == 200


def test_head_matches_get_without_body(server: SampleFeedServer) -> None:
    _, get_headers, get_body = _request(server.feed_urls[-1])
    status, headers, body = _request(server.feed_urls[-1], method="HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == str(len(get_body))
    assert headers["ETag"] == get_headers["ETag"]


def test_article_pages(server: SampleFeedServer, parsed_feeds: dict[str, feedparser.FeedParserDict]) -> None:
    links = sorted(e.link for p in parsed_feeds.values() for e in p.entries)
    assert links == server.article_urls
    titles = {e.link: e.title for p in parsed_feeds.values() for e in p.entries}
    for link in links:
        status, headers, body = _request(link)
        assert status == 200, link
        assert headers["Content-Type"].startswith("text/html")
        page = body.decode("utf-8")
        assert f'<link rel="canonical" href="{link}">' in page
        assert html.escape(titles[link]) in page
        assert page.count("<p") >= 4


@pytest.mark.parametrize(
    "path",
    ["/articles/no-such-story.html", "/feeds/nope.xml", "/feeds/../server.py", "/favicon.ico", "/articles/"],
)
def test_unknown_paths_are_404(server: SampleFeedServer, path: str) -> None:
    assert _request(server.base_url + path)[0] == 404


def test_index_page_advertises_every_feed(server: SampleFeedServer) -> None:
    status, headers, body = _request(server.base_url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode("utf-8")
    for url in server.feed_urls:
        assert f'href="{url}"' in page
    assert page.count('<link rel="alternate"') == len(server.feed_urls)


def test_opml_index_lists_every_feed(server: SampleFeedServer) -> None:
    status, headers, body = _request(server.opml_url)
    assert status == 200 and "opml" in headers["Content-Type"]
    root = ET.fromstring(body)
    feeds = root.findall(".//outline[@xmlUrl]")
    assert sorted(o.get("xmlUrl", "") for o in feeds) == server.feed_urls
    # Feeds are grouped under category outlines.
    body_el = root.find("body")
    assert body_el is not None
    assert {o.get("text") for o in body_el.findall("outline")} == CATEGORIES


def test_default_sources_opml() -> None:
    root = ET.parse(DEFAULT_SOURCES).getroot()
    assert root.tag == "opml" and root.get("version") == "2.0"
    body = root.find("body")
    assert body is not None
    categories = {group.get("text"): group.findall("outline") for group in body.findall("outline")}
    assert set(categories) == CATEGORIES
    feeds = [o for group in categories.values() for o in group]
    urls = [o.get("xmlUrl", "") for o in feeds]
    assert len(urls) == len(set(urls)) >= 110
    for outline in feeds:
        assert outline.get("type") == "rss"
        assert outline.get("text") and outline.get("title")
        assert outline.get("xmlUrl", "").startswith(("http://", "https://"))
        assert outline.get("htmlUrl", "").startswith(("http://", "https://"))
        assert outline.get("language") in {"en", "tr"}
    assert sum(o.get("language") == "tr" for o in feeds) >= 25
    for name, group in categories.items():
        assert {o.get("language") for o in group} == {"en", "tr"}, name


def test_stop_closes_keep_alive_connections() -> None:
    srv = start_sample_server()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    try:
        conn.request("GET", "/feeds/index.opml")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Connection") != "close"
        response.read()
        srv.stop()
        srv.stop()  # idempotent
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            conn.request("GET", "/feeds/index.opml")
            conn.getresponse()
    finally:
        conn.close()
        srv.stop()


def test_module_entry_point_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster.samplefeeds", "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("Serving sample feeds at http://127.0.0.1:"), first
        base_url = first.split(" at ", 1)[1].strip().rstrip("/")
        # Read the whole banner through the same buffered reader: communicate() reads the raw
        # pipe and would miss lines that readline() has already buffered.
        banner = [first]
        while not banner[-1].startswith("Press Ctrl-C"):
            banner.append(proc.stdout.readline())
            assert banner[-1], banner
        assert f"  {base_url}/feeds/world-en.xml\n" in banner
        assert _request(base_url + "/feeds/index.opml")[0] == 200
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped" in out
    assert err == ""
