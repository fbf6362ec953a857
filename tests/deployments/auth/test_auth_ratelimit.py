"""Rate limits: brute force against login, register and MFA hits 429 + Retry-After, per account
and per client address; the per-user API limit; Redis down (login fails closed, reading
fails open, both logged)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as redis_async
from fastapi import FastAPI

from cluster.db import get_pool
from deployments.api import create_app
from deployments.auth.context import AuthContext
from deployments.auth.ratelimit import client_address
from deployments.auth.settings import load_auth_settings
from deployments.backends import Backends
from tests.deployments.auth.support import PASSWORD, client_for, error_of, make_account


async def test_login_brute_force_is_limited_per_account(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    await make_account(app, accounts_db, "victim@example.org")
    for n in range(10):  # from ten addresses: only the account's own window fills up
        async with client_for(app, address=f"10.0.0.{n + 1}") as http:
            response = await http.post("/api/v1/auth/login", json={"email": "victim@example.org", "password": f"guess {n} guess"})
            assert response.status_code == 401
    async with client_for(app, address="10.0.1.1") as http:
        blocked = await http.post("/api/v1/auth/login", json={"email": "victim@example.org", "password": PASSWORD})
        assert blocked.status_code == 429, blocked.text
        assert 590 <= int(blocked.headers["retry-after"]) <= 600
        assert error_of(blocked)["message"] == "auth: too many attempts, try again later"
        # Another account from the same new address is not affected.
        other = await http.post("/api/v1/auth/login", json={"email": "someone@example.org", "password": "x" * 12})
        assert other.status_code == 401


async def test_login_is_limited_per_client_address(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    await make_account(app, accounts_db, "sprayed@example.org")
    async with client_for(app, address="192.0.2.7") as http:
        for n in range(10):  # credential stuffing: one address, many accounts
            response = await http.post("/api/v1/auth/login", json={"email": f"user{n}@example.org", "password": "x" * 12})
            assert response.status_code == 401
        blocked = await http.post("/api/v1/auth/login", json={"email": "sprayed@example.org", "password": PASSWORD})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    async with client_for(app, address="192.0.2.8") as http:
        assert (await http.post("/api/v1/auth/login", json={"email": "sprayed@example.org",
                                                             "password": PASSWORD})).status_code == 200


async def test_concurrent_attempts_cannot_slip_past_the_count(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    async with client_for(app, address="198.51.100.1") as http:
        answers = await asyncio.gather(*(http.post("/api/v1/auth/login", json={"email": f"c{n}@example.org",
                                                                                "password": "x" * 12})
                                         for n in range(16)))
    statuses = [r.status_code for r in answers]
    assert statuses.count(401) == 10 and statuses.count(429) == 6


async def test_register_and_mfa_are_limited_too(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    async with client_for(app, address="203.0.113.5") as http:
        for n in range(10):
            response = await http.post("/api/v1/auth/register", json={"email": f"new{n}@example.org", "password": "short"})
            assert response.status_code == 422
        blocked = await http.post("/api/v1/auth/register", json={"email": "new@example.org", "password": PASSWORD})
        assert blocked.status_code == 429 and "retry-after" in blocked.headers
        for _ in range(10):
            assert (await http.post("/api/v1/auth/mfa", json={"mfa_token": "nrm_guess", "code": "123456"})).status_code == 401
        assert (await http.post("/api/v1/auth/mfa", json={"mfa_token": "nrm_guess", "code": "123456"})).status_code == 429


async def test_general_per_user_api_limit(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    app.state.auth = AuthContext(app.state.backends, load_auth_settings(api_rate_limit=5, api_rate_window_s=600))
    busy = await make_account(app, accounts_db, "busy@example.org")
    calm = await make_account(app, accounts_db, "calm@example.org")
    async with client_for(app) as http:
        for _ in range(5):
            assert (await http.get("/api/v1/articles", headers=busy.headers)).status_code == 200
        limited = await http.get("/api/v1/me", headers=busy.headers)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert (await http.get("/api/v1/me", headers=calm.headers)).status_code == 200
        # Anonymous reading is not a user's quota.
        assert (await http.get("/api/v1/articles")).status_code == 200


async def test_the_api_limit_is_shared_by_replicas_through_redis(accounts_db: asyncpg.Pool,
                                                                 process_clients: None) -> None:
    settings = load_auth_settings(api_rate_limit=30, api_rate_window_s=600)
    replicas = [create_app(), create_app()]
    for replica in replicas:
        replica.state.auth = AuthContext(replica.state.backends, settings)
    account = await make_account(replicas[0], accounts_db, "spread@example.org")
    statuses = []
    async with client_for(replicas[0]) as first, client_for(replicas[1]) as second:
        for n in range(80):
            statuses.append((await (first if n % 2 else second).get("/api/v1/me", headers=account.headers)).status_code)
    allowed = statuses.count(200)
    # Each replica syncs every 25 requests: the total stays within one sync batch per replica.
    assert 30 <= allowed <= 30 + 2 * 25 and statuses.count(429) == 80 - allowed and allowed < 60


@pytest.fixture
async def redis_down(closed_port: int) -> AsyncIterator[redis_async.Redis]:
    client = redis_async.from_url(f"redis://127.0.0.1:{closed_port}", socket_connect_timeout=1, socket_timeout=1)
    yield client
    await client.aclose()


async def test_redis_down_login_fails_closed_reading_fails_open(
        accounts_db: asyncpg.Pool, process_clients: None, redis_down: redis_async.Redis,
        caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(backends=Backends(pool=get_pool, redis=lambda: redis_down))
    account = await make_account(app, accounts_db, "outage@example.org")
    caplog.set_level(logging.WARNING, logger="newsray.auth")
    async with client_for(app) as http:
        login = await http.post("/api/v1/auth/login", json={"email": "outage@example.org", "password": PASSWORD})
        assert login.status_code == 503 and login.headers["retry-after"] == "30"
        assert "rate limiter down" in error_of(login)["message"]
        for _ in range(3):
            assert (await http.get("/api/v1/articles", headers=account.headers)).status_code == 200
            assert (await http.get("/api/v1/me", headers=account.headers)).status_code == 200
        # Refresh needs no limiter: existing sessions keep working.
        assert (await http.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})).status_code == 200
    messages = [record.getMessage() for record in caplog.records]
    assert any("rate limiter unavailable for login" in m for m in messages)
    assert any("Redis unavailable for the API rate limit" in m for m in messages)


def test_client_address_behind_proxies() -> None:
    trusted = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_address("203.0.113.9", None, ()) == "203.0.113.9"
    # An untrusted peer's X-Forwarded-For is ignored: clients cannot pick their address.
    assert client_address("203.0.113.9", "1.2.3.4", trusted) == "203.0.113.9"
    # Behind a trusted proxy: the right-most address that is not a trusted proxy.
    assert client_address("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.9", trusted) == "198.51.100.7"
    assert client_address("10.0.0.2", "garbage", trusted) == "unknown"
    assert client_address("2001:db8::1:2:3:4", None, ()) == "2001:db8::/64"
    assert client_address("::ffff:192.0.2.1", None, ()) == "192.0.2.1"
