"""How a host lane's queue is cut into crawler calls (pure asyncio, no Ray)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from actors.scheduler import LANE_CHUNK, take_chunk
from cluster.store.sources import Source

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def source(source_id: int, consecutive_errors: int = 0) -> tuple[Source, float]:
    row = Source(
        id=source_id, url=f"http://127.0.1.1:8080/feeds/{source_id}.xml", kind="feed", title=None, site_url=None,
        language=None, category=None, etag=None, last_modified=None, enabled=True, interval_s=300,
        next_fetch_at=NOW, last_fetched_at=None, last_success_at=None, last_status=None,
        consecutive_errors=consecutive_errors, error_count=consecutive_errors, last_error=None, last_error_at=None,
        articles_added=0, created_at=NOW,
    )
    return row, 0.0


def queued(items: list[tuple[Source, float] | None]) -> asyncio.Queue[tuple[Source, float] | None]:
    queue: asyncio.Queue[tuple[Source, float] | None] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    return queue


def ids(chunk: list[tuple[Source, float]]) -> list[int]:
    return [row.id for row, _ in chunk]


def test_a_hosts_sources_are_shared_out_among_its_workers() -> None:
    # 20 sources and the 4 end markers of 4 workers: every worker gets a share at once.
    queue = queued([source(i) for i in range(20)] + [None] * 4)
    sizes = []
    while True:
        item = queue.get_nowait()
        if item is None:
            break
        chunk, ended = take_chunk(item, queue, workers=4)
        assert not ended
        sizes.append(len(chunk))
    assert sizes[:4] == [6, 5, 4, 3] and sum(sizes) == 20  # not 16 and 4, as one chunk each
    assert all(size <= LANE_CHUNK for size in sizes)


def test_a_long_queue_is_cut_at_the_chunk_limit() -> None:
    queue = queued([source(i) for i in range(100)])
    chunk, ended = take_chunk(queue.get_nowait(), queue, workers=1)
    assert ids(chunk) == list(range(LANE_CHUNK)) and not ended


def test_a_source_that_failed_last_time_ends_its_chunk() -> None:
    queue = queued([source(1), source(2, consecutive_errors=3), source(3), source(4)])
    chunk, _ = take_chunk(queue.get_nowait(), queue, workers=1)
    assert ids(chunk) == [1, 2]
    failing_first = queued([source(5, consecutive_errors=1), source(6)])
    chunk, _ = take_chunk(failing_first.get_nowait(), failing_first, workers=1)
    assert ids(chunk) == [5]  # alone: the healthy one does not wait for its timeouts
    assert failing_first.qsize() == 1


def test_the_end_marker_ends_the_chunk_and_the_lane() -> None:
    queue = queued([source(1), source(2), None, source(9)])
    chunk, ended = take_chunk(queue.get_nowait(), queue, workers=1)
    assert ids(chunk) == [1, 2] and ended
