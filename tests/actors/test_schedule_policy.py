"""The adaptive refresh interval: learned, bounded, polite, jittered."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from actors.schedule_policy import (
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    PublisherHints,
    backoff_interval_s,
    cache_max_age_s,
    learned_interval_s,
    next_interval_s,
)

NOW = datetime(2026, 11, 28, 12, tzinfo=timezone.utc)


def every(minutes: float, count: int = 10) -> list[datetime]:
    return [NOW - timedelta(minutes=minutes * i) for i in range(count)]


def fixed_rng() -> random.Random:
    return random.Random(7)


def test_learns_half_the_publishing_gap() -> None:
    assert learned_interval_s(every(120), default_s=300) == 3600
    # Too little history: the default stands.
    assert learned_interval_s(every(120, count=2), default_s=900) == 900
    # Entries all stamped alike (a busy feed, or a lazy CMS): as often as allowed.
    assert learned_interval_s([NOW] * 5, default_s=900) == MIN_INTERVAL_S


def test_bounded_between_five_minutes_and_a_day() -> None:
    for _ in range(50):
        assert MIN_INTERVAL_S <= next_interval_s(default_s=300, entry_dates=every(1)) <= MAX_INTERVAL_S
        assert next_interval_s(default_s=300, entry_dates=every(60 * 24 * 7)) <= MAX_INTERVAL_S


def test_publisher_hints_are_floors() -> None:
    base = dict(default_s=600, entry_dates=every(20), rng=fixed_rng())
    assert next_interval_s(**base, hints=PublisherHints(ttl_minutes=180)) >= 180 * 60 * 0.9
    assert next_interval_s(**base, hints=PublisherHints(update_period_minutes=60 * 6)) >= 6 * 3600 * 0.9
    assert next_interval_s(**base, hints=PublisherHints(cache_max_age_s=7200)) >= 7200 * 0.9
    assert next_interval_s(**base, hints=PublisherHints(retry_after_s=5000)) >= 5000 * 0.9


def test_jitter_spreads_sources_apart() -> None:
    values = {round(next_interval_s(default_s=3600)) for _ in range(50)}
    assert len(values) > 10
    assert all(3600 * 0.9 <= v <= 3600 * 1.1 for v in values)


def test_backoff_doubles_honours_retry_after_and_caps() -> None:
    rng = random.Random(1)
    assert 300 <= backoff_interval_s(default_s=300, consecutive_errors=0, rng=rng) <= 330
    assert 2400 <= backoff_interval_s(default_s=300, consecutive_errors=3, rng=rng) <= 2640
    assert backoff_interval_s(default_s=300, consecutive_errors=40, rng=rng) == MAX_INTERVAL_S
    assert backoff_interval_s(default_s=300, consecutive_errors=0, retry_after_s=3600, rng=rng) >= 3600


def test_cache_control_max_age() -> None:
    assert cache_max_age_s("public, max-age=600") == 600
    assert cache_max_age_s('max-age="90", must-revalidate') == 90
    assert cache_max_age_s("no-cache") is None
    assert cache_max_age_s("max-age=soon") is None
    assert cache_max_age_s(None) is None
