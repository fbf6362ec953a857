"""New-article announcements on Redis pub/sub, published in batches.

Every stored feed with new entries announces them on ``cluster.keys.CHANNEL_NEW_ARTICLES`` as
``{"source_id": id, "ids": [article ids]}`` (live updates for readers' pages). A PUBLISH per feed
cost 3 % of a crawler's CPU in the crawl benchmark's first round (redis-py's per-command work), so a
crawler collects them and sends what it has every ``delay_s`` in one pipelined round trip; each
message is unchanged, at most ``delay_s`` late.

Announcements are a courtesy: the articles are already stored, so a Redis failure is logged and
the batch dropped, never raised into a crawl.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from cluster import keys

log = logging.getLogger(__name__)

DEFAULT_DELAY_S = 0.2


def announcement(source_id: int, article_ids: Sequence[object]) -> str:
    return json.dumps({"source_id": source_id, "ids": [str(i) for i in article_ids]})


class Announcer:
    """Collects announcements and publishes them together (one per event loop)."""

    def __init__(self, redis: Any, delay_s: float = DEFAULT_DELAY_S) -> None:
        self._redis = redis
        self._delay_s = delay_s
        self._pending: list[str] = []
        self._flushing: asyncio.Task[None] | None = None  # held: the loop keeps only weak references

    def add(self, source_id: int, article_ids: Sequence[object]) -> None:
        self._pending.append(announcement(source_id, article_ids))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._delay_s)
        await self.flush()

    async def flush(self) -> None:
        """Publish what is pending now (also for tests and shutdown)."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for message in pending:
                pipe.publish(keys.CHANNEL_NEW_ARTICLES, message)
            await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - any Redis failure is logged and ignored
            log.warning("crawl: could not announce new articles of %d feed(s): %s", len(pending), exc)
