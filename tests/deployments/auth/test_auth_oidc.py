"""OpenID Connect sign-in against a real provider on 127.0.0.1 (Authlib's server side):
new accounts, linking by verified email only, PKCE, and forged callbacks (state and nonce
mismatch, foreign signatures) refused."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from deployments.api import create_app
from deployments.auth.context import AuthContext
from deployments.auth.settings import load_auth_settings
from tests.deployments.auth.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.deployments.auth.support import PASSWORD, client_for, code_at, enable_mfa, error_of, make_account

NAME = "testidp"
CALLBACK = f"http://testserver/api/v1/auth/oidc/{NAME}/callback"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    # Authlib's server refuses plain http unless told; the provider is on loopback only.
    previous = os.environ.get("AUTHLIB_INSECURE_TRANSPORT")
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with running_provider([CALLBACK]) as running:
        yield running
    if previous is None:
        os.environ.pop("AUTHLIB_INSECURE_TRANSPORT", None)
    else:
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = previous


@pytest.fixture
def oidc_app(app: FastAPI, provider: Provider) -> FastAPI:
    provider.tamper_nonce = provider.sign_with_other_key = False
    app.state.auth = AuthContext(app.state.backends, load_auth_settings(
        oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
        oidc_name=NAME, oidc_label="Test IdP"))
    return app


@pytest_asyncio.fixture(loop_scope="session")
async def browser(oidc_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(oidc_app) as http:
        yield http


async def _to_provider(browser: httpx.AsyncClient, next_path: str = "/") -> str:
    start = await browser.get(f"/api/v1/auth/oidc/{NAME}/login", params={"next": next_path})
    assert start.status_code == 302, start.text
    assert "newsray_oidc" in start.cookies
    return start.headers["location"]


async def _provider_answer(location: str) -> str:
    """The provider's authorization endpoint, as the browser would visit it; its redirect back."""
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        answer = await http.get(location)
    assert answer.status_code == 302, answer.text
    back = answer.headers["location"]
    assert back.startswith(CALLBACK), back
    return back.removeprefix("http://testserver")


async def test_sign_in_creates_an_account_with_pkce(browser: httpx.AsyncClient, provider: Provider,
                                                    accounts_db: asyncpg.Pool) -> None:
    provider.as_user("sub-alice", "Alice@Example.org")
    location = await _to_provider(browser, "/reader")
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(f"{provider.issuer}/authorize?")
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0] and query["scope"] == ["openid email profile"]
    assert query["redirect_uri"] == [CALLBACK] and query["client_id"] == [CLIENT_ID]

    callback = await browser.get(await _provider_answer(location))
    assert callback.status_code == 302, callback.text
    assert callback.headers["location"] == "/reader"
    set_cookies = callback.headers.get_list("set-cookie")
    assert any(c.startswith("newsray_access=") and "HttpOnly" in c and "SameSite=lax" in c for c in set_cookies)
    assert any(c.startswith("newsray_refresh=") and "Path=/api/v1/auth" in c for c in set_cookies)
    # The code was exchanged with the PKCE verifier.
    assert provider.token_requests[-1].get("code_verifier")

    me = await browser.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "alice@example.org" and me.json()["providers"] == [NAME]
    assert me.json()["has_password"] is False and me.json()["email_verified"] is True

    # The second sign-in finds the same account through the linked identity.
    provider.as_user("sub-alice", "alice.renamed@example.org")
    again = await browser.get(await _provider_answer(await _to_provider(browser)))
    assert again.status_code == 302
    assert await accounts_db.fetchval("SELECT count(*) FROM users") == 1


