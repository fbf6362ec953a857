"""The stateless pool (the API's hot reads, the crawler's writes): no reset round trip on release,
transactions still undone."""

from __future__ import annotations

import socket

import asyncpg
import pytest

from cluster.db import StoreError, create_pool, get_stateless_pool


async def test_release_skips_the_reset_but_not_the_rollback(database_url: str, db: asyncpg.Pool) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1, stateless=True)
    try:
        async with pool.acquire() as conn:
            await conn.execute("SET application_name = 'kept'")
        async with pool.acquire() as conn:
            # Session state survives (no RESET ALL): the reason read paths must never set any.
            assert await conn.fetchval("SHOW application_name") == "kept"
            transaction = conn.transaction()
            await transaction.start()
        async with pool.acquire() as conn:
            # An open transaction is still rolled back by asyncpg before our reset runs.
            assert not conn.is_in_transaction()
    finally:
        await pool.close()


async def test_unreachable_database_is_a_store_error_without_the_password() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        with pytest.raises(StoreError, match=r"^store: cannot connect to postgresql://newsray:\*\*\*@") as caught:
            await create_pool(f"postgresql://newsray:hunter2@127.0.0.1:{port}/newsray", stateless=True)
    assert "hunter2" not in str(caught.value)


async def test_the_process_pool_has_the_size_its_first_user_asked_for(process_clients: None) -> None:
    # A crawler actor asks for crawl_db_connections; the process then has that one pool.
    pool = await get_stateless_pool(2)
    assert pool.get_max_size() == 2
    assert await get_stateless_pool(7) is pool
    assert await get_stateless_pool() is pool
    assert await pool.fetchval("SELECT 1") == 1
