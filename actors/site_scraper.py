"""Scraping sites without feeds (sources of kind ``site``) with Scrapy, inside asyncio. No Ray.

``await scrape_site(config, policy, user_agent)`` crawls one site and returns
:class:`actors.parse.Entry` objects, so its articles go through the same
upsert as feed entries. It is safe to call repeatedly, and concurrently, in one
running event loop (an async Ray actor's):

* Scrapy 2.19 runs without Twisted's reactor when ``TWISTED_REACTOR_ENABLED``
  is False: :class:`scrapy.crawler.AsyncCrawlerRunner` runs the crawl as an
  asyncio task on the current loop. No reactor is installed or stopped, no
  signal handler is set (that is ``AsyncCrawlerProcess``'s doing, not the
  runner's), and each call gets its own runner and crawler. It refuses to run
  in a process where ``twisted.internet.reactor`` was imported.
* Scrapy's reactorless default downloader is aiohttp, which would bypass our
  SSRF guard, so HTTP(S) goes through :class:`_GuardedDownloadHandler`: httpx
  on :func:`actors.fetch.make_transport`, which connects only to addresses it
  has just checked (DNS rebinding included). :class:`_GuardMiddleware` also
  checks every request (redirects and meta refreshes are new requests, so they
  pass it too) before anything is sent, so a refused URL costs no connection.
* robots.txt is obeyed through :class:`actors.robots.RobotsCache` (Protego),
  not Scrapy's ``ROBOTSTXT_OBEY`` middleware, which treats an unreachable
  robots.txt as "allow everything" (RFC 9309 says disallow) and ignores
  Crawl-delay; sharing the cache with full-content fetches also saves fetches.
  The per-host delay is the larger of ``SiteConfig.download_delay_s`` and the
  site's Crawl-delay (capped), with one request at a time per host.
* Scrapy 2.19 starts a code-executing HTTP server (the RemoteControl
  extension) in every crawl unless told not to; it is turned off here, with
  telnet, cookies, proxies from the environment and the memory watchdog.

Discovery: sitemaps first (the robots.txt ``Sitemap:`` lines and
``/sitemap.xml``, newest ``lastmod`` first), then links on the start pages.
A link is followed when it is on the site (a start URL's host, with or without
``www.``, or a subdomain of it) and matches ``link_pattern`` — or, without a
pattern, looks like an article (a date in the path, a slug of three or more
words, or a long numeric id). Pages are extracted with :mod:`actors.extract`;
the CSS selectors in :class:`SiteConfig`, when given, override its fields.
"""

from __future__ import annotations

import asyncio
import html as html_lib
import re
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
import scrapy
from lxml import etree
from scrapy.crawler import AsyncCrawlerRunner, Crawler
from scrapy.exceptions import (
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    UnsupportedURLSchemeError,
)
from scrapy.http import Headers, Request, Response, TextResponse

# The streaming base class of Scrapy's own aiohttp/httpx handlers. It is
# private API: keep Scrapy pinned to 2.19.x and re-run the tests on upgrades.
from scrapy.core.downloader.handlers._base_streaming import BaseStreamingDownloadHandler, _BaseResponseArgs
from scrapy.utils.reactor import is_reactor_installed
from twisted.python.failure import Failure

from actors.extract import detect_paywall, extract_article, parse_datetime, plain_text
from actors.fetch import (
    BlockedAddressError,
    CookielessClient,
    FetchError,
    FetchPolicy,
    Resolver,
    check_url_allowed,
    make_client,
    make_transport,
)
from actors.parse import UNTITLED, Entry, sanitize_html
from actors.robots import RobotsCache, origin_of
from cluster.urls import canonicalize_url

__all__ = [
    "ScrapeError",
    "SiteConfig",
    "SiteScrape",
    "SitemapEntry",
    "looks_like_article",
    "parse_sitemap",
    "scrape_site",
    "scrape_site_report",
]

MAX_CRAWL_DELAY_S = 30.0  # a larger robots.txt Crawl-delay is honoured as this (and max_pages bounds the crawl)
MAX_SITEMAP_URLS = 50_000  # the sitemap protocol's own limit per file
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_PRIORITY_SITEMAP, _PRIORITY_LISTING, _PRIORITY_ARTICLE = 30, 20, 0


