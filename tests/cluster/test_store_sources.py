"""cluster.store.sources: adding, claiming due sources without double hand-outs, recording outcomes."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import pytest

from cluster.store import sources as store
from cluster.store.sources import CLAIM_LEASE_S, MAX_ERROR_TEXT, NewSource


async def db_now(db: asyncpg.Pool) -> datetime:
    return await db.fetchval("SELECT clock_timestamp()")


def close_to(value: datetime, expected: datetime, tolerance_s: float = 10) -> bool:
    return abs((value - expected).total_seconds()) <= tolerance_s


async def make_due(db: asyncpg.Pool, count: int, prefix: str = "https://feeds.example/") -> list[int]:
    added = await store.add_sources(db, [NewSource(url=f"{prefix}{i}.xml") for i in range(count)])
    assert added == count
    rows = await db.fetch("SELECT id FROM sources WHERE url LIKE $1 ORDER BY id", f"{prefix}%")
    return [r["id"] for r in rows]


async def set_next_fetch(db: asyncpg.Pool, source_id: int, seconds_from_now: float) -> None:
    await db.execute("UPDATE sources SET next_fetch_at = now() + make_interval(secs => $2) WHERE id = $1",
                     source_id, float(seconds_from_now))


# --------------------------------------------------------------------------- adding


async def test_add_source_new_then_existing(db: asyncpg.Pool) -> None:
    new = NewSource(url="https://news.example/rss", kind="feed", title="News", site_url="https://news.example/",
                    language="en", category="World")
    source, created = await store.add_source(db, new, interval_s=900)
    assert created is True
    assert (source.url, source.kind, source.title, source.site_url, source.language, source.category) == (
        "https://news.example/rss", "feed", "News", "https://news.example/", "en", "World")
    assert source.enabled is True
    assert source.interval_s == 900
    assert (source.consecutive_errors, source.error_count, source.articles_added) == (0, 0, 0)
    assert source.last_error is None and source.last_fetched_at is None
    assert source.next_fetch_at <= await db_now(db)  # a new source is due at once

    other = NewSource(url="https://news.example/rss", kind="site", title="Renamed", language="tr", category="Gündem")
    again, created = await store.add_source(db, other, interval_s=60)
    assert created is False
    assert again == source  # the existing row, untouched
    assert await store.get_source(db, source.id) == source
    assert await store.count_sources(db) == 1


async def test_add_sources_counts_only_new(db: asyncpg.Pool) -> None:
    await store.add_source(db, NewSource(url="https://a.example/feed", title="A first"))
    batch = [NewSource(url="https://a.example/feed", title="A again"), NewSource(url="https://b.example/feed"),
             NewSource(url="https://c.example/site", kind="site", language="tr", category="Spor"),
             NewSource(url="https://b.example/feed", title="B twice in one batch")]
    assert await store.add_sources(db, batch, interval_s=120) == 2
    assert await store.add_sources(db, batch) == 0
    assert await store.add_sources(db, []) == 0
    listed = await store.list_sources(db)
    assert [s.url for s in listed] == ["https://a.example/feed", "https://b.example/feed", "https://c.example/site"]
    by_url = {s.url: s for s in listed}
    assert by_url["https://a.example/feed"].title == "A first"
    assert by_url["https://a.example/feed"].interval_s == 300
    assert by_url["https://b.example/feed"].interval_s == 120
    c = by_url["https://c.example/site"]
    assert (c.kind, c.language, c.category, c.interval_s) == ("site", "tr", "Spor", 120)


async def test_list_sources_pages(db: asyncpg.Pool) -> None:
    ids = await make_due(db, 7)
    assert [s.id for s in await store.list_sources(db, limit=3)] == ids[:3]
    assert [s.id for s in await store.list_sources(db, limit=3, offset=3)] == ids[3:6]
    assert await store.count_sources(db) == 7
    assert await store.get_source(db, max(ids) + 1000) is None


async def test_invalid_kind_is_refused(db: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.CheckViolationError):
        await store.add_source(db, NewSource(url="https://x.example/", kind="podcast"))  # type: ignore[arg-type]
    assert await store.count_sources(db) == 0


# --------------------------------------------------------------------------- claiming


async def test_concurrent_claims_never_overlap(db: asyncpg.Pool) -> None:
    ids = await make_due(db, 100)

    async def claimer() -> list[int]:
        taken: list[int] = []
        while True:  # ends when nothing is due any more
            batch = await store.claim_due_sources(db, limit=7)
            if not batch:
                return taken
            taken.extend(s.id for s in batch)

    results = await asyncio.gather(*(claimer() for _ in range(10)))
    everything = [source_id for taken in results for source_id in taken]
    assert len(everything) == 100, "a source was handed out twice" if len(everything) > 100 else "a source was lost"
    assert sorted(everything) == ids
    assert await store.claim_due_sources(db, limit=100) == []


async def test_one_round_of_concurrent_claims(db: asyncpg.Pool) -> None:
    await make_due(db, 100)
    results = await asyncio.gather(*(store.claim_due_sources(db, limit=10) for _ in range(10)))
    claimed = [s.id for batch in results for s in batch]
    assert len(claimed) == len(set(claimed))
    assert all(len(batch) <= 10 for batch in results)


async def test_claim_respects_enabled_and_next_fetch(db: asyncpg.Pool) -> None:
    due, later, disabled = await make_due(db, 3)
    await set_next_fetch(db, later, 3600)
    await store.set_enabled(db, disabled, False)
    before = await db_now(db)
    claimed = await store.claim_due_sources(db, limit=10)
    assert [s.id for s in claimed] == [due]
    # The lease pushes it ahead so no other claimer takes it while it is crawled.
    assert close_to(claimed[0].next_fetch_at, before + timedelta(seconds=CLAIM_LEASE_S))
    assert await store.claim_due_sources(db, limit=10) == []


async def test_claim_limit_takes_the_most_overdue_first(db: asyncpg.Pool) -> None:
    ids = await make_due(db, 5)
    for age, source_id in enumerate(ids):
        await set_next_fetch(db, source_id, -60 * (age + 1))  # the last one is the most overdue
    claimed = await store.claim_due_sources(db, limit=2)
    assert {s.id for s in claimed} == {ids[4], ids[3]}  # RETURNING has no order of its own


async def test_forced_claim_takes_not_due_but_never_disabled(db: asyncpg.Pool) -> None:
    due, later, disabled = await make_due(db, 3)
    await set_next_fetch(db, later, 3600)
    await store.set_enabled(db, disabled, False)
    claimed = await store.claim_due_sources(db, limit=10, force=True)
    assert sorted(s.id for s in claimed) == sorted([due, later])
    assert await store.claim_due_sources(db, limit=0) == []


# --------------------------------------------------------------------------- outcomes


async def test_record_success(db: asyncpg.Pool) -> None:
    (source_id,) = await make_due(db, 1)
    await store.record_failure(db, source_id, error="boom", status=500, next_fetch_in_s=60)
    await store.record_failure(db, source_id, error="boom", status=500, next_fetch_in_s=60)
    before = await db_now(db)
    await store.record_success(db, source_id, status=200, next_fetch_in_s=1800, etag='"abc"',
                               last_modified="Sat, 28 Nov 2026 10:00:00 GMT", title="Feed title",
                               site_url="https://feeds.example/", language="en", articles_added=12)
    source = await store.get_source(db, source_id)
    assert source is not None
    assert source.consecutive_errors == 0
    assert source.error_count == 2  # history is kept
    assert source.last_status == 200
    assert (source.etag, source.last_modified) == ('"abc"', "Sat, 28 Nov 2026 10:00:00 GMT")
    assert (source.title, source.site_url, source.language) == ("Feed title", "https://feeds.example/", "en")
    assert source.articles_added == 12
    assert close_to(source.next_fetch_at, before + timedelta(seconds=1800))
    assert close_to(source.last_success_at, before) and close_to(source.last_fetched_at, before)  # type: ignore[arg-type]

    # A 304: validators and known metadata stay, counts add up.
    await store.record_success(db, source_id, status=304, next_fetch_in_s=600, title="Other title", articles_added=3)
    again = await store.get_source(db, source_id)
    assert again is not None
    assert (again.last_status, again.etag, again.title, again.articles_added) == (304, '"abc"', "Feed title", 15)
    assert close_to(again.next_fetch_at, await db_now(db) + timedelta(seconds=600))


async def test_record_not_modified_is_record_success_for_many(db: asyncpg.Pool) -> None:
    first, second, untouched = await make_due(db, 3)
    await store.record_success(db, first, status=200, next_fetch_in_s=60, etag='"e1"', title="One", articles_added=4)
    await store.record_failure(db, second, error="fetch: timeout", status=None, next_fetch_in_s=60)
    before = await db_now(db)
    await store.record_not_modified(db, [store.NotModified(first, 304, 900.0), store.NotModified(second, 304, 1200.0)])
    one, two, other = [await store.get_source(db, i) for i in (first, second, untouched)]
    assert one is not None and two is not None and other is not None
    assert (one.last_status, one.etag, one.title, one.articles_added) == (304, '"e1"', "One", 4)
    assert one.consecutive_errors == 0
    assert (two.last_status, two.consecutive_errors, two.error_count, two.last_error) == (304, 0, 1, "fetch: timeout")
    assert close_to(one.next_fetch_at, before + timedelta(seconds=900))
    assert close_to(two.next_fetch_at, before + timedelta(seconds=1200))
    assert close_to(two.last_success_at, before) and close_to(two.last_fetched_at, before)  # type: ignore[arg-type]
    assert other.last_status is None and other.last_fetched_at is None
    await store.record_not_modified(db, [])  # nothing to write: no error


async def test_record_failure_counts_and_truncates(db: asyncpg.Pool) -> None:
    (source_id,) = await make_due(db, 1)
    before = await db_now(db)
    failed = await store.record_failure(db, source_id, error="fetch: connection refused", status=None, next_fetch_in_s=120)
    assert failed is not None
    assert (failed.consecutive_errors, failed.error_count) == (1, 1)
    assert failed.last_error == "fetch: connection refused"
    assert failed.last_status is None
    assert failed.enabled is True
    assert close_to(failed.last_error_at, before)  # type: ignore[arg-type]
    assert close_to(failed.next_fetch_at, before + timedelta(seconds=120))

    long_error = "fetch: " + "ü" * (MAX_ERROR_TEXT * 2)
    failed = await store.record_failure(db, source_id, error=long_error, status=404, next_fetch_in_s=240)
    assert failed is not None
    assert (failed.consecutive_errors, failed.error_count, failed.last_status) == (2, 2, 404)
    assert failed.last_error == long_error[:MAX_ERROR_TEXT]
    assert await store.get_source(db, source_id) == failed
    assert await store.record_failure(db, source_id + 1000, error="x", status=None, next_fetch_in_s=1) is None


async def test_record_failure_disables_after_the_limit(db: asyncpg.Pool) -> None:
    (source_id,) = await make_due(db, 1)
    states = []
    for _ in range(4):
        failed = await store.record_failure(db, source_id, error="fetch: 404", status=404, next_fetch_in_s=0,
                                            disable_after=3)
        assert failed is not None
        states.append((failed.consecutive_errors, failed.enabled))
    assert states == [(1, True), (2, True), (3, False), (4, False)]
    assert await store.claim_due_sources(db, limit=10, force=True) == []
    assert (await store.source_summary(db))["enabled"] == 0


async def test_success_resets_the_streak_before_the_limit(db: asyncpg.Pool) -> None:
    (source_id,) = await make_due(db, 1)
    for _ in range(2):
        await store.record_failure(db, source_id, error="e", status=500, next_fetch_in_s=0, disable_after=3)
    await store.record_success(db, source_id, status=200, next_fetch_in_s=0)
    for _ in range(2):
        failed = await store.record_failure(db, source_id, error="e", status=500, next_fetch_in_s=0, disable_after=3)
    assert failed is not None and failed.enabled is True and failed.consecutive_errors == 2 and failed.error_count == 4


async def test_set_enabled(db: asyncpg.Pool) -> None:
    (source_id,) = await make_due(db, 1)
    for _ in range(3):
        await store.record_failure(db, source_id, error="e", status=500, next_fetch_in_s=3600, disable_after=3)
    assert (await store.get_source(db, source_id)).enabled is False  # type: ignore[union-attr]

    assert await store.set_enabled(db, source_id, True) is True
    source = await store.get_source(db, source_id)
    assert source is not None
    assert source.enabled is True
    assert source.consecutive_errors == 0
    assert source.error_count == 3
    assert source.last_error == "e"  # the last error stays visible
    assert source.next_fetch_at <= await db_now(db)  # due now
    assert [s.id for s in await store.claim_due_sources(db, limit=5)] == [source_id]

    await store.record_failure(db, source_id, error="again", status=500, next_fetch_in_s=3600)
    next_fetch = (await store.get_source(db, source_id)).next_fetch_at  # type: ignore[union-attr]
    assert await store.set_enabled(db, source_id, False) is True
    disabled = await store.get_source(db, source_id)
    assert disabled is not None
    assert (disabled.enabled, disabled.consecutive_errors, disabled.next_fetch_at) == (False, 1, next_fetch)
    assert await store.set_enabled(db, source_id + 1000, True) is False


async def test_source_summary(db: asyncpg.Pool) -> None:
    assert await store.source_summary(db) == {"total": 0, "enabled": 0, "failing": 0, "due": 0}
    ids = await make_due(db, 6)
    await store.set_enabled(db, ids[0], False)  # disabled (and due, but disabled is never due)
    await store.record_failure(db, ids[1], error="e", status=500, next_fetch_in_s=3600)  # failing, not due
    await store.record_failure(db, ids[2], error="e", status=500, next_fetch_in_s=0)  # failing and due
    await set_next_fetch(db, ids[3], 3600)  # healthy, not due
    assert await store.source_summary(db) == {"total": 6, "enabled": 5, "failing": 2, "due": 3}
