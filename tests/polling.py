"""Waiting for work in tests: poll a condition under a deadline, never a bare sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


async def poll(condition: Callable[[], bool | Awaitable[bool]], what: str | Callable[[], str],
               timeout_s: float = 90.0, interval_s: float = 0.05) -> None:
    """Return once `condition()` (plain or async) is true; fail the test after `timeout_s`,
    saying what it waited for (`what`, or what `what()` says then)."""
    deadline = time.monotonic() + timeout_s
    while not await _truth(condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what if isinstance(what, str) else what()}")
        await asyncio.sleep(interval_s)  # polling interval under the deadline


async def poll_for(fetch: Callable[[], Awaitable[T]], ready: Callable[[T], bool], what: str,
                   timeout_s: float = 90.0, interval_s: float = 0.05) -> T:
    """The first value of `fetch()` that is `ready`, polled like :func:`poll`; a timeout names
    the last value fetched."""
    latest: list[T] = []

    async def fetched_ready() -> bool:
        latest[:] = [await fetch()]
        return ready(latest[0])

    def described() -> str:
        last = repr(latest[0]) if latest else "nothing"
        return f"{what} (last: {last[:500]})"

    await poll(fetched_ready, described, timeout_s, interval_s)
    return latest[0]


async def round_finished(scheduler: Any, round_id: str, timeout_s: float = 90.0) -> dict[str, Any]:
    """A crawl scheduler's round status once the round has finished."""
    return await poll_for(lambda: scheduler.round_status.remote(round_id), lambda status: bool(status["finished"]),
                          f"round {round_id} to finish", timeout_s, interval_s=0.1)


async def _truth(value: bool | Awaitable[bool]) -> bool:
    return await value if inspect.isawaitable(value) else bool(value)
