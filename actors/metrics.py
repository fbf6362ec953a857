"""Crawl metrics, exported through Ray's metrics agent to the dashboard (and Prometheus).

Created lazily: Ray metrics need a connected worker, and nothing may touch Ray at import time.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

LATENCY_BUCKETS_S = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
GROUP_BUCKETS = [1, 2, 4, 8, 16]


@lru_cache(maxsize=1)
def crawl_metrics() -> dict[str, Any]:
    from ray.util.metrics import Counter, Gauge, Histogram

    return {
        "fetches": Counter("newsray_crawl_fetches_total", "Source fetches by outcome.", tag_keys=("outcome",)),
        "bytes": Counter("newsray_crawl_bytes_total", "Feed bytes downloaded (after decompression)."),
        "parse_s": Histogram("newsray_crawl_parse_seconds", "Time to parse one feed.", boundaries=LATENCY_BUCKETS_S),
        "articles": Counter("newsray_crawl_articles_total", "Articles written by kind.", tag_keys=("kind",)),
        "queue": Gauge("newsray_crawl_queue_depth", "Sources claimed and not yet crawled."),
        "host_wait_s": Histogram("newsray_crawl_host_wait_seconds", "Time a source waited for its host's turn.",
                                 boundaries=LATENCY_BUCKETS_S),
        "store_group": Histogram("newsray_crawl_store_group_feeds", "Fetched feeds stored by one statement.",
                                 boundaries=GROUP_BUCKETS),
    }


def record_outcome(outcome: dict[str, Any]) -> None:
    metrics = crawl_metrics()
    if outcome.get("ok"):
        label = "not_modified" if outcome.get("not_modified") else "ok"
    else:
        label = str(outcome.get("error_kind") or "error")
    metrics["fetches"].inc(1, tags={"outcome": label})
    if outcome.get("bytes"):
        metrics["bytes"].inc(float(outcome["bytes"]))
    if outcome.get("parse_s"):
        metrics["parse_s"].observe(float(outcome["parse_s"]))
    for kind in ("inserted", "updated"):
        if outcome.get(kind):
            metrics["articles"].inc(float(outcome[kind]), tags={"kind": kind})


def record_store_group(feeds: int) -> None:
    crawl_metrics()["store_group"].observe(float(feeds))
