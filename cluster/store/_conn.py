"""Store helpers: run a block on one connection, or in one transaction, whether the caller
passed a Pool or a Connection (a caller's own transaction is joined, not nested)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg

Conn: TypeAlias = asyncpg.Pool | asyncpg.Connection


@asynccontextmanager
async def connection(conn: Conn) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as acquired:
            yield acquired
    else:
        yield conn


@asynccontextmanager
async def transaction(conn: Conn) -> AsyncIterator[asyncpg.Connection]:
    async with connection(conn) as c:
        async with c.transaction():
            yield c
