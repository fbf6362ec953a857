"""Access tokens under attack (alg none, wrong key, expired, tampered claims, wrong audience,
issuer or type), over HTTP and at the verifier; plus the pure helpers (emails, CSRF, keys)."""

from __future__ import annotations

import base64
import json
import time
import uuid
import warnings

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI

from deployments.auth.accounts import normalize_email
from deployments.auth.csrf import csrf_token, csrf_valid
from deployments.auth.keys import derive, keys_for
from deployments.auth.oidc import safe_next
from deployments.auth.tokens import AUDIENCE, ISSUER, AccessTokens, TokenError
from tests.deployments.auth.support import error_of, make_account

KEY = derive("x" * 48, "jwt-access")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(user_id: uuid.UUID, **overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(user_id), "role": "reader",
                                 "sid": str(uuid.uuid4()), "iat": now, "exp": now + 600, "ims": now * 1000}
    claims.update(overrides)
    return claims


def test_verifier_accepts_its_own_tokens_and_caches_them() -> None:
    tokens = AccessTokens(KEY, 900)
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    token = tokens.issue(user_id, "admin", session_id)
    principal = tokens.verify(token)
    assert (principal.user_id, principal.role, principal.session_id) == (user_id, "admin", session_id)
    assert principal.is_admin and tokens.verify(token) == principal
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "at+jwt"}


@pytest.mark.parametrize("attack", ["alg_none", "wrong_key", "expired", "tampered_role", "wrong_audience",
                                    "wrong_issuer", "wrong_type", "hs512", "missing_sid", "bad_role", "garbage"])
def test_verifier_refuses(attack: str) -> None:
    tokens = AccessTokens(KEY, 900)
    user_id = uuid.uuid4()
    headers = {"typ": "at+jwt"}
    if attack == "alg_none":
        token = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(_claims(user_id))}."
    elif attack == "wrong_key":
        token = jwt.encode(_claims(user_id), derive("y" * 48, "jwt-access"), "HS256", headers)
    elif attack == "expired":
        token = jwt.encode(_claims(user_id, exp=int(time.time()) - 1), KEY, "HS256", headers)
    elif attack == "tampered_role":
        header, _, signature = tokens.issue(user_id, "reader", uuid.uuid4()).split(".")
        token = f"{header}.{_b64(_claims(user_id, role='admin'))}.{signature}"
    elif attack == "wrong_audience":
        token = jwt.encode(_claims(user_id, aud="newsray:oidc-state"), KEY, "HS256", headers)
    elif attack == "wrong_issuer":
        token = jwt.encode(_claims(user_id, iss="evil"), KEY, "HS256", headers)
    elif attack == "wrong_type":
        token = jwt.encode(_claims(user_id), KEY, "HS256", {"typ": "JWT"})
    elif attack == "hs512":
        with warnings.catch_warnings():  # PyJWT warns that 32 bytes are short for HS512: the point here
            warnings.simplefilter("ignore")
            token = jwt.encode(_claims(user_id), KEY, "HS512", headers)
    elif attack == "missing_sid":
        claims = _claims(user_id)
        del claims["sid"]
        token = jwt.encode(claims, KEY, "HS256", headers)
    elif attack == "bad_role":
        token = jwt.encode(_claims(user_id, role="root"), KEY, "HS256", headers)
    else:
        token = "not.a.jwt"
    with pytest.raises(TokenError):
        tokens.verify(token)


def test_a_cached_token_still_expires() -> None:
    tokens = AccessTokens(KEY, 900)
    token = tokens.issue(uuid.uuid4(), "reader", uuid.uuid4())
    principal = tokens.verify(token)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token, now=principal.expires_at + 1)


async def test_attacks_over_http(api: httpx.AsyncClient, app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    account = await make_account(app, accounts_db, "target@example.org")
    key = app.state.auth.keys.access_token
    forged = {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64(_claims(account.id, role='admin'))}.",
        "wrong_key": jwt.encode(_claims(account.id), b"k" * 32, "HS256", {"typ": "at+jwt"}),
        "expired": jwt.encode(_claims(account.id, exp=int(time.time()) - 5), key, "HS256", {"typ": "at+jwt"}),
        "tampered": ".".join([account.access_token.split(".")[0], _b64(_claims(account.id, role="admin")),
                              account.access_token.split(".")[2]]),
        "wrong_audience": jwt.encode(_claims(account.id, aud="other"), key, "HS256", {"typ": "at+jwt"}),
        "refresh_as_access": account.refresh_token,
    }
    for name, token in forged.items():
        for path in ("/api/v1/me", "/api/v1/admin/users", "/api/v1/articles"):
            response = await api.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (name, path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert error_of(response)["message"].startswith("auth: ")
    # The genuine token works, and a role claim cannot be raised by the holder.
    assert (await api.get("/api/v1/me", headers=account.headers)).status_code == 200
    assert (await api.get("/api/v1/admin/users", headers=account.headers)).status_code == 403


def test_email_normalization() -> None:
    assert normalize_email("  John.Doe+news@EXAMPLE.org ") == "john.doe+news@example.org"
    assert normalize_email("user@bücher.example") == "user@xn--bcher-kva.example"
    for bad in ("", "no-at", "two@@example.org", "a@b", ".dot@example.org", "a..b@example.org",
                "ü@example.org", "x@-bad-.org", "x" * 65 + "@example.org", "a b@example.org"):
        with pytest.raises(ValueError):
            normalize_email(bad)


def test_csrf_tokens_are_bound_to_the_session_and_key() -> None:
    key, other_key = derive("s" * 48, "csrf"), derive("t" * 48, "csrf")
    session, other_session = uuid.uuid4(), uuid.uuid4()
    token = csrf_token(key, session)
    assert csrf_valid(key, session, token)
    assert not csrf_valid(key, other_session, token)
    assert not csrf_valid(other_key, session, token)
    assert not csrf_valid(key, session, None) and not csrf_valid(key, session, "")


def test_keys_differ_per_purpose_and_secret() -> None:
    keys = keys_for("q" * 48)
    values = [keys.access_token, keys.csrf, keys.totp_encryption, keys.backup_codes, keys.oidc_state, keys.rate_limit]
    assert len(set(values)) == len(values) and all(len(v) == 32 for v in values)
    assert keys_for("r" * 48).access_token != keys.access_token
    with pytest.raises(ValueError):
        keys_for("")


def test_only_local_paths_are_followed_after_login() -> None:
    assert safe_next("/reader?x=1") == "/reader?x=1"
    for bad in (None, "", "https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:alert(1)",
                "/ok\nSet-Cookie: x"):
        assert safe_next(bad) == "/"
