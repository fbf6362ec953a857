"""crawl_source against the real database and real HTTP servers on 127.0.0.1 (no Ray)."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_async

from actors.announce import Announcer
from actors.crawl import DISABLE_AFTER_ERRORS, NotModifiedBatch, crawl_source
from cluster import keys
from cluster.db import create_pool
from cluster.samplefeeds import SampleFeedServer
from cluster.store import articles as article_store
from cluster.store import sources as source_store
from cluster.store.sources import NewSource, Source
from tests.actors.conftest import LOOPBACK_POLICY as POLICY

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>http://127.0.0.1/</link>
<item><guid>a</guid><title>First</title><link>http://127.0.0.1/a</link><description>one</description></item>
<item><guid>b</guid><title>Second</title><link>http://127.0.0.1/b</link><description>two</description></item>
</channel></rss>"""


async def add(db: asyncpg.Pool, url: str) -> Source:
    source, _ = await source_store.add_source(db, NewSource(url=url))
    return source


async def test_sample_feeds_are_stored_once_however_often_crawled(
    db: asyncpg.Pool, client: httpx.AsyncClient, sample_server: SampleFeedServer
) -> None:
    sources = [await add(db, url) for url in sample_server.feed_urls]
    first = [await crawl_source(client, db, s, POLICY) for s in sources]
    assert all(o.ok for o in first), [o.error for o in first if not o.ok]
    total = sum(o.inserted for o in first)
    assert total >= 120
    assert await article_store.count_articles(db) == total
    for _ in range(2):
        # Fresh rows from the store: their ETags make the server answer 304.
        again = [await crawl_source(client, db, await source_store.get_source(db, s.id), POLICY) for s in sources]
        assert all(o.ok and o.not_modified for o in again)
    # Without ETags the feeds are parsed again and every entry is found unchanged.
    for s in sources:
        refetched = await crawl_source(client, db, s, POLICY)
        assert refetched.ok and refetched.inserted == 0 and refetched.updated == 0 and refetched.unchanged > 0
    assert await article_store.count_articles(db) == total
    healthy = await source_store.get_source(db, sources[0].id)
    assert healthy is not None and healthy.last_status in (200, 304) and healthy.consecutive_errors == 0
    assert healthy.articles_added == first[0].inserted and healthy.title


async def test_not_modified_answers_are_written_together_at_flush(
    db: asyncpg.Pool, client: httpx.AsyncClient, sample_server: SampleFeedServer
) -> None:
    sources = [await add(db, url) for url in sample_server.feed_urls[:3]]
    for source in sources:
        assert (await crawl_source(client, db, source, POLICY)).ok
    batch = NotModifiedBatch()
    for source in sources:
        current = await source_store.get_source(db, source.id)
        assert current is not None and current.last_status == 200
        outcome = await crawl_source(client, db, current, POLICY, not_modified=batch)
        assert outcome.ok and outcome.not_modified
        unchanged = await source_store.get_source(db, source.id)
        assert unchanged is not None and unchanged.last_status == 200  # not written yet
    await batch.flush(db)
    for source in sources:
        row = await source_store.get_source(db, source.id)
        assert row is not None and row.last_status == 304 and row.consecutive_errors == 0
    assert batch.pending == []


async def test_concurrent_crawls_share_a_single_connection(
    db: asyncpg.Pool, database_url: str, client: httpx.AsyncClient, sample_server: SampleFeedServer, server
) -> None:
    # A crawler actor's crawls run at once over crawl_db_connections connections, by default
    # one: they queue for it, and none may hold it while waiting for another (a deadlock).
    sources = [await add(db, url) for url in sample_server.feed_urls]
    missing = await add(db, server.url("/missing.xml"))  # its failure is written through it too
    single = await create_pool(database_url, min_size=1, max_size=1, stateless=True)
    try:
        first = await asyncio.wait_for(
            asyncio.gather(*(crawl_source(client, single, s, POLICY) for s in [*sources, missing])), 60)
        batch = NotModifiedBatch()
        current = [await source_store.get_source(db, s.id) for s in sources]
        again = await asyncio.wait_for(asyncio.gather(
            *(crawl_source(client, single, s, POLICY, not_modified=batch) for s in current if s is not None)), 60)
        await batch.flush(single)
    finally:
        await single.close()
    assert all(o.ok for o in first[:-1]), [o.error for o in first if not o.ok]
    assert not first[-1].ok and first[-1].error_kind == "http_status"
    total = sum(o.inserted for o in first)
    assert total >= 120 and await article_store.count_articles(db) == total
    assert len(again) == len(sources) and all(o.ok and o.not_modified for o in again)
    for source in sources:
        row = await source_store.get_source(db, source.id)
        assert row is not None and row.last_status == 304 and row.consecutive_errors == 0
    failed = await source_store.get_source(db, missing.id)
    assert failed is not None and failed.last_status == 404 and failed.consecutive_errors == 1


async def test_changed_entry_is_updated_not_duplicated(db: asyncpg.Pool, client: httpx.AsyncClient, server) -> None:
    url = server.reply("/feed.xml", RSS, headers={"Content-Type": "application/rss+xml"})
    source = await add(db, url)
    assert (await crawl_source(client, db, source, POLICY)).inserted == 2
    server.reply("/feed.xml", RSS.replace(b"<title>First</title>", b"<title>First, corrected</title>"),
                 headers={"Content-Type": "application/rss+xml"})
    outcome = await crawl_source(client, db, source, POLICY)
    assert (outcome.inserted, outcome.updated, outcome.unchanged) == (0, 1, 1)
    page = await article_store.list_articles(db, article_store.ArticleFilter(source_id=source.id))
    assert sorted(a.title for a in page.articles) == ["First, corrected", "Second"]


