"""Waiting for work in tests: poll a condition under a deadline, never a bare sleep."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

import pytest


async def poll(condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = 90.0,
               interval_s: float = 0.05) -> None:
    """Return once `condition()` (plain or async) is true; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await _truth(condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(interval_s)


async def _truth(value: bool | Awaitable[bool]) -> bool:
    return await value if inspect.isawaitable(value) else bool(value)
