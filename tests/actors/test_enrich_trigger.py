"""Incremental enrichment from the running cluster: the crawl scheduler's trigger starts
micro-batches on the enrichment worker (real Ray, PostgreSQL and model), records failures
where operators see them and retries after a pause."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import asyncpg
import ray

from actors.enrich_trigger import ERROR_METHOD, ERROR_PATH, EnrichTrigger
from actors.scheduler import CrawlScheduler
from cluster.store import articles as article_store
from cluster.store import sources as source_store
from cluster.store.sources import NewSource
from jobs.enrichment.config import PIPELINE_VERSION
from jobs.enrichment.embed import DEFAULT_MODEL_LABEL
from tests.polling import poll, poll_for

# The promise: an article is enriched within 60 s of being stored.
ENRICHED_WITHIN_S = 60.0
FEEDS, ITEMS = 2, 4

PARAGRAPH = ("The city council approved the new budget for schools and public transport on {day}, after a "
             "debate that lasted most of the night. Officials said the plan would take effect next spring, "
             "while the opposition called for an independent review of the costs. ")


def rss(base: str, name: str, items: range) -> bytes:
    """A feed whose items carry their whole text (no full-content pass needed)."""
    entries = "".join(
        f"<item><guid>{name}-{i}</guid><title>{name} council story number {i}</title>"
        f"<link>{base}/{name}/{i}</link><pubDate>Mon, 0{i + 1} Jan 2024 10:00:00 GMT</pubDate>"
        f"<description><![CDATA[<p>{PARAGRAPH.format(day=f'day {i}') * 3}</p>]]></description></item>"
        for i in items)
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
            f"<link>{base}/{name}</link>{entries}</channel></rss>").encode()


async def enriched(db: asyncpg.Pool) -> dict[uuid.UUID, datetime]:
    """Articles with a row of the current model and pipeline → when they were enriched."""
    rows = await db.fetch("SELECT article_id, enriched_at FROM article_enrichment WHERE model_version = $1 "
                          "AND pipeline_version = $2", DEFAULT_MODEL_LABEL, PIPELINE_VERSION)
    return {row["article_id"]: row["enriched_at"] for row in rows}


async def wait_until_enriched(db: asyncpg.Pool, expected: set[uuid.UUID], stored_at: float) -> dict[uuid.UUID, datetime]:
    done: dict[uuid.UUID, datetime] = {}
    while set(done) != expected:
        assert time.monotonic() - stored_at < ENRICHED_WITHIN_S, \
            f"{len(expected - set(done))} of {len(expected)} articles not enriched within {ENRICHED_WITHIN_S:.0f} s"
        await asyncio.sleep(0.2)  # polling interval under the deadline
        done = await enriched(db)
    return done


async def settled_enrich_info(scheduler: Any) -> dict[str, Any]:
    """The scheduler's enrichment counters once its micro-batch has finished: the rows are
    visible before the batch reports back to the scheduler and its counters move."""
    async def enrich_info() -> dict[str, Any]:
        return dict((await scheduler.info.remote())["enrich"])

    return await poll_for(enrich_info, lambda info: not info["running"], "the micro-batch to report back",
                          ENRICHED_WITHIN_S)


async def test_the_scheduler_enriches_what_rounds_and_pushes_store(ray_cluster: str, db: asyncpg.Pool, server) -> None:
    urls = [server.reply(f"/feed{n}.xml", rss(server.base_url, f"feed{n}", range(ITEMS)),
                         headers={"Content-Type": "application/rss+xml"}) for n in range(FEEDS)]
    await source_store.add_sources(db, [NewSource(url=u) for u in urls])
    # A private scheduler without its periodic loop (ticks would blur what each step started),
    # with enrichment on (the test session turns it off for the other crawl tests).
    scheduler = CrawlScheduler.options(name=f"test-scheduler-{uuid.uuid4().hex[:8]}").remote(
        2, 3600.0, 1, 0.0, True)
    try:
        first = await scheduler.run_round.remote(False)
        stored_at = time.monotonic()
        assert (first["total"], first["failed"], first["inserted"]) == (FEEDS, 0, FEEDS * ITEMS)
        ids = {row["id"] for row in await db.fetch("SELECT id FROM articles")}
        assert len(ids) == FEEDS * ITEMS
        done = await wait_until_enriched(db, ids, stored_at)
        assert len(done) == FEEDS * ITEMS
        info = await settled_enrich_info(scheduler)
        assert (info["enabled"], info["batches"], info["written"], info["failures"]) == (True, 1, FEEDS * ITEMS, 0)

        # A round that stores nothing new starts no micro-batch, and no row is written again.
        again = await scheduler.run_round.remote(True)
        assert (again["total"], again["inserted"], again["updated"]) == (FEEDS, 0, 0)
        info = (await scheduler.info.remote())["enrich"]
        assert (info["running"], info["batches"], info["written"]) == (False, 1, FEEDS * ITEMS)
        assert await enriched(db) == done

        # A WebSub push with one new entry is enriched too, and only that entry.
        source = next(s for s in await source_store.list_sources(db) if s.url == urls[0])
        pushed = await scheduler.ingest.remote(source.id, rss(server.base_url, "feed0", range(ITEMS + 1)),
                                               "application/rss+xml")
        stored_at = time.monotonic()
        assert pushed["inserted"] == 1
        ids = {row["id"] for row in await db.fetch("SELECT id FROM articles")}
        final = await wait_until_enriched(db, ids, stored_at)
        assert len(final) == FEEDS * ITEMS + 1
        assert all(final[article] == when for article, when in done.items())  # nothing redone
        info = await settled_enrich_info(scheduler)
        assert (info["batches"], info["written"]) == (2, FEEDS * ITEMS + 1)
    finally:
        ray.kill(scheduler)  # the worker it owns goes with it


async def test_a_failed_micro_batch_is_recorded_and_retried_after_a_pause(ray_cluster: str, db: asyncpg.Pool) -> None:
    source, _ = await source_store.add_source(db, NewSource(url="http://127.0.0.1:9/feed.xml"))
    await article_store.upsert_articles(db, source.id, [article_store.ArticleInput(
        dedupe_key="a", guid="a", url="http://127.0.0.1:9/a", title="Parliament passes the budget",
        summary="Parliament passed the budget.", content="<p>Parliament passed the budget on Monday.</p>",
        published_at=datetime(2024, 1, 1, tzinfo=timezone.utc))])
    last_error_id = await db.fetchval("SELECT coalesce(max(id), 0) FROM error_logs")
    off = EnrichTrigger(False, 10)
    off.stored(5)  # switched off: stored articles start nothing
    assert not off.running

    # A worker that cannot start its stages (its topic catalog is missing) fails every batch.
    trigger = EnrichTrigger(True, 10, worker_options={"topics_file": Path("/nonexistent/topics.json")},
                            backoff_base_s=3.0, backoff_max_s=12.0)
    trigger.stored(1)
    assert trigger.running
    await poll(lambda: trigger.info()["failures"] == 1 and not trigger.running, "the first failure")
    state = trigger.info()
    assert state["last_error"].startswith("ValueError: enrich: cannot read topic catalog /nonexistent/topics.json")
    assert 0 < state["retry_in_s"] <= 3.0
    trigger.tick()  # within the pause: no new attempt
    trigger.stored(1)
    assert not trigger.running and trigger.info()["failures"] == 1

    def retried() -> bool:
        trigger.tick()  # the scheduler's tick, after the pause
        return trigger.info()["failures"] == 2 and not trigger.running

    await poll(retried, "the retry after the pause")
    assert 3.0 < trigger.info()["retry_in_s"] <= 6.0  # the pause doubled
    rows = await db.fetch("SELECT method, path, status, error_type, message FROM error_logs WHERE id > $1 ORDER BY id",
                          last_error_id)
    assert [(r["method"], r["path"], r["status"], r["error_type"]) for r in rows] == \
        [(ERROR_METHOD, ERROR_PATH, 500, "builtins.ValueError")] * 2
    assert "cannot read topic catalog" in rows[0]["message"]
    assert await db.fetchval("SELECT count(*) FROM article_enrichment") == 0
