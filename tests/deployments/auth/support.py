"""Helpers for the account tests: users made through the store (one argon2 hash per session,
not one per user), sessions issued the way login issues them, and clients that carry them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import asyncpg
import httpx
import pyotp
from fastapi import FastAPI

from cluster.store import users as user_store
from cluster.store.users import User
from deployments.auth.accounts import start_session
from deployments.auth.context import AuthContext
from deployments.auth.passwords import hash_password_sync

PASSWORD = "a sturdy passphrase 42"


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password_sync(PASSWORD)


def client_for(app: FastAPI, address: str = "127.0.0.1", **headers: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers)


@dataclass
class Account:
    user: User
    access_token: str
    refresh_token: str
    session_id: uuid.UUID
    csrf_token: str
    totp_secret: str | None = None
    backup_codes: list[str] = field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return self.user.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def make_account(app: FastAPI, pool: asyncpg.Pool, email: str, role: str = "reader") -> Account:
    user = await user_store.create_user(pool, email, password_hash(), role=role)  # type: ignore[arg-type]
    context: AuthContext = app.state.auth
    session = await start_session(context, pool, user)
    return Account(user, session.access_token, session.refresh_token, session.session_id, session.csrf_token)


async def enable_mfa(client: httpx.AsyncClient, account: Account) -> Account:
    """Enrol and confirm TOTP through the API; keeps the secret and backup codes on the account."""
    enrol = await client.post("/api/v1/me/mfa/totp", headers=account.headers)
    assert enrol.status_code == 200, enrol.text
    secret = enrol.json()["secret"]
    confirm = await client.post("/api/v1/me/mfa/totp/confirm", headers=account.headers,
                                json={"code": pyotp.TOTP(secret).now()})
    assert confirm.status_code == 200, confirm.text
    account.totp_secret = secret
    account.backup_codes = confirm.json()["backup_codes"]
    return account


def code_at(secret: str, step_offset: int) -> str:
    """The TOTP code of the step `step_offset` steps from now (within the ±1 window)."""
    import time

    return pyotp.TOTP(secret).at(time.time() + 30 * step_offset)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert error["status"] == response.status_code
    return error
