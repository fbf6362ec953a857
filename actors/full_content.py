"""The second pass of a crawl: fetch the pages of teaser-only articles and keep their full text.

Runs in the source's host lane after the feeds of that host, so feed entries are stored (and
visible) first, robots.txt is obeyed, and the host still sees one request at a time with a pause.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg
import httpx

from actors.extract import ExtractError, detect_paywall, extract_article, improves_on, needs_full_content, plain_text
from actors.fetch import FetchError, FetchPolicy, fetch
from actors.robots import RobotsCache
from cluster.db import retry_on_disconnect
from cluster.store import articles as article_store
from cluster.store.articles import FullContentCandidate

log = logging.getLogger(__name__)

PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"
# Pages looked at per source and round: bounds a round's length; the rest come next round.
PAGES_PER_ROUND = 10


@dataclass(frozen=True, slots=True)
class FullContentReport:
    looked_at: int = 0
    fetched: int = 0
    improved: int = 0
    paywalled: int = 0
    disallowed: int = 0
    failed: int = 0


async def fetch_full_contents(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    source_id: int,
    policy: FetchPolicy,
    robots: RobotsCache,
    *,
    delay_s: float = 0.0,
    limit: int = PAGES_PER_ROUND,
) -> FullContentReport:
    candidates = await retry_on_disconnect(lambda: article_store.missing_full_content(pool, source_id, limit))
    counts = dict(looked_at=0, fetched=0, improved=0, paywalled=0, disallowed=0, failed=0)
    for candidate in candidates:
        counts["looked_at"] += 1
        if not needs_full_content(candidate.summary, candidate.content):
            await _record(pool, candidate, html=None, text=None, paywalled=False)
            continue
        if not await robots.allowed(candidate.url):
            counts["disallowed"] += 1
            await _record(pool, candidate, html=None, text=None, paywalled=False)
            continue
        if delay_s > 0:
            # Politeness: the lane's last request (or the robots.txt fetch just made) was to
            # this host too.
            await asyncio.sleep(delay_s)
        outcome = await _look_at(client, pool, candidate, policy)
        if outcome != "fetched_only":
            counts[outcome] += 1
        counts["fetched"] += outcome != "failed"
    return FullContentReport(**counts)


async def _look_at(client: httpx.AsyncClient, pool: asyncpg.Pool, candidate: FullContentCandidate,
                   policy: FetchPolicy) -> str:
    try:
        page = await fetch(client, candidate.url, policy, accept=PAGE_ACCEPT)
        extracted = extract_article(page.body, page.url, encoding=page.encoding)
    except (FetchError, ExtractError) as exc:
        log.info("full content: %s: %s", candidate.url, exc)
        await _record(pool, candidate, html=None, text=None, paywalled=False)
        return "failed"
    feed_html = candidate.content or candidate.summary
    verdict = detect_paywall(page.body, extracted.text, plain_text(feed_html), encoding=page.encoding)
    if verdict.paywalled:
        # The page holds a teaser or a subscription prompt: keep what the feed gave.
        await _record(pool, candidate, html=None, text=None, paywalled=True, canonical=extracted.canonical_url)
        return "paywalled"
    if improves_on(extracted, feed_html):
        await _record(pool, candidate, html=extracted.html, text=extracted.text, paywalled=False,
                      canonical=extracted.canonical_url)
        return "improved"
    await _record(pool, candidate, html=None, text=None, paywalled=False, canonical=extracted.canonical_url)
    return "fetched_only"


async def _record(pool: asyncpg.Pool, candidate: FullContentCandidate, *, html: str | None, text: str | None,
                  paywalled: bool, canonical: str | None = None) -> None:
    await retry_on_disconnect(lambda: article_store.set_full_content(
        pool, candidate.id, html=html, text=text, paywalled=paywalled, canonical_url=canonical))
