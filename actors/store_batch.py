"""Group commit for a crawler's fetched feeds: the feeds that finish together are stored together.

Storing a feed is one statement (its entries and its source's row), but PostgreSQL also spends
about a fifth of that statement on work per statement and per commit, whatever it holds (storing
the crawl benchmark's feeds one at a time cost 3.40 ms of server CPU per feed, two per statement
3.00, eight 2.79). A crawler therefore writes while it fetches: the first fetched feed is written
at once, and the ones that finish while that write runs go out together in the next statement, up
to ``max_feeds``. Nothing waits for a group to fill: the groups are as large as the load makes them.

Each crawl still awaits its own result, so a source's row says "fetched" only once its entries are
stored; a group that fails for a reason other than a lost connection is written again feed by feed,
so that one feed's bad data fails only that feed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timezone

import asyncpg

from cluster.db import DISCONNECT_ERRORS, retry_on_disconnect
from cluster.store import articles as article_store
from cluster.store.articles import FeedWrite, UpsertResult

log = logging.getLogger(__name__)

MAX_FEEDS_PER_STATEMENT = 16

_Waiting = tuple[FeedWrite, "asyncio.Future[UpsertResult]"]


async def store_now(pool: asyncpg.Pool, feed: FeedWrite) -> UpsertResult:
    """One feed in a statement of its own."""
    return (await _store(pool, [feed]))[0]


async def _store(pool: asyncpg.Pool, feeds: list[FeedWrite]) -> list[UpsertResult]:
    """One statement, retried while the database restarts (the feeds wait in memory meanwhile)."""
    return await retry_on_disconnect(lambda: article_store.store_feeds(pool, feeds, now=datetime.now(timezone.utc)))


class FeedStoreBatcher:
    """Stores feeds for one event loop (a crawler actor's), a group per statement."""

    def __init__(self, max_feeds: int = MAX_FEEDS_PER_STATEMENT,
                 on_group: Callable[[int], None] | None = None) -> None:
        """`on_group` hears the size of each group stored (for metrics; its errors are logged)."""
        if max_feeds < 1:
            raise ValueError("store: max_feeds must be at least 1")
        self._max_feeds = max_feeds
        self._on_group = on_group
        self._waiting: list[_Waiting] = []
        self._writing: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None
        self.statements = 0  # for operators and benchmarks: feeds / statements is the mean group
        self.feeds = 0

    async def store(self, pool: asyncpg.Pool, feed: FeedWrite) -> UpsertResult:
        """Store `feed` with whatever else is waiting; raises what storing it alone would. A feed
        that joins a running writer is written on that writer's pool (a crawler has one)."""
        future: asyncio.Future[UpsertResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((feed, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all(pool))
            self._writer.add_done_callback(self._writer_stopped)
        return await future

    async def _write_all(self, pool: asyncpg.Pool) -> None:
        while self._waiting:
            self._writing = self._take()
            await self._write(pool, self._writing)
        self._writing = []

    def _writer_stopped(self, writer: asyncio.Task[None]) -> None:
        # Cancelled with the actor (maybe before it ever ran) or broken: nobody may wait for ever.
        if writer.cancelled() or writer.exception() is not None:
            _settle(self._writing + self._waiting, RuntimeError("store: the crawler's writer stopped"))
            self._writing, self._waiting = [], []

    def _take(self) -> list[_Waiting]:
        """The next group: up to max_feeds, oldest first, each source once (a second write of a
        source in one statement would make the upsert touch a row twice); the rest wait."""
        group: list[_Waiting] = []
        later: list[_Waiting] = []
        sources: set[int] = set()
        for waiting in self._waiting:
            if len(group) < self._max_feeds and waiting[0].source_id not in sources:
                sources.add(waiting[0].source_id)
                group.append(waiting)
            else:
                later.append(waiting)
        self._waiting = later
        return group

    async def _write(self, pool: asyncpg.Pool, group: list[_Waiting]) -> None:
        try:
            results = await _store(pool, [feed for feed, _ in group])
        except DISCONNECT_ERRORS as exc:  # still down after the retries: every crawl fails alike
            _settle(group, exc)
            return
        except Exception as exc:  # noqa: BLE001 - isolate the feed whose data broke the statement
            if len(group) == 1:
                _settle(group, exc)
                return
            log.warning("store: a group of %d feeds failed (%s); storing them one by one", len(group), exc)
            for waiting in group:
                await self._write(pool, [waiting])
            return
        self.statements += 1
        self.feeds += len(group)
        if self._on_group is not None:
            try:
                self._on_group(len(group))
            except Exception:  # noqa: BLE001 - metrics must never break storing
                log.debug("store: group metric unavailable", exc_info=True)
        for (_, future), result in zip(group, results):
            if not future.done():  # its crawl may have been cancelled meanwhile
                future.set_result(result)


def _settle(group: list[_Waiting], exc: BaseException) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
