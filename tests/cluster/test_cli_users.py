"""`newsray users …` against the session's real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import pytest_asyncio
import redis.asyncio as redis_async
from click.testing import CliRunner

from cluster.cli import main
from cluster.keys import tokens_not_before_key
from cluster.settings import get_settings
from cluster.store import tokens as token_store
from cluster.store import users as user_store

PASSWORD = "a sturdy passphrase 42"
T = TypeVar("T")


def sql(database_url: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """The CLI runs its own event loop (asyncio.run), so these tests are synchronous and look
    at the database through a connection of their own."""

    async def run_work() -> T:
        conn = await asyncpg.connect(database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run_work())


@pytest_asyncio.fixture(loop_scope="session")
async def no_users(db: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    get_settings.cache_clear()
    await db.execute("TRUNCATE users RESTART IDENTITY CASCADE")
    yield db


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["users", *args], input=stdin)
    return result.exit_code, result.output


def test_create_the_first_admin_and_list(no_users: asyncpg.Pool, database_url: str) -> None:
    code, output = run("create", "  Admin@Example.org", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert code == 0 and "created admin admin@example.org" in output, output
    user = sql(database_url, lambda c: user_store.get_user_by_email(c, "admin@example.org"))
    assert user is not None and user.role == "admin" and user.email_verified
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    code, output = run("create", "admin@example.org", "--password-stdin", stdin=PASSWORD + "\n")
    assert code != 0 and "already exists" in output
    code, output = run("create", "weak@example.org", "--password-stdin", stdin="short\n")
    assert code != 0 and "password must be at least" in output
    code, output = run("create", "not-an-email", "--password-stdin", stdin=PASSWORD + "\n")
    assert code != 0 and "email is not a valid email address" in output
    code, output = run("create", "reader@example.org", stdin=f"{PASSWORD}\n{PASSWORD}\n")  # the prompt, confirmed
    assert code == 0 and "created reader reader@example.org" in output
    code, output = run("list")
    assert code == 0 and "admin@example.org" in output and "reader@example.org" in output and "2 users" in output


def test_disable_enable_and_reset_mfa(no_users: asyncpg.Pool, database_url: str, redis_url: str) -> None:
    async def prepare(conn: asyncpg.Connection) -> Any:
        user = await user_store.create_user(conn, "someone@example.org", "$argon2id$placeholder")
        await token_store.create_refresh_token(conn, user.id, b"h" * 32, 3600)
        return user

    user = sql(database_url, prepare)
    code, output = run("disable", "someone@example.org")
    assert code == 0 and "disabled someone@example.org; 1 refresh token(s) revoked" in output, output
    disabled = sql(database_url, lambda c: user_store.get_user(c, user.id))
    assert disabled is not None and disabled.disabled

    async def not_before() -> tuple[Any, int]:
        client = redis_async.from_url(redis_url)
        try:
            key = tokens_not_before_key(str(user.id))
            return await client.get(key), await client.ttl(key)
        finally:
            await client.aclose()

    value, ttl = asyncio.run(not_before())
    assert value is not None and 0 < ttl <= 960
    code, output = run("enable", "someone@example.org")
    enabled = sql(database_url, lambda c: user_store.get_user(c, user.id))
    assert code == 0 and enabled is not None and not enabled.disabled

    async def with_mfa(conn: asyncpg.Connection) -> None:
        await user_store.set_pending_totp(conn, user.id, b"encrypted")
        assert await user_store.enable_totp(conn, user.id, b"encrypted", 1)
        await user_store.lock_mfa(conn, user.id, 900)

    sql(database_url, with_mfa)
    code, output = run("reset-mfa", "someone@example.org")
    assert code == 0 and "MFA reset for someone@example.org" in output
    reset = sql(database_url, lambda c: user_store.get_user(c, user.id))
    assert reset is not None and not reset.mfa_enabled and reset.mfa_locked_until is None
    code, output = run("reset-mfa", "nobody@example.org")
    assert code != 0 and "no account with email nobody@example.org" in output
