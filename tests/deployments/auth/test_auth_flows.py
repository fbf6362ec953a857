"""Register, login, refresh rotation and reuse, logout, password change, account deletion,
disabled accounts — over HTTP against the real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from fastapi import FastAPI

from cluster.store import users as user_store
from tests.deployments.auth.support import PASSWORD, error_of, make_account


async def test_register_then_login_then_me(api: httpx.AsyncClient) -> None:
    created = await api.post("/api/v1/auth/register", json={"email": "  Reader@Example.ORG ", "password": PASSWORD})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["user"]["email"] == "reader@example.org" and body["user"]["role"] == "reader"
    assert body["token_type"] == "bearer" and body["expires_in"] == 900 and body["mfa_required"] is False
    assert body["access_token"].count(".") == 2 and body["refresh_token"].startswith("nrr_")

    again = await api.post("/api/v1/auth/register", json={"email": "READER@example.org", "password": PASSWORD})
    assert again.status_code == 409 and "already exists" in error_of(again)["message"]

    login = await api.post("/api/v1/auth/login", json={"email": "reader@EXAMPLE.org", "password": PASSWORD})
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    me = await api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["email"] == "reader@example.org"
    assert me.json()["has_password"] is True and me.json()["mfa_enabled"] is False
    assert me.headers["cache-control"] == "no-store"


async def test_wrong_password_and_unknown_email_look_the_same(api: httpx.AsyncClient, app: FastAPI,
                                                              accounts_db: asyncpg.Pool) -> None:
    await make_account(app, accounts_db, "known@example.org")
    wrong = await api.post("/api/v1/auth/login", json={"email": "known@example.org", "password": "not the password"})
    unknown = await api.post("/api/v1/auth/login", json={"email": "nobody@example.org", "password": "whatever it is"})
    assert wrong.status_code == unknown.status_code == 401
    assert error_of(wrong)["message"] == error_of(unknown)["message"] == "auth: wrong email or password"
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_registration_validates_email_and_password(api: httpx.AsyncClient) -> None:
    cases = [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@b", "password": PASSWORD}, "email"),
        ({"email": "short@example.org", "password": "short"}, "password"),
        ({"email": "common@example.org", "password": "password123"}, "password"),
        ({"email": "repeat@example.org", "password": "aaaaaaaaaaaaaaaa"}, "password"),
        ({"email": "mirror@example.org", "password": "mirror@example.org"}, "password"),
        ({"email": "extra@example.org", "password": PASSWORD, "role": "admin"}, "role"),
    ]
    for body, field in cases:
        response = await api.post("/api/v1/auth/register", json=body)
        assert response.status_code == 422, (body, response.text)
        assert [d["loc"][-1] for d in error_of(response)["details"]] == [field], response.text


async def test_refresh_rotates_and_reuse_revokes_the_family(api: httpx.AsyncClient, app: FastAPI,
                                                            accounts_db: asyncpg.Pool) -> None:
    account = await make_account(app, accounts_db, "rotate@example.org")
    first = await api.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200, first.text
    second_token = first.json()["refresh_token"]
    assert second_token != account.refresh_token
    second = await api.post("/api/v1/auth/refresh", json={"refresh_token": second_token})
    assert second.status_code == 200
    third_token = second.json()["refresh_token"]

    # The first token again: someone kept a copy. The whole family dies, the newest token too.
    reuse = await api.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert reuse.status_code == 401 and "already used" in error_of(reuse)["message"]
    dead = await api.post("/api/v1/auth/refresh", json={"refresh_token": third_token})
    assert dead.status_code == 401

    # Other sign-ins of the same user are other families and survive.
    other = await make_account(app, accounts_db, "rotate2@example.org")
    assert (await api.post("/api/v1/auth/refresh", json={"refresh_token": other.refresh_token})).status_code == 200


async def test_concurrent_refresh_with_one_token_lets_one_through(api: httpx.AsyncClient, app: FastAPI,
                                                                  accounts_db: asyncpg.Pool) -> None:
    account = await make_account(app, accounts_db, "race@example.org")
    answers = await asyncio.gather(*(api.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})
                                     for _ in range(5)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) <= 1 and set(statuses) <= {200, 401}
    # Whoever won, the family is now revoked (the losers were reuses).
    for response in answers:
        if response.status_code == 200:
            retry = await api.post("/api/v1/auth/refresh", json={"refresh_token": response.json()["refresh_token"]})
            assert retry.status_code == 401


async def test_garbage_and_expired_refresh_tokens(api: httpx.AsyncClient, app: FastAPI,
                                                  accounts_db: asyncpg.Pool) -> None:
    assert (await api.post("/api/v1/auth/refresh", json={"refresh_token": "nrr_nope"})).status_code == 401
    assert (await api.post("/api/v1/auth/refresh", json={})).status_code == 401
    account = await make_account(app, accounts_db, "expired@example.org")
    await accounts_db.execute("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
    assert (await api.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})).status_code == 401


async def test_logout_ends_the_session_at_once(api: httpx.AsyncClient, app: FastAPI,
                                               accounts_db: asyncpg.Pool) -> None:
    account = await make_account(app, accounts_db, "bye@example.org")
    other_device = await make_account(app, accounts_db, "bye2@example.org")
    assert (await api.get("/api/v1/me", headers=account.headers)).status_code == 200
    out = await api.post("/api/v1/auth/logout", headers=account.headers, json={"refresh_token": account.refresh_token})
    assert out.status_code == 204
    assert (await api.get("/api/v1/me", headers=account.headers)).status_code == 401
    assert (await api.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})).status_code == 401
    assert (await api.get("/api/v1/me", headers=other_device.headers)).status_code == 200
    # Logging out twice is fine.
    assert (await api.post("/api/v1/auth/logout")).status_code == 204


async def test_change_password_ends_other_sessions(api: httpx.AsyncClient, app: FastAPI,
                                                   accounts_db: asyncpg.Pool) -> None:
    account = await make_account(app, accounts_db, "change@example.org")
    weak = await api.post("/api/v1/me/password", headers=account.headers,
                          json={"current_password": PASSWORD, "new_password": "short"})
    assert weak.status_code == 422 and error_of(weak)["details"][0]["loc"] == ["body", "new_password"]
    wrong = await api.post("/api/v1/me/password", headers=account.headers,
                           json={"current_password": "not it at all", "new_password": "another good passphrase"})
    assert wrong.status_code == 403

    changed = await api.post("/api/v1/me/password", headers=account.headers,
                             json={"current_password": PASSWORD, "new_password": "another good passphrase"})
    assert changed.status_code == 200, changed.text
    fresh = changed.json()["access_token"]
    assert (await api.get("/api/v1/me", headers=account.headers)).status_code == 401  # the old token is void
    assert (await api.get("/api/v1/me", headers={"Authorization": f"Bearer {fresh}"})).status_code == 200
    assert (await api.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})).status_code == 401
    login = await api.post("/api/v1/auth/login", json={"email": "change@example.org",
                                                       "password": "another good passphrase"})
    assert login.status_code == 200


async def test_delete_account_removes_the_users_data(api: httpx.AsyncClient, app: FastAPI,
                                                     accounts_db: asyncpg.Pool) -> None:
    from tests.deployments.support import Seeder

    seed = Seeder(accounts_db)
    source_id = await seed.source()
    [article_id] = await seed.articles(source_id, 1)
    account = await make_account(app, accounts_db, "leaving@example.org")
    stays = await make_account(app, accounts_db, "staying@example.org")
    for who in (account, stays):
        assert (await api.post("/api/v1/me/subscriptions", headers=who.headers, json={"source_id": source_id})).status_code == 201
        assert (await api.patch(f"/api/v1/me/articles/{article_id}/state", headers=who.headers,
                                json={"read": True, "rating": 4})).status_code == 200
        assert (await api.post("/api/v1/me/folders", headers=who.headers, json={"name": "News"})).status_code == 201
        assert (await api.patch("/api/v1/me/preferences", headers=who.headers,
                                json={"time_zone": "Europe/Istanbul"})).status_code == 200

    refused = await api.request("DELETE", "/api/v1/me", headers=account.headers, json={"password": "wrong password!"})
    assert refused.status_code == 403
    gone = await api.request("DELETE", "/api/v1/me", headers=account.headers, json={"password": PASSWORD})
    assert gone.status_code == 204
    assert (await api.get("/api/v1/me", headers=account.headers)).status_code == 401

    for table in ("subscriptions", "article_states", "feedback_events", "folders", "preferences", "refresh_tokens"):
        rows = await accounts_db.fetch(f"SELECT user_id FROM {table}")
        assert {row["user_id"] for row in rows} == {stays.id}, table
    # The shared catalog keeps the source and its article.
    assert await accounts_db.fetchval("SELECT count(*) FROM sources WHERE id = $1", source_id) == 1
    assert (await api.get("/api/v1/me/subscriptions", headers=stays.headers)).json()["items"][0]["source_id"] == source_id


async def test_disabled_account_cannot_sign_in_or_refresh(api: httpx.AsyncClient, app: FastAPI,
                                                          accounts_db: asyncpg.Pool) -> None:
    account = await make_account(app, accounts_db, "off@example.org")
    await user_store.set_disabled(accounts_db, account.id, True)
    login = await api.post("/api/v1/auth/login", json={"email": "off@example.org", "password": PASSWORD})
    assert login.status_code == 403 and "disabled" in error_of(login)["message"]
    assert (await api.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})).status_code == 403


async def test_registration_can_be_closed(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    from deployments.auth.context import AuthContext
    from deployments.auth.settings import load_auth_settings
    from tests.deployments.auth.support import client_for

    app.state.auth = AuthContext(app.state.backends, load_auth_settings(registration_open=False))
    async with client_for(app) as http:
        closed = await http.post("/api/v1/auth/register", json={"email": "late@example.org", "password": PASSWORD})
    assert closed.status_code == 403 and "closed" in error_of(closed)["message"]


async def test_password_hash_is_argon2id_and_upgraded_when_parameters_change(
        api: httpx.AsyncClient, accounts_db: asyncpg.Pool) -> None:
    from argon2 import PasswordHasher

    weak_hash = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    user = await user_store.create_user(accounts_db, "old@example.org", weak_hash)
    assert (await api.post("/api/v1/auth/login", json={"email": "old@example.org", "password": PASSWORD})).status_code == 200
    stored = (await user_store.get_user(accounts_db, user.id)).password_hash  # type: ignore[union-attr]
    assert stored is not None and stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
