"""When to fetch a source next: learned from how often it publishes, bounded, and polite.

Pure: the scheduler and the crawler call it with what they saw; tests call it with numbers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

MIN_INTERVAL_S = 5 * 60
MAX_INTERVAL_S = 24 * 3600
JITTER = 0.1  # ±10 %: sources added together must not stay in lock-step forever
# Look at the newest entries only: a feed's archive says little about how often it posts now.
RECENT_ENTRIES = 20


@dataclass(frozen=True, slots=True)
class PublisherHints:
    ttl_minutes: int | None = None  # RSS <ttl>
    update_period_minutes: int | None = None  # sy:updatePeriod / sy:updateFrequency
    cache_max_age_s: float | None = None  # Cache-Control: max-age
    retry_after_s: float | None = None  # Retry-After on 429 / 503


def learned_interval_s(entry_dates: Sequence[datetime], default_s: float) -> float:
    """Half the typical gap between recent entries (so a new post waits half a gap on average)."""
    dates = sorted((d for d in entry_dates if d is not None), reverse=True)[:RECENT_ENTRIES]
    if len(dates) < 3:
        return default_s
    gaps = sorted((newer - older).total_seconds() for newer, older in zip(dates, dates[1:]))
    median_gap = gaps[len(gaps) // 2]
    if median_gap <= 0:  # many entries with one timestamp: the feed is busy
        return MIN_INTERVAL_S
    return median_gap / 2


def next_interval_s(
    *,
    default_s: float,
    entry_dates: Sequence[datetime] = (),
    hints: PublisherHints = PublisherHints(),
    min_s: float = MIN_INTERVAL_S,
    max_s: float = MAX_INTERVAL_S,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next fetch after a successful one."""
    interval = learned_interval_s(entry_dates, default_s)
    # Publisher hints are floors: they ask us not to come back sooner.
    for floor in (
        (hints.ttl_minutes or 0) * 60,
        (hints.update_period_minutes or 0) * 60,
        hints.cache_max_age_s or 0,
        hints.retry_after_s or 0,
    ):
        interval = max(interval, floor)
    interval = min(max(interval, min_s), max_s)
    jitter = (rng or random).uniform(-JITTER, JITTER)
    return min(max(interval * (1 + jitter), min_s), max_s) if min_s < max_s else interval


def backoff_interval_s(
    *,
    default_s: float,
    consecutive_errors: int,
    retry_after_s: float | None = None,
    max_s: float = MAX_INTERVAL_S,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next try after the n-th failure in a row (n ≥ 0 before this one):
    exponential from the default interval, at least any Retry-After, capped, with jitter."""
    interval = default_s * (2 ** min(consecutive_errors, 16))
    interval = max(interval, retry_after_s or 0)
    jitter = (rng or random).uniform(0, JITTER)
    return min(interval * (1 + jitter), max_s)


def cache_max_age_s(cache_control: str | None) -> float | None:
    """max-age from a Cache-Control header (s-maxage for shared caches does not concern us)."""
    if not cache_control:
        return None
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age":
            try:
                return max(0.0, float(value.strip().strip('"')))
            except ValueError:
                return None
    return None
