"""A tiny, dependency-free HTTP server for the bundled sample feeds.

It exists so that newsray can be demonstrated and tested end to end without the
internet: the feeds, an OPML index and one HTML page per item are all served
from 127.0.0.1. Everything is rendered once at start-up (the base URL is only
known after binding), so request handling is a dictionary lookup.
"""

from __future__ import annotations

import hashlib
import html
import socket
import socketserver
import sys
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import unquote, urlsplit

# Resolved relative to this file so it works from a checkout and from an installed wheel.
FEEDS_DIR: Path = Path(__file__).parent / "feeds"
FEED_SUFFIXES: frozenset[str] = frozenset({".xml", ".rdf", ".atom"})
OPML_NAME = "index.opml"
# Feed files contain this literal instead of a host so they work on any port.
BASE_PLACEHOLDER = "{base}"

_ATOM = "{http://www.w3.org/2005/Atom}"
_RSS1 = "{http://purl.org/rss/1.0/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "rdf": "application/rdf+xml; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
# Autodiscovery consumers generally only recognise these two types; RSS 1.0 is RSS.
_DISCOVERY_TYPES = {"rss": "application/rss+xml", "rdf": "application/rss+xml", "atom": "application/atom+xml"}
# Used when a file has no dated item at all, so Last-Modified is still stable.
_FALLBACK_DATE = datetime(2026, 11, 1, tzinfo=timezone.utc)
_TR_MONTHS = ("Ocak", "Şubat", "Mart", "Nisan", "Mayıs", "Haziran", "Temmuz",
              "Ağustos", "Eylül", "Ekim", "Kasım", "Aralık")


def sample_feed_files() -> list[Path]:
    """Every bundled feed file (not the OPML index), sorted by name."""
    return sorted(p for p in FEEDS_DIR.iterdir() if p.is_file() and p.suffix in FEED_SUFFIXES)


@dataclass(frozen=True)
class _Item:
    link: str
    title: str
    summary: str
    author: str
    published: datetime | None
    updated: datetime | None
    categories: tuple[str, ...]
    content_html: str | None

    @property
    def slug(self) -> str:
        # Article URLs are the sample server's own, so the file stem is a unique key.
        return Path(urlsplit(self.link).path).stem


@dataclass(frozen=True)
class _Feed:
    path: Path
    kind: str  # "rss", "atom" or "rdf"
    title: str
    language: str
    body: str  # file text with the base URL substituted
    items: tuple[_Item, ...]

    @property
    def newest(self) -> datetime:
        dates = [d for item in self.items for d in (item.updated, item.published) if d is not None]
        return max(dates, default=_FALLBACK_DATE)


@dataclass(frozen=True)
class _Resource:
    body: bytes
    content_type: str
    etag: str
    last_modified: datetime


def _resource(body: str, kind: str, last_modified: datetime) -> _Resource:
    data = body.encode("utf-8")
    # Strong validator: derived from the exact bytes served, so it changes with the base URL too.
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    # HTTP dates are GMT with one-second resolution; normalise so If-Modified-Since compares cleanly.
    return _Resource(data, _CONTENT_TYPES[kind], etag, last_modified.astimezone(timezone.utc).replace(microsecond=0))


# --- feed parsing (just enough to build article pages and Last-Modified) -------------------


def _text(el: ET.Element, path: str) -> str:
    found = el.find(path)
    return (found.text or "").strip() if found is not None else ""


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value) if value[:4].isdigit() else parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _rss_author(value: str) -> str:
    # RSS 2.0 <author> is "email (Name)"; a byline wants just the name.
    if value.endswith(")") and "(" in value:
        return value[value.index("(") + 1 : -1].strip()
    return value


