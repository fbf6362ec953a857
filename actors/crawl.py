"""One source, crawled once: fetch, parse, store, record the outcome. Runs without Ray.

The crawler actor calls this for each source it is given; tests call it directly. Whatever
goes wrong with one source ends up on that source's row (where `newsray sources list` and
`GET /api/v1/sources` show it) and never escapes to stop the others.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone

import asyncpg
import httpx

from actors.announce import Announcer
from actors.fetch import FetchError, FetchPolicy, fetch
from actors.parse import Entry, ParseError, parse_feed
from actors.robots import RobotsCache
from actors.schedule_policy import (
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    PublisherHints,
    backoff_interval_s,
    cache_max_age_s,
    learned_interval_s,
    next_interval_s,
)
from actors.site_scraper import ScrapeError, SiteConfig, SiteScrape, scrape_site_report
from actors.store_batch import FeedStoreBatcher, store_now
from actors.websub import WebSubError, needs_subscription, subscribe
from cluster.db import retry_on_disconnect
from cluster.settings import Settings
from cluster.store import articles as article_store
from cluster.store import sources as source_store
from cluster.store.sources import Source

log = logging.getLogger(__name__)

# After this many failures in a row a source stops being crawled until an operator enables it.
DISABLE_AFTER_ERRORS = 10


@dataclass(frozen=True, slots=True)
class CrawlOutcome:
    source_id: int
    ok: bool
    status: int | None
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    not_modified: bool = False
    wants_pages: bool = False  # new articles that may be teasers: the full-content pass follows
    error: str | None = None
    error_kind: str | None = None
    elapsed_s: float = 0.0
    bytes: int = 0
    parse_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        # Every field is a scalar: no need for dataclasses.asdict's recursive copy, which cost
        # as much as the rest of a 304's bookkeeping in the crawler.
        return {name: getattr(self, name) for name in _OUTCOME_FIELDS}


_OUTCOME_FIELDS = tuple(f.name for f in fields(CrawlOutcome))


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        timeout_s=settings.fetch_timeout_s,
        user_agent=settings.user_agent,
        allowed_networks=settings.allowed_networks,
    )


def to_article_input(entry: Entry) -> article_store.ArticleInput:
    return article_store.ArticleInput(
        dedupe_key=entry.dedupe_key,
        title=entry.title,
        guid=entry.guid,
        url=entry.url,
        canonical_url=entry.canonical_url,
        author=entry.author,
        summary=entry.summary,
        content=entry.content,
        published_at=entry.published_at,
        language=entry.language,
        categories=entry.categories,
    )


class NotModifiedBatch:
    """304 answers whose rows are written together, in one statement, by :meth:`flush`.

    A refresh round is mostly 304s, and an UPDATE per source was a PostgreSQL round trip per feed.
    Until the flush a source keeps its claim lease, so a crawler that dies first only means the
    source is fetched again when the lease ends.
    """

    def __init__(self) -> None:
        self.pending: list[source_store.NotModified] = []

    def add(self, source_id: int, status: int, next_fetch_in_s: float) -> None:
        self.pending.append(source_store.NotModified(source_id, status, next_fetch_in_s))

    async def flush(self, pool: asyncpg.Pool) -> None:
        pending, self.pending = self.pending, []
        if pending:
            await retry_on_disconnect(lambda: source_store.record_not_modified(pool, pending))


async def crawl_source(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    source: Source,
    policy: FetchPolicy,
    announcer: Announcer | None = None,
    default_interval_s: float | None = None,
    public_url: str | None = None,
    full_content: bool = True,
    not_modified: NotModifiedBatch | None = None,
    stores: FeedStoreBatcher | None = None,
) -> CrawlOutcome:
    """Crawl one source and record what happened on its row; never raises for the source's faults.

    Database errors do raise: the source's claim lease then brings it back in a later round,
    so a restarted database delays the crawl and loses nothing. With ``not_modified`` a 304 is
    recorded there, for the caller to flush, instead of on the row at once; with ``stores`` the
    feed is stored together with the other feeds its crawler fetched meanwhile.
    """
    started = time.monotonic()
    default_s = float(default_interval_s or source.interval_s)
    try:
        result = await fetch(client, source.url, policy, etag=source.etag, last_modified=source.last_modified)
        hints = PublisherHints(cache_max_age_s=cache_max_age_s(result.headers.get("cache-control")))
        if result.permanent_redirect_to:
            await source_store.move_source(pool, source.id, result.permanent_redirect_to)
        if result.not_modified:
            next_s = next_interval_s(default_s=source.interval_s, hints=hints)
            if not_modified is not None:
                not_modified.add(source.id, result.status, next_s)
            else:
                await source_store.record_success(pool, source.id, status=result.status, next_fetch_in_s=next_s)
            return CrawlOutcome(source.id, True, result.status, not_modified=True, elapsed_s=time.monotonic() - started,
                                bytes=0)
        parse_started = time.monotonic()
        feed = parse_feed(result.body, result.url, result.content_type, result.headers)
        parse_s = time.monotonic() - parse_started
        items = [to_article_input(entry) for entry in feed.entries]
        hints = PublisherHints(ttl_minutes=feed.ttl_minutes, update_period_minutes=feed.update_period_minutes,
                               cache_max_age_s=hints.cache_max_age_s)
        entry_dates = [e.published_at for e in feed.entries if e.published_at]
        learned = learned_interval_s(entry_dates, default_s)
        success = source_store.Success(
            status=result.status, next_fetch_in_s=next_interval_s(default_s=default_s, entry_dates=entry_dates,
                                                                  hints=hints),
            etag=result.etag, last_modified=result.last_modified, title=feed.title, site_url=feed.site_url,
            language=feed.language, interval_s=min(max(learned, MIN_INTERVAL_S), MAX_INTERVAL_S),
        )
        # One statement stores the entries and records the success (with ``stores``, together with the
        # other feeds its crawler fetched meanwhile): one round trip, one commit.
        write = article_store.FeedWrite(source.id, items, success)
        stored = await (stores.store(pool, write) if stores is not None else store_now(pool, write))
    except (FetchError, ParseError) as exc:
        status = exc.status if isinstance(exc, FetchError) else None
        kind = exc.kind if isinstance(exc, FetchError) else "parse"
        retry_after = exc.retry_after_s if isinstance(exc, FetchError) else None
        updated = await source_store.record_failure(
            pool, source.id, error=str(exc), status=status,
            next_fetch_in_s=backoff_interval_s(default_s=source.interval_s,
                                               consecutive_errors=source.consecutive_errors,
                                               retry_after_s=retry_after),
            disable_after=DISABLE_AFTER_ERRORS,
        )
        if status == 410 and updated is not None and updated.enabled:
            # Gone is the publisher saying so: stop at once instead of backing off ten times.
            await source_store.disable_source(pool, source.id, f"{exc} (disabled: 410 Gone)")
        return CrawlOutcome(source.id, False, status, error=str(exc), error_kind=kind,
                            elapsed_s=time.monotonic() - started)
    if stored.inserted and announcer is not None:
        announcer.add(source.id, stored.inserted)
    if feed.hub_url and public_url and needs_subscription(source, feed.hub_url):
        try:
            await subscribe(client, pool, source, feed.hub_url, source.url, public_url, policy)
        except WebSubError as exc:  # push is a bonus: polling goes on regardless
            log.warning("crawl: source %s: %s", source.id, exc)
    return CrawlOutcome(
        source.id, True, result.status, inserted=len(stored.inserted), updated=len(stored.updated),
        unchanged=stored.unchanged, elapsed_s=time.monotonic() - started, bytes=len(result.body), parse_s=parse_s,
        wants_pages=bool(stored.inserted) and source.fetch_full_content and full_content,
    )


async def crawl_site(
    pool: asyncpg.Pool,
    source: Source,
    policy: FetchPolicy,
    user_agent: str,
    robots: RobotsCache,
    announcer: Announcer | None = None,
) -> CrawlOutcome:
    """A source of kind `site`: scrape its pages with Scrapy, store them like feed entries."""
    started = time.monotonic()
    report: SiteScrape | None = None
    error: str | None
    try:
        config = SiteConfig.from_mapping(source.scrape_config or {"start_urls": [source.url]})
        scraped = await scrape_site_report(config, policy, user_agent, robots=robots)
    except (ValueError, ScrapeError) as exc:
        error = str(exc) if str(exc).startswith("scrape: ") else f"scrape: {exc}"
    else:
        report = scraped
        error = None if scraped.entries or not scraped.errors else scraped.errors[0]
    if report is None or error is not None:
        await retry_on_disconnect(lambda: source_store.record_failure(
            pool, source.id, error=error or "scrape: nothing found", status=None,
            next_fetch_in_s=backoff_interval_s(default_s=source.interval_s,
                                               consecutive_errors=source.consecutive_errors),
            disable_after=DISABLE_AFTER_ERRORS))
        return CrawlOutcome(source.id, False, None, error=error, error_kind="scrape",
                            elapsed_s=time.monotonic() - started)
    items = [to_article_input(entry) for entry in report.entries]
    stored = await retry_on_disconnect(
        lambda: article_store.upsert_articles(pool, source.id, items, now=datetime.now(timezone.utc)))
    await retry_on_disconnect(lambda: article_store.mark_scraped(
        pool, source.id, [i.dedupe_key for i in items], sorted(report.paywalled)))
    next_s = next_interval_s(default_s=source.interval_s,
                             entry_dates=[e.published_at for e in report.entries if e.published_at])
    await retry_on_disconnect(lambda: source_store.record_success(
        pool, source.id, status=200, next_fetch_in_s=next_s, articles_added=len(stored.inserted)))
    if stored.inserted and announcer is not None:
        announcer.add(source.id, stored.inserted)
    return CrawlOutcome(source.id, True, 200, inserted=len(stored.inserted), updated=len(stored.updated),
                        unchanged=stored.unchanged, elapsed_s=time.monotonic() - started)


async def ingest_push(
    pool: asyncpg.Pool, source: Source, body: bytes, content_type: str | None, announcer: Announcer | None = None
) -> CrawlOutcome:
    """Store entries a WebSub hub pushed (signature already checked by the Api)."""
    started = time.monotonic()
    try:
        feed = parse_feed(body, source.url, content_type)
    except ParseError as exc:
        return CrawlOutcome(source.id, False, None, error=str(exc), error_kind="parse")
    items = [to_article_input(entry) for entry in feed.entries]
    stored = await retry_on_disconnect(
        lambda: article_store.upsert_articles(pool, source.id, items, now=datetime.now(timezone.utc)))
    if stored.inserted and announcer is not None:
        announcer.add(source.id, stored.inserted)
    return CrawlOutcome(source.id, True, None, inserted=len(stored.inserted), updated=len(stored.updated),
                        unchanged=stored.unchanged, elapsed_s=time.monotonic() - started, bytes=len(body))