async def test_links_an_existing_account_only_through_a_verified_email(
        browser: httpx.AsyncClient, provider: Provider, oidc_app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    verified = await make_account(oidc_app, accounts_db, "bob@example.org")
    await accounts_db.execute("UPDATE users SET email_verified = true WHERE id = $1", verified.id)
    provider.as_user("sub-bob", "bob@example.org", verified=False)
    refused = await browser.get(await _provider_answer(await _to_provider(browser)))
    assert refused.status_code == 403 and "did not confirm your email" in error_of(refused)["message"]
    assert await accounts_db.fetchval("SELECT count(*) FROM oidc_identities") == 0

    provider.as_user("sub-bob", "BOB@example.org", verified=True)
    linked = await browser.get(await _provider_answer(await _to_provider(browser)))
    assert linked.status_code == 302
    me = (await browser.get("/api/v1/me")).json()
    assert me["email"] == "bob@example.org" and me["has_password"] is True and me["providers"] == [NAME]
    assert await accounts_db.fetchval("SELECT count(*) FROM users") == 1
    # The account's own sessions are untouched by the link.
    assert (await browser.get("/api/v1/me", headers=verified.headers)).status_code == 200


async def test_a_squatted_unverified_account_is_claimed_by_the_verified_owner(
        browser: httpx.AsyncClient, provider: Provider, oidc_app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    # Someone registered the victim's address with a password of their own (we send no mail,
    # so password sign-ups stay unverified) and waits for the victim to arrive.
    squatter = await make_account(oidc_app, accounts_db, "victim@example.org")
    provider.as_user("sub-victim", "victim@example.org", verified=True)
    claimed = await browser.get(await _provider_answer(await _to_provider(browser)))
    assert claimed.status_code == 302
    me = (await browser.get("/api/v1/me")).json()
    assert me["id"] == str(squatter.id) and me["has_password"] is False and me["email_verified"] is True
    async with client_for(oidc_app, address="10.7.0.1") as squatter_http:
        assert (await squatter_http.get("/api/v1/me", headers=squatter.headers)).status_code == 401
        assert (await squatter_http.post("/api/v1/auth/refresh",
                                         json={"refresh_token": squatter.refresh_token})).status_code == 401
        login = await squatter_http.post("/api/v1/auth/login", json={"email": "victim@example.org",
                                                                     "password": PASSWORD})
        assert login.status_code == 401


async def test_state_mismatch_and_missing_state_are_refused(browser: httpx.AsyncClient, provider: Provider,
                                                            oidc_app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    provider.as_user("sub-carol", "carol@example.org")
    back = await _provider_answer(await _to_provider(browser))
    forged = back.replace("state=", "state=x")
    mismatch = await browser.get(forged)
    assert mismatch.status_code == 400 and "state mismatch" in error_of(mismatch)["message"]
    # A callback in a browser that never started this sign-in (login CSRF): no state cookie.
    back = await _provider_answer(await _to_provider(browser))
    async with client_for(oidc_app) as stranger:
        elsewhere = await stranger.get(back)
    assert elsewhere.status_code == 400 and "started in another browser" in error_of(elsewhere)["message"]
    assert await accounts_db.fetchval("SELECT count(*) FROM users") == 0


async def test_nonce_mismatch_and_foreign_signature_are_refused(browser: httpx.AsyncClient, provider: Provider,
                                                                accounts_db: asyncpg.Pool) -> None:
    provider.as_user("sub-dave", "dave@example.org")
    provider.tamper_nonce = True
    replayed = await browser.get(await _provider_answer(await _to_provider(browser)))
    assert replayed.status_code == 400 and "ID token failed validation" in error_of(replayed)["message"]
    provider.tamper_nonce = False
    provider.sign_with_other_key = True
    forged = await browser.get(await _provider_answer(await _to_provider(browser)))
    assert forged.status_code == 400 and "ID token failed validation" in error_of(forged)["message"]
    assert await accounts_db.fetchval("SELECT count(*) FROM users") == 0


async def test_mfa_still_applies_after_a_provider_sign_in(browser: httpx.AsyncClient, provider: Provider,
                                                          oidc_app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    account = await make_account(oidc_app, accounts_db, "erin@example.org")
    await accounts_db.execute("UPDATE users SET email_verified = true WHERE id = $1", account.id)
    async with client_for(oidc_app) as http:
        await enable_mfa(http, account)
    assert account.totp_secret is not None
    provider.as_user("sub-erin", "erin@example.org")
    callback = await browser.get(await _provider_answer(await _to_provider(browser)))
    assert callback.status_code == 302 and callback.headers["location"] == "/?mfa=required"
    assert not any(c.startswith("newsray_access=") for c in callback.headers.get_list("set-cookie"))
    assert (await browser.get("/api/v1/me")).status_code == 401
    done = await browser.post("/api/v1/auth/mfa", json={"code": code_at(account.totp_secret, 1)})
    assert done.status_code == 200, done.text
    assert done.json()["access_token"] is None and done.json()["csrf_token"]
    assert (await browser.get("/api/v1/me")).json()["email"] == "erin@example.org"


async def test_providers_unknown_and_unreachable(browser: httpx.AsyncClient, app: FastAPI, closed_port: int,
                                                 accounts_db: asyncpg.Pool) -> None:
    listed = await browser.get("/api/v1/auth/providers")
    assert listed.json() == {"items": [{"name": NAME, "label": "Test IdP",
                                        "login_url": f"/api/v1/auth/oidc/{NAME}/login"}]}
    assert (await browser.get("/api/v1/auth/oidc/nope/login")).status_code == 404
    assert (await browser.get("/api/v1/auth/oidc/nope/callback?code=x&state=y")).status_code == 404
    down = create_app()
    down.state.auth = AuthContext(down.state.backends, load_auth_settings(
        oidc_issuer=f"http://127.0.0.1:{closed_port}", oidc_client_id="x", oidc_name="down"))
    async with client_for(down) as http:
        unreachable = await http.get("/api/v1/auth/oidc/down/login")
    assert unreachable.status_code == 502 and "cannot be reached" in error_of(unreachable)["message"]
    google = create_app()
    google.state.auth = AuthContext(google.state.backends, load_auth_settings(oidc_google_client_id="id.apps"))
    async with client_for(google) as http:
        assert (await http.get("/api/v1/auth/providers")).json()["items"][0]["name"] == "google"