def _parse_feed(path: Path, body: str) -> _Feed:
    root = ET.fromstring(body)
    items: list[_Item] = []
    if root.tag == "rss":
        kind, channel = "rss", root.find("channel")
        if channel is None:
            raise ValueError(f"{path.name}: RSS without <channel>")
        title, language = _text(channel, "title"), _text(channel, "language")
        for el in channel.iter("item"):
            published = _date(_text(el, "pubDate"))
            items.append(_Item(
                link=_text(el, "link"), title=_text(el, "title"), summary=_text(el, "description"),
                author=_rss_author(_text(el, "author")) or _text(el, f"{_DC}creator"),
                published=published, updated=published,
                categories=tuple((c.text or "").strip() for c in el.iter("category")),
                content_html=_text(el, f"{_CONTENT}encoded") or None,
            ))
    elif root.tag == f"{_ATOM}feed":
        kind, title, language = "atom", _text(root, f"{_ATOM}title"), root.get(_XML_LANG, "")
        for el in root.iter(f"{_ATOM}entry"):
            links = [a for a in el.iter(f"{_ATOM}link") if a.get("rel", "alternate") == "alternate"]
            items.append(_Item(
                link=links[0].get("href", "") if links else "", title=_text(el, f"{_ATOM}title"),
                summary=_text(el, f"{_ATOM}summary"), author=_text(el, f"{_ATOM}author/{_ATOM}name"),
                published=_date(_text(el, f"{_ATOM}published")), updated=_date(_text(el, f"{_ATOM}updated")),
                categories=tuple(c.get("term", "") for c in el.iter(f"{_ATOM}category")),
                content_html=_text(el, f"{_ATOM}content") or None,
            ))
    elif root.tag == f"{_RDF}RDF":
        kind = "rdf"
        title, language = _text(root, f"{_RSS1}channel/{_RSS1}title"), _text(root, f"{_RSS1}channel/{_DC}language")
        for el in root.iter(f"{_RSS1}item"):
            published = _date(_text(el, f"{_DC}date"))
            items.append(_Item(
                link=_text(el, f"{_RSS1}link"), title=_text(el, f"{_RSS1}title"),
                summary=_text(el, f"{_RSS1}description"), author=_text(el, f"{_DC}creator"),
                published=published, updated=published,
                categories=tuple((c.text or "").strip() for c in el.iter(f"{_DC}subject")),
                content_html=_text(el, f"{_CONTENT}encoded") or None,
            ))
    else:
        raise ValueError(f"{path.name}: unrecognised feed root element {root.tag!r}")
    return _Feed(path, kind, title, language or "en", body, tuple(items))


# --- HTML rendering -------------------------------------------------------------------------


def _human_date(when: datetime, turkish: bool) -> str:
    offset = when.strftime("%z")
    zone = "UTC" if offset == "+0000" else f"UTC{offset[:3]}:{offset[3:]}"
    month = _TR_MONTHS[when.month - 1] if turkish else when.strftime("%B")
    return f"{when.day} {month} {when.year}, {when:%H:%M} {zone}"


