"""The crawler's group commit (actors.store_batch) against the real database."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import asyncpg
import pytest

from actors.store_batch import FeedStoreBatcher, store_now
from cluster.store.articles import ArticleInput, FeedWrite, UpsertResult
from cluster.store.sources import NewSource, Success, add_source, get_source

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
SUCCESS = Success(status=200, next_fetch_in_s=600, etag='"v1"')


async def new_sources(db: asyncpg.Pool, count: int) -> list[int]:
    return [(await add_source(db, NewSource(url=f"https://s{n}.example/feed.xml")))[0].id for n in range(count)]


def feed(source_id: int, keys: list[str], title: str = "Title") -> FeedWrite:
    items = [ArticleInput(dedupe_key=key, title=f"{title} {key}", guid=key, url=f"https://s.example/{key}",
                          published_at=T0) for key in keys]
    return FeedWrite(source_id, items, SUCCESS)


async def articles_of(db: asyncpg.Pool) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for row in await db.fetch("SELECT source_id, dedupe_key FROM articles"):
        found.setdefault(row["source_id"], set()).add(row["dedupe_key"])
    return found


async def test_feeds_that_arrive_together_share_statements(db: asyncpg.Pool) -> None:
    sources = await new_sources(db, 10)
    groups: list[int] = []
    batcher = FeedStoreBatcher(max_feeds=4, on_group=groups.append)
    results = await asyncio.gather(*(batcher.store(db, feed(s, [f"{s}-a", f"{s}-b"])) for s in sources))
    assert [(len(r.inserted), r.updated, r.unchanged) for r in results] == [(2, [], 0)] * 10
    # The ten calls are queued before the writer first runs (asyncio runs tasks in order): groups
    # of 4, 4 and 2.
    assert groups == [4, 4, 2] and (batcher.statements, batcher.feeds) == (3, 10)
    assert await articles_of(db) == {s: {f"{s}-a", f"{s}-b"} for s in sources}
    for s in sources:
        row = await get_source(db, s)
        assert row is not None and (row.articles_added, row.last_status, row.etag) == (2, 200, '"v1"')

    # Each result is its own feed's: unchanged entries, one edited, one new, in one group.
    again = await asyncio.gather(
        batcher.store(db, feed(sources[0], [f"{sources[0]}-a", f"{sources[0]}-b"])),
        batcher.store(db, FeedWrite(sources[1], [*feed(sources[1], [f"{sources[1]}-a"], title="Edited").items,
                                                 *feed(sources[1], [f"{sources[1]}-c"]).items], SUCCESS)))
    assert [(len(r.inserted), len(r.updated), r.unchanged) for r in again] == [(0, 0, 2), (1, 1, 0)]
    assert (await get_source(db, sources[1])).articles_added == 3  # type: ignore[union-attr]


async def test_a_source_twice_goes_in_two_statements(db: asyncpg.Pool) -> None:
    (source,) = await new_sources(db, 1)
    batcher = FeedStoreBatcher()
    first, second = await asyncio.gather(batcher.store(db, feed(source, ["a"])),
                                         batcher.store(db, feed(source, ["a", "b"], title="New")))
    assert (len(first.inserted), len(second.inserted), len(second.updated)) == (1, 1, 1)
    assert batcher.statements == 2
    titles = {r["dedupe_key"]: r["title"] for r in await db.fetch("SELECT dedupe_key, title FROM articles")}
    assert titles == {"a": "New a", "b": "New b"}


async def test_a_feed_the_database_refuses_fails_alone(db: asyncpg.Pool) -> None:
    good_one, bad, good_two = await new_sources(db, 3)
    batcher = FeedStoreBatcher()
    outcomes = await asyncio.gather(
        batcher.store(db, feed(good_one, ["g1"])),
        batcher.store(db, feed(bad, ["nul"], title="NUL \x00 inside")),  # text may not hold NUL
        batcher.store(db, feed(good_two, ["g2"])),
        return_exceptions=True)
    assert isinstance(outcomes[0], UpsertResult) and len(outcomes[0].inserted) == 1
    assert isinstance(outcomes[1], asyncpg.PostgresError)
    assert isinstance(outcomes[2], UpsertResult) and len(outcomes[2].inserted) == 1
    assert await articles_of(db) == {good_one: {"g1"}, good_two: {"g2"}}
    assert (await get_source(db, bad)).last_status is None  # type: ignore[union-attr]  # not recorded as fetched
    # The two good feeds and the bad one alone (after the group failed) were the statements that worked.
    assert (batcher.statements, batcher.feeds) == (2, 2)


async def test_a_stopped_writer_leaves_nobody_waiting(db: asyncpg.Pool) -> None:
    sources = await new_sources(db, 3)
    batcher = FeedStoreBatcher(max_feeds=1)
    waiting = [asyncio.ensure_future(batcher.store(db, feed(s, ["k"]))) for s in sources]
    await asyncio.sleep(0)  # every store() queued, the writer task created but not run yet
    assert batcher._writer is not None
    batcher._writer.cancel()
    outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 30)
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)


async def test_a_broken_group_metric_does_not_stop_storing(db: asyncpg.Pool) -> None:
    (source,) = await new_sources(db, 1)

    def broken(size: int) -> None:
        raise RuntimeError("no metrics here")

    result = await FeedStoreBatcher(on_group=broken).store(db, feed(source, ["m"]))
    assert len(result.inserted) == 1


async def test_store_now_writes_one_feed(db: asyncpg.Pool) -> None:
    (source,) = await new_sources(db, 1)
    result = await store_now(db, feed(source, ["x", "y"]))
    assert (len(result.inserted), result.updated, result.unchanged) == (2, [], 0)
    assert await articles_of(db) == {source: {"x", "y"}}


def test_a_group_needs_room_for_one_feed() -> None:
    with pytest.raises(ValueError, match="max_feeds"):
        FeedStoreBatcher(max_feeds=0)
