"""The authorization matrix: every operation in the OpenAPI document, called as anonymous,
reader A, reader B and admin. An operation missing from the matrix fails the test, so a new
endpoint cannot ship unclassified. A can never read or change B's data."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import httpx
from fastapi import FastAPI

from tests.deployments.auth.support import PASSWORD, Account, client_for, make_account
from tests.deployments.support import Seeder

Access = Literal["public", "user", "admin"]
ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/health"): "public",
    ("GET", "/"): "public",
    ("GET", "/api/v1/articles"): "public",
    ("GET", "/api/v1/articles/{article_id}"): "public",
    ("GET", "/api/v1/articles/{article_id}/similar"): "public",
    ("GET", "/api/v1/stories/{story_id}"): "public",
    ("GET", "/api/v1/search"): "public",
    ("GET", "/api/v1/topics"): "public",
    ("GET", "/api/v1/sources"): "public",
    ("POST", "/api/v1/auth/register"): "public",
    ("POST", "/api/v1/auth/login"): "public",
    ("POST", "/api/v1/auth/mfa"): "public",
    ("POST", "/api/v1/auth/refresh"): "public",
    ("POST", "/api/v1/auth/logout"): "public",
    ("GET", "/api/v1/auth/providers"): "public",
    ("GET", "/api/v1/auth/oidc/{provider}/login"): "public",
    ("GET", "/api/v1/auth/oidc/{provider}/callback"): "public",
    ("GET", "/api/v1/me"): "user",
    ("DELETE", "/api/v1/me"): "user",
    ("POST", "/api/v1/me/password"): "user",
    ("POST", "/api/v1/me/mfa/totp"): "user",
    ("POST", "/api/v1/me/mfa/totp/confirm"): "user",
    ("POST", "/api/v1/me/mfa/totp/disable"): "user",
    ("POST", "/api/v1/me/mfa/backup-codes"): "user",
    ("GET", "/api/v1/me/preferences"): "user",
    ("PATCH", "/api/v1/me/preferences"): "user",
    ("GET", "/api/v1/me/articles/{article_id}/state"): "user",
    ("PATCH", "/api/v1/me/articles/{article_id}/state"): "user",
    ("GET", "/api/v1/me/history"): "user",
    ("GET", "/api/v1/me/subscriptions"): "user",
    ("POST", "/api/v1/me/subscriptions"): "user",
    ("PATCH", "/api/v1/me/subscriptions/{source_id}"): "user",
    ("DELETE", "/api/v1/me/subscriptions/{source_id}"): "user",
    ("GET", "/api/v1/me/subscriptions/opml"): "user",
    ("POST", "/api/v1/me/subscriptions/opml"): "user",
    ("GET", "/api/v1/me/folders"): "user",
    ("POST", "/api/v1/me/folders"): "user",
    ("PATCH", "/api/v1/me/folders/{folder_id}"): "user",
    ("DELETE", "/api/v1/me/folders/{folder_id}"): "user",
    ("GET", "/api/v1/admin/users"): "admin",
    ("POST", "/api/v1/admin/users/{user_id}/disable"): "admin",
    ("POST", "/api/v1/admin/users/{user_id}/enable"): "admin",
    ("GET", "/api/v1/admin/sources"): "admin",
    ("GET", "/api/v1/admin/errors"): "admin",
}

OPML = ('<?xml version="1.0"?><opml version="2.0"><body><outline text="Imported">'
        '<outline type="rss" text="x" xmlUrl="https://matrix.example.org/feed.xml"/></outline></body></opml>')


@dataclass
class Owned:
    """What one caller owns: its folder, its subscription, its state on an article."""

    folder_id: int
    source_id: int


@dataclass
class World:
    article_id: str
    source_ids: list[int]
    victim_id: uuid.UUID


def request_for(method: str, path: str, owned: Owned | None, world: World, serial: int) -> dict[str, Any]:
    folder = owned.folder_id if owned else 1
    source = owned.source_id if owned else world.source_ids[0]
    url = (path.replace("{article_id}", world.article_id).replace("{source_id}", str(source))
           .replace("{folder_id}", str(folder)).replace("{user_id}", str(world.victim_id))
           .replace("{provider}", "none").replace("{story_id}", world.article_id))
    bodies: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", "/api/v1/auth/register"): {"json": {"email": f"matrix{serial}@example.org", "password": PASSWORD}},
        ("POST", "/api/v1/auth/login"): {"json": {"email": "nobody@example.org", "password": PASSWORD}},
        ("GET", "/api/v1/search"): {"params": {"q": "article", "mode": "text"}},
        ("POST", "/api/v1/auth/mfa"): {"json": {"mfa_token": "nrm_x", "code": "123456"}},
        ("POST", "/api/v1/auth/refresh"): {"json": {"refresh_token": "nrr_x"}},
        ("DELETE", "/api/v1/me"): {"json": {"password": PASSWORD}},
        ("POST", "/api/v1/me/password"): {"json": {"current_password": PASSWORD,
                                                   "new_password": "a different passphrase 7"}},
        ("POST", "/api/v1/me/mfa/totp/confirm"): {"json": {"code": "123456"}},
        ("POST", "/api/v1/me/mfa/totp/disable"): {"json": {"code": "123456"}},
        ("POST", "/api/v1/me/mfa/backup-codes"): {"json": {"code": "123456"}},
        ("PATCH", "/api/v1/me/preferences"): {"json": {"digest_hour": 9}},
        ("PATCH", "/api/v1/me/articles/{article_id}/state"): {"json": {"read": True}},
        ("POST", "/api/v1/me/subscriptions"): {"json": {"source_id": world.source_ids[1]}},
        ("PATCH", "/api/v1/me/subscriptions/{source_id}"): {"json": {"title": "Renamed"}},
        ("POST", "/api/v1/me/subscriptions/opml"): {"content": OPML, "headers": {"Content-Type": "text/x-opml"}},
        ("POST", "/api/v1/me/folders"): {"json": {"name": f"Folder {serial}"}},
        ("PATCH", "/api/v1/me/folders/{folder_id}"): {"json": {"name": f"Renamed {serial}"}},
    }
    return {"method": method, "url": url, **bodies.get((method, path), {})}


async def _own(http: httpx.AsyncClient, account: Account, world: World, name: str) -> Owned:
    folder = await http.post("/api/v1/me/folders", headers=account.headers, json={"name": name})
    await http.post("/api/v1/me/subscriptions", headers=account.headers,
                    json={"source_id": world.source_ids[0], "folder_id": folder.json()["id"]})
    await http.patch(f"/api/v1/me/articles/{world.article_id}/state", headers=account.headers,
                     json={"read": True, "rating": 3, "saved": True})
    return Owned(folder.json()["id"], world.source_ids[0])


async def _world(accounts_db: asyncpg.Pool, app: FastAPI) -> World:
    seed = Seeder(accounts_db)
    sources = [await seed.source(title="One"), await seed.source(title="Two")]
    [article_id] = await seed.articles(sources[0], 1)
    victim = await make_account(app, accounts_db, "victim@example.org")
    return World(article_id, sources, victim.id)


async def test_matrix_covers_every_operation(app: FastAPI) -> None:
    spec = app.openapi()
    operations = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    assert operations == set(ACCESS), {"unclassified": sorted(operations - set(ACCESS)),
                                       "gone": sorted(set(ACCESS) - operations)}
    # What the document says agrees with the matrix: protected operations declare the bearer scheme.
    for (method, path), access in ACCESS.items():
        declared = spec["paths"][path][method.lower()].get("security")
        assert bool(declared) == (access != "public"), (method, path)


async def test_every_operation_as_anonymous_reader_and_admin(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    world = await _world(accounts_db, app)
    serial = itertools.count()
    failures = []
    for (method, path), access in ACCESS.items():
        for role in ("anonymous", "reader", "admin"):
            n = next(serial)
            account = None if role == "anonymous" else await make_account(
                app, accounts_db, f"{role}{n}@example.org", role="admin" if role == "admin" else "reader")
            async with client_for(app, address=f"10.9.{n // 250}.{n % 250 + 1}") as http:
                owned = await _own(http, account, world, f"Own {n}") if account else None
                request = request_for(method, path, owned, world, n)
                if account:
                    request["headers"] = {**request.get("headers", {}), **account.headers}
                response = await http.request(**request)
            status = response.status_code
            message = response.json().get("error", {}).get("message", "") if "json" in response.headers.get(
                "content-type", "") else ""
            if access == "public":
                # Open to all; a 401 here is about the credentials sent in the body, never the caller.
                ok = status < 500 and message not in ("auth: sign in required", "auth: administrators only")
            elif role == "anonymous":
                ok = status == 401
            elif access == "admin" and role == "reader":
                ok = status == 403 and message == "auth: administrators only"
            else:
                ok = status not in (401, 403) and status < 500
            if not ok:
                failures.append((role, method, path, status, message))
    assert not failures, failures


async def _snapshot(http: httpx.AsyncClient, account: Account, world: World) -> dict[str, Any]:
    paths = ["/api/v1/me", "/api/v1/me/preferences", "/api/v1/me/subscriptions", "/api/v1/me/folders",
             "/api/v1/me/history", f"/api/v1/me/articles/{world.article_id}/state", "/api/v1/me/subscriptions/opml"]
    out = {}
    for path in paths:
        response = await http.get(path, headers=account.headers)
        assert response.status_code == 200, (path, response.text)
        out[path] = response.text if path.endswith("opml") else response.json()
    return out


async def test_reader_b_can_never_reach_reader_as_data(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    world = await _world(accounts_db, app)
    alice = await make_account(app, accounts_db, "alice@example.org")
    bob = await make_account(app, accounts_db, "bob@example.org")
    async with client_for(app, address="10.8.0.1") as http:
        owned = await _own(http, alice, world, "Alice's")
        await http.patch("/api/v1/me/preferences", headers=alice.headers, json={"time_zone": "Europe/Istanbul"})
        before = await _snapshot(http, alice, world)
        # Everything Bob can aim at Alice's ids: her folder, the source she follows, her user id.
        attempts = [
            ("PATCH", f"/api/v1/me/folders/{owned.folder_id}", {"name": "Bob was here"}),
            ("DELETE", f"/api/v1/me/folders/{owned.folder_id}", None),
            ("PATCH", f"/api/v1/me/subscriptions/{owned.source_id}", {"title": "Bob's now"}),
            ("DELETE", f"/api/v1/me/subscriptions/{owned.source_id}", None),
            ("POST", "/api/v1/me/subscriptions", {"source_id": world.source_ids[1], "folder_id": owned.folder_id}),
            ("POST", f"/api/v1/admin/users/{alice.id}/disable", None),
        ]
        for method, path, body in attempts:
            response = await http.request(method, path, headers=bob.headers, json=body)
            assert response.status_code in (403, 404), (method, path, response.status_code, response.text)
        # Bob's own views show nothing of Alice's.
        bobs = await _snapshot(http, bob, world)
        assert bobs["/api/v1/me"]["email"] == "bob@example.org"
        assert bobs["/api/v1/me/subscriptions"]["items"] == [] and bobs["/api/v1/me/folders"]["items"] == []
        assert bobs["/api/v1/me/history"]["items"] == []
        assert bobs[f"/api/v1/me/articles/{world.article_id}/state"]["rating"] is None
        assert bobs["/api/v1/me/preferences"]["time_zone"] == "UTC"
        # Bob's own writes (including deleting his account) leave Alice's data as it was.
        await http.patch(f"/api/v1/me/articles/{world.article_id}/state", headers=bob.headers, json={"rating": 1})
        await http.patch("/api/v1/me/preferences", headers=bob.headers, json={"digest_hour": 3})
        await http.request("DELETE", "/api/v1/me", headers=bob.headers, json={"password": PASSWORD})
        after = await _snapshot(http, alice, world)
    assert after == before