def _article_page(feed: _Feed, item: _Item, base_url: str) -> str:
    e = html.escape
    turkish = feed.language.startswith("tr")
    canonical = f"{base_url}/articles/{item.slug}.html"
    feed_url = f"{base_url}/feeds/{feed.path.name}"
    when = item.published or feed.newest
    topics = ", ".join(item.categories)
    if turkish:
        byline = f"Yazan: <span class=\"author\">{e(item.author)}</span>"
        context = (f"Bu haber {e(feed.title)} tarafından {e(topics)} başlıkları altında yayımlandı. "
                   f"Haberi {e(item.author)} hazırladı.")
        disclaimer = ("Bu içerik, newsray'in haber akışı altyapısını denemek için hazırlanmış kurgusal bir "
                      "örnektir; haberde geçen kişiler, kurumlar ve rakamlar hayal ürünüdür.")
        more = f"Benzer haberler için <a href=\"{e(feed_url)}\">{e(feed.title)} akışına</a> göz atabilirsiniz."
        filed = "Konular"
    else:
        byline = f"By <span class=\"author\">{e(item.author)}</span>"
        context = (f"This story is part of {e(feed.title)}'s coverage of {e(topics)}. "
                   f"It was filed by {e(item.author)}.")
        disclaimer = ("This article is fictional sample content: the people, companies and figures in it were "
                      "invented to exercise newsray's feed pipeline.")
        more = f"More stories like this are in the <a href=\"{e(feed_url)}\">{e(feed.title)} feed</a>."
        filed = "Filed under"
    # Items with full content (our own files, so trusted HTML) use it; the rest get
    # paragraphs built from their metadata so every page has a real article body.
    body = item.content_html or f"<p>{context}</p>"
    tags = "\n".join(f'<meta property="article:tag" content="{e(c)}">' for c in item.categories)
    return f"""<!DOCTYPE html>
<html lang="{e(feed.language)}">
<head>
<meta charset="utf-8">
<title>{e(item.title)} — {e(feed.title)}</title>
<link rel="canonical" href="{e(canonical)}">
<link rel="alternate" type="{_DISCOVERY_TYPES[feed.kind]}" title="{e(feed.title)}" href="{e(feed_url)}">
<meta name="description" content="{e(item.summary)}">
<meta name="author" content="{e(item.author)}">
<meta property="og:type" content="article">
<meta property="og:title" content="{e(item.title)}">
<meta property="og:description" content="{e(item.summary)}">
<meta property="og:url" content="{e(canonical)}">
<meta property="og:site_name" content="{e(feed.title)}">
<meta property="article:published_time" content="{when.isoformat()}">
{tags}
</head>
<body>
<header><a href="{e(base_url)}/">{e(feed.title)}</a></header>
<main>
<article>
<h1>{e(item.title)}</h1>
<p class="byline">{byline} · <time datetime="{when.isoformat()}">{_human_date(when, turkish)}</time></p>
<p class="lead"><strong>{e(item.summary)}</strong></p>
{body}
<p>{disclaimer}</p>
<p>{more}</p>
<footer><p>{filed}: {e(topics)}</p></footer>
</article>
</main>
</body>
</html>
"""


