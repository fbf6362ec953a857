"""Admin endpoints: users (paginated), disable/enable with immediate effect, sources' health,
recent server errors recorded by the global exception handler."""

from __future__ import annotations

import asyncpg
import httpx
from fastapi import FastAPI

from cluster.store.sources import record_failure
from deployments.auth.install import drain_error_writes
from tests.deployments.auth.support import PASSWORD, client_for, error_of, make_account
from tests.deployments.support import Seeder


async def test_users_are_paginated_for_admins_only(api: httpx.AsyncClient, app: FastAPI,
                                                   accounts_db: asyncpg.Pool) -> None:
    admin = await make_account(app, accounts_db, "admin@example.org", role="admin")
    reader = await make_account(app, accounts_db, "reader@example.org")
    for n in range(4):
        await make_account(app, accounts_db, f"user{n}@example.org")
    assert (await api.get("/api/v1/admin/users", headers=reader.headers)).status_code == 403
    assert (await api.get("/api/v1/admin/users")).status_code == 401
    first = (await api.get("/api/v1/admin/users", headers=admin.headers, params={"limit": 4})).json()
    assert first["total"] == 6 and len(first["items"]) == 4 and first["offset"] == 0
    second = (await api.get("/api/v1/admin/users", headers=admin.headers, params={"limit": 4, "offset": 4})).json()
    emails = [u["email"] for u in first["items"] + second["items"]]
    assert len(set(emails)) == 6 and emails[0] == "admin@example.org"
    assert set(first["items"][0]) == {"id", "email", "role", "disabled", "created_at", "last_login_at", "mfa_enabled"}


async def test_disable_takes_effect_at_once_and_enable_restores(api: httpx.AsyncClient, app: FastAPI,
                                                                accounts_db: asyncpg.Pool) -> None:
    admin = await make_account(app, accounts_db, "admin@example.org", role="admin")
    reader = await make_account(app, accounts_db, "reader@example.org")
    assert (await api.get("/api/v1/me", headers=reader.headers)).status_code == 200
    disabled = await api.post(f"/api/v1/admin/users/{reader.id}/disable", headers=admin.headers)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    # The reader's open access token dies now, not in 15 minutes; refresh and login are refused.
    assert (await api.get("/api/v1/articles", headers=reader.headers)).status_code == 401
    assert (await api.post("/api/v1/auth/refresh", json={"refresh_token": reader.refresh_token})).status_code == 401
    login = await api.post("/api/v1/auth/login", json={"email": "reader@example.org", "password": PASSWORD})
    assert login.status_code == 403
    # Another replica (a second app) sees the revocation through Redis.
    from deployments.api import create_app

    async with client_for(create_app()) as other_replica:
        assert (await other_replica.get("/api/v1/me", headers=reader.headers)).status_code == 401

    enabled = await api.post(f"/api/v1/admin/users/{reader.id}/enable", headers=admin.headers)
    assert enabled.status_code == 200 and enabled.json()["disabled"] is False
    assert (await api.post("/api/v1/auth/login", json={"email": "reader@example.org",
                                                       "password": PASSWORD})).status_code == 200
    own = await api.post(f"/api/v1/admin/users/{admin.id}/disable", headers=admin.headers)
    assert own.status_code == 409
    unknown = await api.post("/api/v1/admin/users/00000000-0000-0000-0000-000000000000/disable", headers=admin.headers)
    assert unknown.status_code == 404 and error_of(unknown)["message"].startswith("admin: ")


async def test_sources_health_failing_first(api: httpx.AsyncClient, app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    seed = Seeder(accounts_db)
    healthy, failing = await seed.source(title="Fine"), await seed.source(title="Broken")
    await record_failure(accounts_db, failing, error="fetch: HTTP 500", status=500, next_fetch_in_s=60)
    admin = await make_account(app, accounts_db, "admin@example.org", role="admin")
    reader = await make_account(app, accounts_db, "reader@example.org")
    await api.post("/api/v1/me/subscriptions", headers=reader.headers, json={"source_id": healthy})
    await api.post("/api/v1/me/subscriptions", headers=admin.headers, json={"source_id": healthy})
    body = (await api.get("/api/v1/admin/sources", headers=admin.headers)).json()
    assert body["total"] == 2 and body["failing"] == 1
    assert [(s["id"], s["followers"]) for s in body["items"]] == [(failing, 0), (healthy, 2)]
    assert body["items"][0]["health"]["last_error"] == "fetch: HTTP 500"
    assert (await api.get("/api/v1/admin/sources", headers=reader.headers)).status_code == 403


async def test_server_errors_are_recorded_for_admins(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    @app.get("/api/v1/test-crash")
    async def crash() -> None:
        raise RuntimeError("the widget cracked")

    admin = await make_account(app, accounts_db, "admin@example.org", role="admin")
    async with client_for(app) as http:
        crashed = await http.get("/api/v1/test-crash", params={"token": "do-not-store"}, headers=admin.headers)
        assert crashed.status_code == 500 and "widget" not in crashed.text
        await drain_error_writes(app)
        errors = (await http.get("/api/v1/admin/errors", headers=admin.headers)).json()["items"]
    [entry] = errors
    assert entry["path"] == "/api/v1/test-crash" and entry["method"] == "GET" and entry["status"] == 500
    assert entry["error_type"] == "builtins.RuntimeError" and entry["message"] == "the widget cracked"
    assert entry["user_id"] == str(admin.id) and "do-not-store" not in str(entry)
