"""A value kept for a few seconds: for reads whose answer changes rarely but costs a scan each
time (the latest model version, topic counts), so a busy endpoint does not repeat the scan on
every request."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Expiring(Generic[T]):
    """Loads at most once every `ttl_s` seconds. A None answer ("nothing there yet") is not kept,
    so the first real value shows at once rather than after the TTL."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._value: T | None = None
        self._expires_at = 0.0

    async def get(self, load: Callable[[], Awaitable[T | None]]) -> T | None:
        now = self._clock()
        if self._value is not None and now < self._expires_at:
            return self._value
        value = await load()
        if value is not None:
            self._value, self._expires_at = value, now + self.ttl_s
        return value