def _index_page(feeds: list[_Feed], base_url: str) -> str:
    e = html.escape
    alternates = "\n".join(
        f'<link rel="alternate" type="{_DISCOVERY_TYPES[f.kind]}" title="{e(f.title)}" '
        f'href="{e(base_url)}/feeds/{e(f.path.name)}">'
        for f in feeds
    )
    sections = []
    for f in feeds:
        latest = "".join(f'<li><a href="{e(i.link)}">{e(i.title)}</a></li>' for i in f.items[:3])
        sections.append(
            f'<li><a href="{e(base_url)}/feeds/{e(f.path.name)}">{e(f.title)}</a> '
            f"({e(f.language)}, {len(f.items)} items)<ul>{latest}</ul></li>"
        )
    listing = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>newsray sample feeds</title>
{alternates}
<link rel="outline" type="text/x-opml" title="All sample feeds" href="{e(base_url)}/feeds/{OPML_NAME}">
</head>
<body>
<h1>newsray sample feeds</h1>
<p>Fictional news for offline demos and tests. <a href="{e(base_url)}/feeds/{OPML_NAME}">OPML index</a>.</p>
<ul>
{listing}
</ul>
</body>
</html>
"""


def _build_resources(base_url: str) -> tuple[dict[str, _Resource], list[_Feed]]:
    feeds = [
        _parse_feed(p, p.read_text(encoding="utf-8").replace(BASE_PLACEHOLDER, base_url))
        for p in sample_feed_files()
    ]
    newest = max((f.newest for f in feeds), default=_FALLBACK_DATE)
    resources: dict[str, _Resource] = {"/": _resource(_index_page(feeds, base_url), "html", newest)}
    opml = (FEEDS_DIR / OPML_NAME).read_text(encoding="utf-8").replace(BASE_PLACEHOLDER, base_url)
    resources[f"/feeds/{OPML_NAME}"] = _resource(opml, "opml", newest)
    for feed in feeds:
        resources[f"/feeds/{feed.path.name}"] = _resource(feed.body, feed.kind, feed.newest)
        for item in feed.items:
            path = f"/articles/{item.slug}.html"
            if path in resources:
                raise ValueError(f"duplicate article slug {item.slug!r} in {feed.path.name}")
            when = item.updated or item.published or feed.newest
            resources[path] = _resource(_article_page(feed, item, base_url), "html", when)
    return resources, feeds


# --- HTTP -----------------------------------------------------------------------------------


class _SampleHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # never let a slow client keep the process alive

    def __init__(self, address: tuple[str, int], ipv6: bool) -> None:
        # Must be set before the base class creates the socket.
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.resources: dict[str, _Resource] = {}
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        with self._connections_lock:
            self._connections.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on idle keep-alive clients so a stopped server really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), a DNS lookup we neither need nor want.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response are normal for a feed server; keep stderr quiet.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so pooled clients (httpx) behave like in production
    server_version = "newsray-samplefeeds/1.0"
    timeout = 30  # reap idle keep-alive connections

    def do_GET(self) -> None:
        self._respond(send_body=True)

    def do_HEAD(self) -> None:
        self._respond(send_body=False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base-class signature
        pass  # tests and demos should not spam stderr with access logs

    def _respond(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        resource = cast(_SampleHTTPServer, self.server).resources.get(path)
        if resource is None:
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)
            return
        not_modified = self._is_not_modified(resource)
        self.send_response(304 if not_modified else 200)
        self.send_header("ETag", resource.etag)
        self.send_header("Last-Modified", format_datetime(resource.last_modified, usegmt=True))
        # Force revalidation so that pollers exercise the conditional-GET path every time.
        self.send_header("Cache-Control", "no-cache")
        if not_modified:
            self.end_headers()
            return
        self.send_header("Content-Type", resource.content_type)
        self.send_header("Content-Length", str(len(resource.body)))
        self.end_headers()
        if send_body:
            self.wfile.write(resource.body)

    def _is_not_modified(self, resource: _Resource) -> bool:
        # RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since is only consulted without it.
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
            return "*" in tags or resource.etag in tags
        if_modified_since = self.headers.get("If-Modified-Since")
        if if_modified_since:
            try:
                since = parsedate_to_datetime(if_modified_since)
            except (TypeError, ValueError):
                return False  # unparseable dates must be ignored, not treated as a match
            if since.tzinfo is None:
                since = since.replace(tzinfo=timezone.utc)
            return resource.last_modified <= since
        return False


class SampleFeedServer:
    """A running sample feed server; stop it with :meth:`stop` or use it as a context manager."""

    def __init__(self, httpd: _SampleHTTPServer, base_url: str, feeds: list[_Feed]) -> None:
        self._httpd = httpd
        self.base_url = base_url
        self.feed_urls: list[str] = sorted(f"{base_url}/feeds/{f.path.name}" for f in feeds)
        self.opml_url = f"{base_url}/feeds/{OPML_NAME}"
        self.article_urls: list[str] = sorted(f"{base_url}/articles/{i.slug}.html" for f in feeds for i in f.items)
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="samplefeeds", daemon=True
        )
        self._stopped = False

    @property
    def port(self) -> int:
        return self._httpd.server_port

    def _start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> SampleFeedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SampleFeedServer({self.base_url!r}, feeds={len(self.feed_urls)})"


def start_sample_server(host: str = "127.0.0.1", port: int = 0) -> SampleFeedServer:
    """Start the sample feed server in a daemon thread; ``port=0`` picks a free port."""
    ipv6 = ":" in host
    httpd = _SampleHTTPServer((host, port), ipv6=ipv6)
    try:
        # A wildcard bind is not a URL anyone can fetch; advertise loopback instead.
        public_host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        netloc = f"[{public_host}]" if ipv6 else public_host
        base_url = f"http://{netloc}:{httpd.server_port}"
        httpd.resources, feeds = _build_resources(base_url)
    except BaseException:
        httpd.server_close()
        raise
    server = SampleFeedServer(httpd, base_url, feeds)
    server._start()
    return server
