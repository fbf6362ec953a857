"""TOTP MFA: enrolment (encrypted secret, otpauth URI, SVG QR), backup codes, two-step login,
replay refusal, lockout after 5 wrong codes, disabling with a code."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pyotp
import pytest
from fastapi import FastAPI

from deployments.auth import mfa
from tests.deployments.auth.support import PASSWORD, code_at, enable_mfa, error_of, make_account


async def _challenge(api: httpx.AsyncClient, email: str) -> str:
    response = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True and set(body) == {"mfa_required", "mfa_token", "expires_in", "methods"}
    assert body["expires_in"] == 300 and body["methods"] == ["totp", "backup_code"]
    return str(body["mfa_token"])


async def test_enrolment_stores_the_secret_encrypted(api: httpx.AsyncClient, app: FastAPI,
                                                     accounts_db: asyncpg.Pool) -> None:
    account = await make_account(app, accounts_db, "enrol@example.org")
    enrol = await api.post("/api/v1/me/mfa/totp", headers=account.headers)
    assert enrol.status_code == 200
    body = enrol.json()
    secret = body["secret"]
    assert len(secret) == 32 and body["otpauth_uri"].startswith("otpauth://totp/newsray:enrol%40example.org?")
    assert f"secret={secret}" in body["otpauth_uri"] and "issuer=newsray" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg") and body["qr_svg"].rstrip().endswith("</svg>")
    stored = await accounts_db.fetchval("SELECT totp_pending_secret FROM users WHERE id = $1", account.id)
    assert stored is not None and secret.encode() not in stored
    key = app.state.auth.keys.totp_encryption
    assert mfa.decrypt_secret(key, account.id, stored) == secret
    with pytest.raises(mfa.MfaError):  # bound to its user: a copied row does not decrypt
        mfa.decrypt_secret(key, uuid.uuid4(), stored)

    wrong = await api.post("/api/v1/me/mfa/totp/confirm", headers=account.headers, json={"code": "000000"})
    assert wrong.status_code == 403 or pyotp.TOTP(secret).verify("000000", valid_window=1)
    confirm = await api.post("/api/v1/me/mfa/totp/confirm", headers=account.headers,
                             json={"code": pyotp.TOTP(secret).now()})
    assert confirm.status_code == 200
    codes = confirm.json()["backup_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10 and all(len(c) == 11 and c[5] == "-" for c in codes)
    hashes = await accounts_db.fetch("SELECT code_hash FROM mfa_backup_codes WHERE user_id = $1", account.id)
    assert len(hashes) == 10 and not any(code.encode() in row["code_hash"] for row in hashes for code in codes)
    me = (await api.get("/api/v1/me", headers=account.headers)).json()
    assert me["mfa_enabled"] is True and me["backup_codes_left"] == 10
    assert (await api.post("/api/v1/me/mfa/totp", headers=account.headers)).status_code == 409


async def test_two_step_login_and_replay(api: httpx.AsyncClient, app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    account = await enable_mfa(api, await make_account(app, accounts_db, "two@example.org"))
    assert account.totp_secret is not None
    token = await _challenge(api, "two@example.org")
    # The code used to confirm enrolment is spent: the same step is refused (replay).
    replay = await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": pyotp.TOTP(account.totp_secret).now()})
    assert replay.status_code == 401 and "wrong code" in error_of(replay)["message"]
    ahead = code_at(account.totp_secret, +1)
    signed_in = await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": ahead})
    assert signed_in.status_code == 200, signed_in.text
    session = signed_in.json()
    assert session["access_token"] and session["user"]["mfa_enabled"] is True
    assert (await api.get("/api/v1/me", headers={"Authorization": f"Bearer {session['access_token']}"})).status_code == 200
    # The challenge is spent, and the code of the step before the last one used never works again.
    again = await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": ahead})
    assert again.status_code == 401
    second = await _challenge(api, "two@example.org")
    assert (await api.post("/api/v1/auth/mfa", json={"mfa_token": second, "code": ahead})).status_code == 401
    assert (await api.post("/api/v1/auth/mfa", json={"mfa_token": second,
                                                     "code": code_at(account.totp_secret, 0)})).status_code == 401


async def test_backup_codes_work_once(api: httpx.AsyncClient, app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    account = await enable_mfa(api, await make_account(app, accounts_db, "backup@example.org"))
    code = account.backup_codes[0]
    token = await _challenge(api, "backup@example.org")
    used = await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": code.upper().replace("-", " ")})
    assert used.status_code == 200, used.text
    assert used.json()["user"]["backup_codes_left"] == 9
    token = await _challenge(api, "backup@example.org")
    assert (await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": code})).status_code == 401
    # New codes replace the old ones (needs a valid code).
    fresh = await api.post("/api/v1/me/mfa/backup-codes", headers=account.headers, json={"code": account.backup_codes[1]})
    assert fresh.status_code == 200 and len(fresh.json()["backup_codes"]) == 10
    token = await _challenge(api, "backup@example.org")
    assert (await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": account.backup_codes[2]})).status_code == 401
    assert (await api.post("/api/v1/auth/mfa", json={"mfa_token": token,
                                                     "code": fresh.json()["backup_codes"][0]})).status_code == 200


async def test_five_wrong_codes_lock_for_fifteen_minutes(api: httpx.AsyncClient, app: FastAPI,
                                                         accounts_db: asyncpg.Pool) -> None:
    account = await enable_mfa(api, await make_account(app, accounts_db, "lock@example.org"))
    assert account.totp_secret is not None
    token = await _challenge(api, "lock@example.org")
    wrong = "999999" if pyotp.TOTP(account.totp_secret).now() != "999999" else "888888"
    for attempt in range(1, 5):
        response = await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": wrong})
        assert response.status_code == 401 and f"({5 - attempt} attempts left)" in error_of(response)["message"]
    fifth = await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": wrong})
    assert fifth.status_code == 429 and fifth.headers["retry-after"] == "900"
    # Locked: a new challenge with the right code is refused too, for the rest of the 15 minutes.
    token = await _challenge(api, "lock@example.org")
    locked = await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": code_at(account.totp_secret, 1)})
    assert locked.status_code == 429 and 890 <= int(locked.headers["retry-after"]) <= 900
    until = await accounts_db.fetchval("SELECT mfa_locked_until - now() FROM users WHERE id = $1", account.id)
    assert 14 * 60 < until.total_seconds() <= 15 * 60


async def test_disabling_needs_a_valid_code(api: httpx.AsyncClient, app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    account = await enable_mfa(api, await make_account(app, accounts_db, "off@example.org"))
    assert account.totp_secret is not None
    refused = await api.post("/api/v1/me/mfa/totp/disable", headers=account.headers, json={"code": "12345678ab"})
    assert refused.status_code == 403
    done = await api.post("/api/v1/me/mfa/totp/disable", headers=account.headers,
                          json={"code": code_at(account.totp_secret, 1)})
    assert done.status_code == 204
    row = await accounts_db.fetchrow("SELECT totp_secret, totp_enabled_at FROM users WHERE id = $1", account.id)
    assert row["totp_secret"] is None and row["totp_enabled_at"] is None
    assert await accounts_db.fetchval("SELECT count(*) FROM mfa_backup_codes WHERE user_id = $1", account.id) == 0
    login = await api.post("/api/v1/auth/login", json={"email": "off@example.org", "password": PASSWORD})
    assert login.status_code == 200 and login.json()["mfa_required"] is False


async def test_expired_or_unknown_challenge(api: httpx.AsyncClient, app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    account = await enable_mfa(api, await make_account(app, accounts_db, "late@example.org"))
    assert account.totp_secret is not None
    token = await _challenge(api, "late@example.org")
    await accounts_db.execute("UPDATE mfa_challenges SET expires_at = now() - interval '1 second'")
    late = await api.post("/api/v1/auth/mfa", json={"mfa_token": token, "code": code_at(account.totp_secret, 1)})
    assert late.status_code == 401
    assert (await api.post("/api/v1/auth/mfa", json={"mfa_token": "nrm_made_up", "code": "123456"})).status_code == 401
    assert (await api.post("/api/v1/auth/mfa", json={"code": "123456"})).status_code == 401


def test_matching_step_window() -> None:
    secret = mfa.new_secret()
    now = 1_700_000_000.0
    step = int(now // 30)
    totp = pyotp.TOTP(secret)
    assert mfa.matching_step(secret, totp.at(now), now) == step
    assert mfa.matching_step(secret, totp.at(now - 30), now) == step - 1
    assert mfa.matching_step(secret, totp.at(now + 30), now) == step + 1
    assert mfa.matching_step(secret, totp.at(now + 90), now) is None
    assert mfa.matching_step(secret, "12345", now) is None and mfa.matching_step(secret, "abcdef", now) is None