class ScrapeError(Exception):
    """A site scrape that could not run at all; ``str()`` starts with "scrape: "."""

    def __init__(self, message: str) -> None:
        super().__init__(f"scrape: {message}")


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SiteConfig:
    """How to scrape one site; stored as JSON on a source of kind ``site``."""

    start_urls: tuple[str, ...]
    link_pattern: str | None = None  # regex searched in each absolute link URL; None: article heuristics
    title_css: str | None = None
    body_css: str | None = None
    date_css: str | None = None
    author_css: str | None = None
    max_pages: int = 50  # article pages fetched per scrape
    download_delay_s: float = 1.0  # minimum gap between requests to the site (robots.txt may ask for more)
    use_sitemaps: bool = True
    max_sitemaps: int = 10  # sitemap documents read per scrape (index files included)
    time_budget_s: float = 300.0  # the crawl is closed after this long, keeping what it has

    def __post_init__(self) -> None:
        if isinstance(self.start_urls, str):
            raise ValueError("scrape: start_urls must be a list of URLs, not one string")
        object.__setattr__(self, "start_urls", tuple(self.start_urls))
        if not self.start_urls:
            raise ValueError("scrape: at least one start URL is required")
        for url in self.start_urls:
            try:
                origin_of(url)
            except ValueError:
                raise ValueError(f"scrape: start URL {url!r} is not an absolute http(s) URL") from None
        if self.link_pattern is not None:
            try:
                re.compile(self.link_pattern)
            except re.error as exc:
                raise ValueError(f"scrape: invalid link_pattern {self.link_pattern!r}: {exc}") from None
        if self.max_pages < 1 or self.max_sitemaps < 0:
            raise ValueError("scrape: max_pages must be at least 1 and max_sitemaps not negative")
        if self.download_delay_s < 0 or self.time_budget_s <= 0:
            raise ValueError("scrape: download_delay_s must not be negative and time_budget_s must be positive")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SiteConfig:
        """From a source's stored JSON; unknown keys are an error, not silently dropped."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"scrape: unknown site config keys: {', '.join(unknown)}")
        return cls(**dict(data))


@dataclass(frozen=True)
class SiteScrape:
    """Everything one scrape produced, for the source's health record."""

    entries: list[Entry]
    paywalled: frozenset[str]  # dedupe keys of entries whose page is paywalled (their content is the teaser)
    pages_fetched: int  # article pages downloaded
    delay_s: float  # gap between requests that was used
    refused: tuple[str, ...]  # URLs the address guard refused (never connected to)
    disallowed: tuple[str, ...]  # URLs robots.txt disallowed
    errors: tuple[str, ...]  # "scrape: URL: reason", one per failed request
    close_reason: str  # Scrapy's: "finished", "closespider_timeout", …


# ---------------------------------------------------------------- link selection


_DATE_IN_PATH = re.compile(r"/(?:19|20)\d{2}(?:/|-)(?:0?[1-9]|1[0-2])(?:/|-)|/(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}/")
_LONG_ID = re.compile(r"(?:^|[-_/])\d{5,}(?:$|[-_.])")
_NOT_ARTICLE_SEGMENTS = frozenset(
    {
        "tag", "tags", "category", "categories", "author", "authors", "page", "search", "feed", "feeds",
        "wp-content", "wp-admin", "wp-json", "static", "assets", "login", "signin", "register", "account",
        "subscribe", "newsletter", "cdn-cgi", "topics", "topic", "section", "sections",
    }
)
_NOT_ARTICLE_EXTENSIONS = re.compile(
    r"\.(?:jpe?g|png|gif|webp|svg|ico|pdf|zip|gz|xml|rss|atom|json|css|js|mp3|mp4|webm|woff2?)$", re.IGNORECASE
)


def looks_like_article(url: str) -> bool:
    """The default link filter: a dated path, a slug of three or more words, or a long numeric id."""
    path = urlsplit(url).path
    segments = [s for s in path.split("/") if s]
    if not segments or _NOT_ARTICLE_EXTENSIONS.search(path):
        return False
    if any(s.lower() in _NOT_ARTICLE_SEGMENTS for s in segments[:-1]):
        return False
    if _DATE_IN_PATH.search(path + "/"):
        return True
    last = re.sub(r"\.(?:s?html?|php|aspx?)$", "", segments[-1], flags=re.IGNORECASE)
    words = [w for w in re.split(r"[-_]+", last) if re.search(r"[^\W\d]", w)]
    return len(words) >= 3 or bool(_LONG_ID.search("/" + last))


def _bare_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