@pytest.mark.parametrize(
    ("route", "kind"),
    [
        ("missing", "http_status"),
        ("malformed", "parse"),
        ("html", "parse"),
        ("refused", "connect"),
    ],
)
async def test_bad_source_is_recorded_and_others_still_crawl(
    db: asyncpg.Pool, client: httpx.AsyncClient, server, closed_port: int, route: str, kind: str
) -> None:
    good = await add(db, server.reply("/good.xml", RSS, headers={"Content-Type": "application/rss+xml"}))
    bad_urls = {
        "missing": server.url("/gone.xml"),  # the test server answers 404
        "malformed": server.reply("/bad.xml", b"<rss><channel><title>x</title><item><title>oops",
                                  headers={"Content-Type": "application/rss+xml"}),
        "html": server.reply("/page.html", b"<!doctype html><html><body><p>Hello</p></body></html>",
                             headers={"Content-Type": "text/html"}),
        "refused": f"http://127.0.0.1:{closed_port}/feed.xml",
    }
    bad = await add(db, bad_urls[route])
    bad_outcome = await crawl_source(client, db, bad, POLICY)
    good_outcome = await crawl_source(client, db, good, POLICY)
    assert not bad_outcome.ok and bad_outcome.error_kind == kind
    assert good_outcome.ok and good_outcome.inserted == 2
    row = await source_store.get_source(db, bad.id)
    assert row is not None
    assert row.consecutive_errors == 1 and row.error_count == 1 and row.enabled
    assert row.last_error and row.last_error.startswith(("fetch: ", "parse: ")) and row.last_error_at is not None
    if route == "missing":
        assert row.last_status == 404


async def test_source_is_disabled_after_repeated_failures(db: asyncpg.Pool, client: httpx.AsyncClient, server) -> None:
    source = await add(db, server.url("/nothing.xml"))
    for _ in range(DISABLE_AFTER_ERRORS):
        current = await source_store.get_source(db, source.id)
        assert current is not None and current.enabled
        await crawl_source(client, db, current, POLICY)
    final = await source_store.get_source(db, source.id)
    assert final is not None and not final.enabled and final.consecutive_errors == DISABLE_AFTER_ERRORS
    assert await source_store.set_enabled(db, source.id, True)
    revived = await source_store.get_source(db, source.id)
    assert revived is not None and revived.enabled and revived.consecutive_errors == 0


async def test_410_gone_disables_the_source_at_once(db: asyncpg.Pool, client: httpx.AsyncClient, server) -> None:
    source = await add(db, server.reply("/retired.xml", b"gone for good", status=410,
                                        headers={"Content-Type": "text/plain"}))
    outcome = await crawl_source(client, db, source, POLICY)
    assert not outcome.ok and outcome.status == 410 and outcome.error_kind == "http_status"
    row = await source_store.get_source(db, source.id)
    # One failure, not DISABLE_AFTER_ERRORS of them: the publisher said the feed is gone.
    assert row is not None and not row.enabled and row.consecutive_errors == 1
    assert row.last_status == 410 and row.last_error is not None and "410 Gone" in row.last_error
    claimed = await source_store.claim_due_sources(db, None, force=True)
    assert source.id not in {s.id for s in claimed}


async def test_new_articles_are_announced_on_redis_in_one_batch(db: asyncpg.Pool, client: httpx.AsyncClient, server,
                                                                redis_url: str) -> None:
    listener = redis_async.from_url(redis_url)
    publisher = redis_async.from_url(redis_url)
    pubsub = listener.pubsub()
    try:
        await pubsub.subscribe(keys.CHANNEL_NEW_ARTICLES)
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"
        announcer = Announcer(publisher, delay_s=0.05)
        sources = [await add(db, server.reply(f"/announced{i}.xml", RSS)) for i in range(3)]
        for source in sources:
            assert (await crawl_source(client, db, source, POLICY, announcer)).inserted == 2
        for source in sources:  # nothing new: nothing announced
            current = await source_store.get_source(db, source.id)
            assert (await crawl_source(client, db, current, POLICY, announcer)).inserted == 0
        received: list[dict[str, object]] = []
        deadline = time.monotonic() + 10
        while len(received) < 3 and time.monotonic() < deadline:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                received.append(json.loads(message["data"]))
        await announcer.flush()
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None  # nothing more
        expected = []
        for source in sources:
            ids = await db.fetch("SELECT id FROM articles WHERE source_id = $1", source.id)
            expected.append({"source_id": source.id, "ids": sorted(str(row["id"]) for row in ids)})
        assert sorted(({**m, "ids": sorted(m["ids"])} for m in received), key=lambda m: m["source_id"]) == expected
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await publisher.aclose()


async def test_a_redis_failure_does_not_fail_the_crawl(db: asyncpg.Pool, client: httpx.AsyncClient, server,
                                                       closed_port: int, caplog: pytest.LogCaptureFixture) -> None:
    unreachable = redis_async.from_url(f"redis://127.0.0.1:{closed_port}", socket_connect_timeout=1)
    announcer = Announcer(unreachable, delay_s=30)  # flushed below, not by its timer
    source = await add(db, server.reply("/unannounced.xml", RSS))
    outcome = await crawl_source(client, db, source, POLICY, announcer)
    assert outcome.ok and outcome.inserted == 2
    await announcer.flush()  # logs, never raises
    assert "could not announce new articles of 1 feed(s)" in caplog.text
    assert await article_store.count_articles(db, source.id) == 2
    await unreachable.aclose()