class _SitePolicy:
    """Which URLs belong to the site and which of them are articles."""

    def __init__(self, config: SiteConfig) -> None:
        self._hosts = frozenset(_bare_host(urlsplit(u).hostname or "") for u in config.start_urls)
        self._pattern = re.compile(config.link_pattern) if config.link_pattern else None
        self._start_pages = frozenset(_canonical(u) for u in config.start_urls)

    def same_site(self, url: str) -> bool:
        try:
            host = _bare_host(urlsplit(url).hostname or "")
        except ValueError:
            return False
        return any(host == h or host.endswith("." + h) for h in self._hosts)

    def is_article(self, url: str) -> bool:
        if not self.same_site(url) or _canonical(url) in self._start_pages:
            return False
        if self._pattern is not None:
            return self._pattern.search(url) is not None
        return looks_like_article(url)


def _canonical(url: str) -> str:
    try:
        return canonicalize_url(url)
    except ValueError:
        return url


# ---------------------------------------------------------------- sitemaps


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    loc: str
    lastmod: datetime | None = None
    news: bool = False  # carries a Google News <news:news> block: certainly an article


SitemapKind = Literal["urlset", "sitemapindex"]


def parse_sitemap(body: bytes, *, max_bytes: int = 50 * 1024 * 1024) -> tuple[SitemapKind | None, list[SitemapEntry]]:
    """Parse a sitemap or sitemap index (gzipped or not) into its entries.

    Returns ``(None, [])`` for anything else. Entities are never expanded and
    nothing is fetched (no DTDs), so billion-laughs and XXE documents are inert.
    """
    if body[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            body = inflater.decompress(body, max_bytes + 1)
        except zlib.error:
            return None, []
        if len(body) > max_bytes:
            raise ScrapeError(f"sitemap larger than {max_bytes} bytes once decompressed")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, recover=True, huge_tree=False, remove_comments=True, remove_pis=True
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        return None, []
    if root is None:
        return None, []
    kind = etree.QName(root).localname
    if kind not in ("urlset", "sitemapindex"):
        return None, []
    child_tag = "url" if kind == "urlset" else "sitemap"
    entries: list[SitemapEntry] = []
    for node in root:
        if not isinstance(node.tag, str) or etree.QName(node).localname != child_tag:
            continue
        fields = {etree.QName(c).localname: c for c in node if isinstance(c.tag, str)}
        loc = (fields["loc"].text or "").strip() if "loc" in fields else ""
        if not loc:
            continue
        lastmod = fields.get("lastmod")
        entries.append(
            SitemapEntry(loc, parse_datetime((lastmod.text or "") if lastmod is not None else None), "news" in fields)
        )
        if len(entries) >= MAX_SITEMAP_URLS:
            break
    return ("urlset" if kind == "urlset" else "sitemapindex"), entries


def _newest_first(entries: Iterable[SitemapEntry]) -> list[SitemapEntry]:
    return sorted(entries, key=lambda e: (e.lastmod is not None, e.lastmod or datetime.min), reverse=True)


# ---------------------------------------------------------------- shared crawl state


@dataclass
class _HostTurn:
    """Whose turn it is on one host, and when its last response ended."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_done: float = float("-inf")


@dataclass
class _Context:
    """What the spider, the middleware and the download handler of one crawl share."""

    config: SiteConfig
    policy: FetchPolicy
    resolver: Resolver | None
    robots: RobotsCache
    site: _SitePolicy
    entries: list[Entry] = field(default_factory=list)
    paywalled: set[str] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    disallowed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    delay_s: float = 0.0  # minimum gap between one response and the next request to a host
    hosts: dict[str, _HostTurn] = field(default_factory=dict)
    pages_fetched: int = 0


def _context_of(crawler: Crawler) -> _Context:
    spider = crawler.spider
    if not isinstance(spider, _SiteSpider):
        raise ScrapeError("the guarded components only work with the site spider")
    return spider.context


class _Refused(IgnoreRequest):
    """A request our guard stopped; already recorded, so the errback stays quiet."""


# ---------------------------------------------------------------- downloader components


class _GuardMiddleware:
    """First downloader middleware: address guard, same-site rule, robots.txt."""

    def __init__(self, context: _Context) -> None:
        self._context = context

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> _GuardMiddleware:
        return cls(_context_of(crawler))

    async def process_request(self, request: Request) -> None:
        context, url = self._context, request.url
        try:
            await check_url_allowed(url, context.policy, context.resolver)
        except BlockedAddressError as exc:
            context.refused.append(url)
            raise _Refused(f"scrape: {exc}") from None
        except FetchError as exc:
            context.errors.append(f"scrape: {url}: {exc}")
            raise _Refused(f"scrape: {exc}") from None
        if not context.site.same_site(url):
            # Redirects may leave the site; links never do (the spider filters them).
            context.errors.append(f"scrape: {url}: not on the site being scraped")
            raise _Refused(f"scrape: {url} is not on the site being scraped")
        if not await context.robots.allowed(url):
            context.disallowed.append(url)
            raise _Refused(f"scrape: {url} is disallowed by robots.txt")


class _GuardedDownloadHandler(BaseStreamingDownloadHandler[httpx.Response]):
    """HTTP(S) through httpx on the SSRF-guarded transport of actors.fetch."""

    # A proxy would be the only address ever checked; proxies are off in the settings too.
    supports_proxies: ClassVar[bool] = False

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        self._context = _context_of(crawler)
        self._client = CookielessClient(  # every page a first visit (and metered paywalls at zero)
            transport=make_transport(self._context.policy, resolver=self._context.resolver),
            follow_redirects=False,  # Scrapy's RedirectMiddleware follows them, through the guard
            trust_env=False,
        )
        for name in ("accept", "accept-encoding", "user-agent"):  # Scrapy's middlewares set these
            self._client.headers.pop(name, None)

    async def download_request(self, request: Request) -> Response:
        # Politeness is enforced here too, not left to Scrapy's slots alone:
        # * one request at a time per host. Scrapy 2.19 under asyncio starts each
        #   download as a separate task, so with DOWNLOAD_DELAY=0 a slot hands all
        #   its queued requests over before any counts as transferring, and
        #   CONCURRENT_REQUESTS_PER_DOMAIN=1 limits nothing (measured: 4 at once).
        # * the delay, from the end of one response to the start of the next
        #   request. Scrapy counts it from when a request leaves its queue, so a
        #   slow connect could bring two requests closer together than asked.
        host = self._context.hosts.setdefault(urlsplit(request.url).hostname or "", _HostTurn())
        async with host.lock:
            if (wait := host.last_done + self._context.delay_s - time.monotonic()) > 0:
                await asyncio.sleep(wait)  # the politeness delay itself
            # One deadline for connect, headers and the whole body: httpx's are per
            # operation, and a server dripping a byte a second never trips them.
            timeout: float = request.meta.get("download_timeout", self._context.policy.timeout_s)
            try:
                async with asyncio.timeout(timeout):
                    return await super().download_request(request)
            except TimeoutError as exc:
                message = f"scrape: {request.url}: no complete response within {timeout:g}s"
                raise DownloadTimeoutError(message) from exc
            finally:
                host.last_done = time.monotonic()

    @asynccontextmanager
    async def _make_request(self, request: Request, timeout: float) -> AsyncIterator[httpx.Response]:
        headers = self._request_headers(request).to_tuple_list()
        try:
            async with self._client.stream(
                request.method, request.url, content=request.body, headers=headers, timeout=timeout
            ) as response:
                yield response
        except BlockedAddressError as exc:  # the connect-time check: DNS changed since the middleware's
            self._context.refused.append(request.url)
            raise _Refused(f"scrape: {exc}") from None
        except httpx.TimeoutException as exc:
            raise DownloadTimeoutError(f"scrape: {request.url}: {type(exc).__name__}") from exc
        except httpx.UnsupportedProtocol as exc:
            raise UnsupportedURLSchemeError(str(exc)) from exc
        except httpx.ConnectError as exc:
            raise DownloadConnectionRefusedError(f"scrape: {request.url}: {exc}") from exc
        except (httpx.RequestError, httpx.InvalidURL, FetchError) as exc:
            raise DownloadFailedError(f"scrape: {request.url}: {exc}") from exc

    @staticmethod
    def _extract_headers(response: httpx.Response) -> Headers:
        return Headers(response.headers.multi_items())

    @staticmethod
    def _build_base_response_args(response: httpx.Response, request: Request, headers: Headers) -> _BaseResponseArgs:
        return {
            "status": response.status_code,
            "url": request.url,
            "headers": headers,
            "certificate": None,
            "ip_address": None,
            "protocol": response.http_version,
        }

    @staticmethod
    def _iter_body_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
        # Raw bytes: Scrapy's HttpCompressionMiddleware decodes them under DOWNLOAD_MAXSIZE.
        return response.aiter_raw()

    @staticmethod
    def _is_dataloss_exception(exc: Exception) -> bool:
        return isinstance(exc, httpx.RemoteProtocolError) and "without sending complete message body" in str(exc)

    async def close(self) -> None:
        await self._client.aclose()


# ---------------------------------------------------------------- spider


class _SiteSpider(scrapy.Spider):
    name = "newsray-site"

    def __init__(self, context: _Context, sitemap_urls: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context
        self._sitemap_urls = sitemap_urls
        self._sitemaps_pending = 0
        self._sitemaps_requested = 0
        self._listings_sent = False
        self._articles_seen: set[str] = set()  # canonical URLs already considered
        self._pages_budgeted = 0

    async def start(self) -> AsyncIterator[Request]:
        # Sitemaps first: the start pages are requested once every sitemap is
        # read, so sitemap articles (newest first) claim the max_pages budget.
        for request in self._sitemap_requests(self._sitemap_urls):
            yield request
        if not self._sitemaps_pending:
            for request in self._listing_requests():
                yield request

    # -- sitemaps

    def _sitemap_requests(self, urls: Iterable[str]) -> list[Request]:
        # A list, counted before any is handed over: a sitemap that finishes
        # while the others are still being yielded must not look like the last.
        requests = []
        for url in urls:
            if self._sitemaps_requested >= self.context.config.max_sitemaps:
                break
            self._sitemaps_requested += 1
            requests.append(
                Request(
                    url, callback=self._parse_sitemap, errback=self._sitemap_failed,
                    priority=_PRIORITY_SITEMAP, dont_filter=True,
                )
            )
        self._sitemaps_pending += len(requests)
        return requests

    def _sitemap_done(self) -> Iterator[Request]:
        self._sitemaps_pending -= 1
        if self._sitemaps_pending <= 0:
            yield from self._listing_requests()

    async def _parse_sitemap(self, response: Response) -> AsyncIterator[Request]:
        try:
            kind, entries = parse_sitemap(response.body, max_bytes=self.context.policy.max_bytes)
        except ScrapeError as exc:
            self.context.errors.append(f"scrape: {response.url}: {exc}")
            kind, entries = None, []
        entries = [e for e in _newest_first(entries) if self.context.site.same_site(e.loc)]
        if kind == "sitemapindex":
            for request in self._sitemap_requests(e.loc for e in entries):
                yield request
        elif kind == "urlset":
            for entry in entries:
                if entry.news or self.context.site.is_article(entry.loc):
                    article = await self._article_request(entry.loc)
                    if article is not None:
                        yield article
        for request in self._sitemap_done():
            yield request

    def _sitemap_failed(self, failure: Failure) -> Iterator[Request]:
        self._record_failure(failure, quiet_status=404)  # most sites have no /sitemap.xml
        yield from self._sitemap_done()

    # -- start pages

    def _listing_requests(self) -> Iterator[Request]:
        if self._listings_sent:
            return
        self._listings_sent = True
        for url in self.context.config.start_urls:
            yield Request(url, callback=self._parse_listing, errback=self._failed, priority=_PRIORITY_LISTING)

    async def _parse_listing(self, response: Response) -> AsyncIterator[Request]:
        if not isinstance(response, TextResponse) or not _is_html(response):
            return
        for href in response.css("a::attr(href)").getall():
            url = _absolute(response, href)
            if url is not None and self.context.site.is_article(url):
                article = await self._article_request(url)
                if article is not None:
                    yield article

    # -- articles

    async def _article_request(self, url: str) -> Request | None:
        key = _canonical(url)
        if key in self._articles_seen or self._pages_budgeted >= self.context.config.max_pages:
            return None
        self._articles_seen.add(key)
        self._pages_budgeted += 1  # reserved before the await, so concurrent callbacks cannot overshoot
        # Checked here as well as in the middleware (which sees every request,
        # redirects included) so that disallowed links do not use up the budget.
        if not await self.context.robots.allowed(url):
            self._pages_budgeted -= 1
            self.context.disallowed.append(url)
            return None
        return Request(url, callback=self._parse_article, errback=self._failed, priority=_PRIORITY_ARTICLE)

    async def _parse_article(self, response: Response) -> None:
        self.context.pages_fetched += 1
        if not isinstance(response, TextResponse) or not _is_html(response):
            self.context.errors.append(f"scrape: {response.url}: not an HTML page")
            return
        # trafilatura is CPU work (~10 ms a page): keep it off the actor's event loop.
        page = await asyncio.to_thread(_extract_page, response.text, response.url, self.context.config)
        if page is None:
            self.context.errors.append(f"scrape: {response.url}: no article text found")
            return
        entry, paywalled = page
        self.context.entries.append(entry)
        if paywalled:
            self.context.paywalled.add(entry.dedupe_key)

    # -- failures

    def _failed(self, failure: Failure) -> None:
        self._record_failure(failure)

    def _record_failure(self, failure: Failure, quiet_status: int | None = None) -> None:
        if failure.check(_Refused):
            return  # recorded by the guard
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        response = getattr(failure.value, "response", None)
        if response is not None:
            if response.status != quiet_status:
                self.context.errors.append(f"scrape: {url}: HTTP {response.status}")
            return
        self.context.errors.append(f"scrape: {url}: {type(failure.value).__name__}: {failure.value}")


def _is_html(response: TextResponse) -> bool:
    content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").split(";")[0].strip().lower()
    return not content_type or content_type in _HTML_TYPES


def _absolute(response: TextResponse, href: str) -> str | None:
    try:
        url = response.urljoin(href.strip())
    except ValueError:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


def _extract_page(text: str, url: str, config: SiteConfig) -> tuple[Entry, bool] | None:
    """One article page into an Entry (and whether it is paywalled); None when it holds no article."""
    extracted = extract_article(text, url)
    content, body_text = extracted.html, extracted.text
    title, author, published = extracted.title, extracted.author, extracted.published_at
    if config.title_css or config.body_css or config.date_css or config.author_css:
        selector = scrapy.Selector(text=text)
        title = _css_text(selector, config.title_css) or title
        author = _css_text(selector, config.author_css) or author
        if config.date_css:
            published = _css_date(selector, config.date_css) or published
        if config.body_css:
            fragment = "".join(selector.css(config.body_css).getall())
            if (css_html := sanitize_html(fragment, url)) is not None:
                content, body_text = css_html, plain_text(css_html)
    if not body_text:
        return None
    entry = Entry(
        guid=None,  # keyed by canonical URL, like feed entries without a guid
        url=url,
        canonical_url=extracted.canonical_url or _canonical(url),
        title=title or UNTITLED,
        author=author,
        summary=html_lib.escape(extracted.description) if extracted.description else None,
        content=content,
        published_at=published,
        language=extracted.language,
    )
    return entry, detect_paywall(text, body_text).paywalled


def _css_text(selector: scrapy.Selector, css: str | None) -> str | None:
    if not css:
        return None
    parts = [s.root if isinstance(s.root, str) else s.xpath("string()").get("") for s in selector.css(css)]
    joined = " ".join(" ".join(parts).split())
    return joined or None


def _css_date(selector: scrapy.Selector, css: str) -> datetime | None:
    for match in selector.css(css):
        if not isinstance(match.root, str):
            if (found := parse_datetime(match.attrib.get("datetime") or match.attrib.get("content"))) is not None:
                return found
        text = match.root if isinstance(match.root, str) else match.xpath("string()").get("")
        if (found := parse_datetime(text, lenient=True)) is not None:
            return found
    return None


# ---------------------------------------------------------------- running a crawl


def _settings(config: SiteConfig, policy: FetchPolicy, user_agent: str, delay_s: float) -> dict[str, Any]:
    return {
        "TWISTED_REACTOR_ENABLED": False,
        "USER_AGENT": user_agent,
        "ROBOTSTXT_OBEY": False,  # _GuardMiddleware obeys robots.txt (see the module docstring)
        # One request in the downloader at a time (a site is one or two hosts):
        # the rest wait in the scheduler, which a time budget or a cancellation
        # simply drops, instead of each being downloaded before the crawl closes.
        "CONCURRENT_REQUESTS": 1,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "DOWNLOAD_DELAY": delay_s,
        "DOWNLOAD_DELAY_JITTER": 0,  # jitter would go below the delay asked for (down to half)
        # First in, first out within a priority: sitemap entries are queued newest
        # first, and if the time budget runs out the newest are the ones kept.
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        "DOWNLOAD_TIMEOUT": policy.timeout_s,
        "DOWNLOAD_MAXSIZE": policy.max_bytes,  # also bounds decompression (HttpCompressionMiddleware)
        "DOWNLOAD_WARNSIZE": 0,
        "REDIRECT_MAX_TIMES": policy.max_redirects,
        "RETRY_TIMES": 1,
        "COOKIES_ENABLED": False,  # also keeps metered paywalls from counting us
        "HTTPPROXY_ENABLED": False,  # a proxy would make the address guard meaningless
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # Scrapy 2.19's code-executing HTTP server
        "MEMUSAGE_ENABLED": False,
        "LOGSTATS_INTERVAL": 0,
        "STATS_DUMP": False,
        "CLOSESPIDER_TIMEOUT": config.time_budget_s,
        "DOWNLOAD_HANDLERS": {
            "http": f"{__name__}._GuardedDownloadHandler",
            "https": f"{__name__}._GuardedDownloadHandler",
        },
        "DOWNLOADER_MIDDLEWARES": {
            f"{__name__}._GuardMiddleware": 10,  # before everything, so nothing is sent for a refused URL
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,  # _GuardMiddleware decides
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
        },
    }


async def scrape_site_report(
    config: SiteConfig,
    policy: FetchPolicy,
    user_agent: str,
    *,
    robots: RobotsCache | None = None,
    resolver: Resolver | None = None,
) -> SiteScrape:
    """Crawl one site once and report everything it produced.

    ``robots`` is the actor's shared cache (one is made for this call when
    None; it must use the same policy). ``resolver`` replaces DNS for the
    address guard and the connections (tests map names to loopback).
    Raises :class:`ScrapeError` only when the crawl cannot run at all.
    """
    if is_reactor_installed():
        raise ScrapeError("a Twisted reactor is installed in this process; reactorless Scrapy cannot run here")
    client = None
    if robots is None:
        client = make_client(policy, resolver=resolver)
        robots = RobotsCache(client, policy, user_agent=user_agent, resolver=resolver)
    try:
        site = _SitePolicy(config)
        delay_s, sitemap_urls = await _discover(config, robots, site)
        context = _Context(config=config, policy=policy, resolver=resolver, robots=robots, site=site, delay_s=delay_s)
        runner = AsyncCrawlerRunner(_settings(config, policy, user_agent, delay_s))
        crawler = runner.create_crawler(_SiteSpider)
        crawl = runner.crawl(crawler, context=context, sitemap_urls=sitemap_urls)
        try:
            # Shielded so that a cancelled caller (an actor call cancelled or
            # timed out) stops the crawl through Scrapy, which closes the
            # spider and its connections, instead of killing it mid-step.
            await asyncio.shield(crawl)
        except asyncio.CancelledError:
            await runner.stop()
            await asyncio.wait([crawl])
            raise
        reason = str(crawler.stats.get_value("finish_reason", "finished"))
    finally:
        if client is not None:
            await client.aclose()
    return SiteScrape(
        entries=list(context.entries),
        paywalled=frozenset(context.paywalled),
        pages_fetched=context.pages_fetched,
        delay_s=delay_s,
        refused=tuple(context.refused),
        disallowed=tuple(context.disallowed),
        errors=tuple(context.errors),
        close_reason=reason,
    )


async def scrape_site(
    config: SiteConfig,
    policy: FetchPolicy,
    user_agent: str,
    *,
    robots: RobotsCache | None = None,
    resolver: Resolver | None = None,
) -> list[Entry]:
    """Crawl one site once; its articles as feed-style entries (see :func:`scrape_site_report`)."""
    return (await scrape_site_report(config, policy, user_agent, robots=robots, resolver=resolver)).entries


async def _discover(config: SiteConfig, robots: RobotsCache, site: _SitePolicy) -> tuple[float, list[str]]:
    """The delay to use and the sitemap URLs to read, from each start origin's robots.txt."""
    delay = config.download_delay_s
    sitemaps: list[str] = []
    for origin in dict.fromkeys(origin_of(u) for u in config.start_urls):
        crawl_delay = await robots.crawl_delay(origin + "/")
        if crawl_delay is not None:
            delay = max(delay, min(crawl_delay, MAX_CRAWL_DELAY_S))
        if config.use_sitemaps:
            listed = [u for u in await robots.sitemaps(origin + "/") if site.same_site(u)]
            sitemaps.extend(listed or [origin + "/sitemap.xml"])
    return delay, list(dict.fromkeys(sitemaps))
