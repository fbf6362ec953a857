"""The browser side: cookie sessions with CSRF on writes, security headers, CORS off unless
configured, and no password, token or secret in any log line."""

from __future__ import annotations

import logging

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from deployments.api import create_app
from deployments.auth.settings import get_auth_settings
from tests.deployments.auth.support import PASSWORD, client_for, error_of, make_account


async def _cookie_login(http: httpx.AsyncClient, email: str) -> str:
    response = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD, "use_cookies": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["access_token"] is None and body["refresh_token"] is None and body["csrf_token"]
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    assert set(cookies) == {"newsray_access", "newsray_refresh", "newsray_csrf"}
    assert "HttpOnly" in cookies["newsray_access"] and "SameSite=lax" in cookies["newsray_access"]
    assert "HttpOnly" in cookies["newsray_refresh"] and "Path=/api/v1/auth" in cookies["newsray_refresh"]
    assert "SameSite=strict" in cookies["newsray_refresh"]
    assert "HttpOnly" not in cookies["newsray_csrf"]  # the page's script must read it
    assert "Secure" not in cookies["newsray_access"]  # plain http here; https gets Secure
    return str(body["csrf_token"])


async def test_cookie_session_needs_csrf_on_writes(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    await make_account(app, accounts_db, "web@example.org")
    async with client_for(app) as browser:
        csrf = await _cookie_login(browser, "web@example.org")
        assert browser.cookies["newsray_csrf"] == csrf
        assert (await browser.get("/api/v1/me")).status_code == 200  # reads need no token
        forged = await browser.post("/api/v1/me/folders", json={"name": "From evil.example"})
        assert forged.status_code == 403 and "CSRF" in error_of(forged)["message"]
        wrong = await browser.post("/api/v1/me/folders", json={"name": "x"}, headers={"X-CSRF-Token": csrf[:-2] + "AA"})
        assert wrong.status_code == 403
        made = await browser.post("/api/v1/me/folders", json={"name": "Mine"}, headers={"X-CSRF-Token": csrf})
        assert made.status_code == 201
        # Refresh by cookie is a write too.
        assert (await browser.post("/api/v1/auth/refresh")).status_code == 403
        refreshed = await browser.post("/api/v1/auth/refresh", headers={"X-CSRF-Token": csrf})
        assert refreshed.status_code == 200 and refreshed.json()["access_token"] is None
        assert (await browser.post("/api/v1/auth/logout")).status_code == 403
        out = await browser.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
        assert out.status_code == 204 and "newsray_access" not in browser.cookies
        assert (await browser.get("/api/v1/me")).status_code == 401


async def test_bearer_requests_need_no_csrf(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    account = await make_account(app, accounts_db, "cli@example.org")
    async with client_for(app) as http:
        assert (await http.post("/api/v1/me/folders", json={"name": "Scripts"}, headers=account.headers)).status_code == 201


async def test_security_headers(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    async with client_for(app) as http:
        page = await http.get("/")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert page.headers["x-content-type-options"] == "nosniff" and page.headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in page.headers  # plain http
        api = await http.get("/api/v1/articles")
        assert api.headers["x-content-type-options"] == "nosniff"
        docs = await http.get("/docs")
        assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 1)),
                                 base_url="https://testserver") as https:
        secure = await https.get("/")
        assert secure.headers["strict-transport-security"].startswith("max-age=")
        await make_account(app, accounts_db, "tls@example.org")
        login = await https.post("/api/v1/auth/login", json={"email": "tls@example.org", "password": PASSWORD,
                                                              "use_cookies": True})
        assert all("Secure" in c for c in login.headers.get_list("set-cookie"))


async def test_cors_is_off_unless_configured(app: FastAPI, accounts_db: asyncpg.Pool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    preflight = {"Origin": "https://reader.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}
    async with client_for(app) as http:
        answer = await http.options("/api/v1/me/folders", headers=preflight)
        assert "access-control-allow-origin" not in answer.headers
        plain = await http.get("/api/v1/articles", headers={"Origin": "https://reader.example"})
        assert "access-control-allow-origin" not in plain.headers
    monkeypatch.setenv("NEWSRAY_CORS_ORIGINS", "https://reader.example")
    get_auth_settings.cache_clear()
    configured = create_app()
    get_auth_settings.cache_clear()
    async with client_for(configured) as http:
        allowed = await http.options("/api/v1/me/folders", headers=preflight)
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://reader.example"
        other = await http.options("/api/v1/me/folders", headers={**preflight, "Origin": "https://evil.example"})
        assert other.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_no_secret_token_or_password_in_logs(app: FastAPI, accounts_db: asyncpg.Pool,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    account = await make_account(app, accounts_db, "quiet@example.org")
    secrets_seen = [PASSWORD, account.access_token, account.refresh_token, app.state.auth._secret()]
    async with client_for(app) as http:
        registered = await http.post("/api/v1/auth/register", json={"email": "loud@example.org", "password": PASSWORD + "!"})
        secrets_seen += [PASSWORD + "!", registered.json()["access_token"], registered.json()["refresh_token"]]
        await http.post("/api/v1/auth/login", json={"email": "quiet@example.org", "password": "wrong password 1"})
        secrets_seen.append("wrong password 1")
        refreshed = (await http.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})).json()
        secrets_seen += [refreshed["access_token"], refreshed["refresh_token"]]
        await http.post("/api/v1/auth/refresh", json={"refresh_token": account.refresh_token})  # reuse: logged
        await http.get("/api/v1/me", headers={"Authorization": "Bearer not-a-real-token-value"})
        secrets_seen.append("not-a-real-token-value")
        enrol = (await http.post("/api/v1/me/mfa/totp", headers={"Authorization": f"Bearer {refreshed['access_token']}"})).json()
        secrets_seen.append(enrol["secret"])
    assert any("already used" in r.getMessage() or "rotated refresh token" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        text = record.getMessage() + str(record.args or "") + (record.exc_text or "")
        for secret in secrets_seen:
            assert secret not in text, (record.name, text[:200])


def test_production_refuses_a_weak_secret_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from cluster.settings import SettingsError, get_settings

    monkeypatch.setenv("NEWSRAY_ENVIRONMENT", "production")
    monkeypatch.setenv("NEWSRAY_SECRET_KEY", "changeme-changeme-changeme-changeme")
    get_settings.cache_clear()
    try:
        with pytest.raises(SettingsError, match="NEWSRAY_SECRET_KEY: is a placeholder"):
            create_app()
    finally:
        get_settings.cache_clear()


async def test_login_accepts_json_only(app: FastAPI, accounts_db: asyncpg.Pool) -> None:
    """A cross-site form can send text/plain or form data without a preflight, never JSON: a
    login (or any write) that insisted on nothing would be open to login CSRF."""
    await make_account(app, accounts_db, "forms@example.org")
    body = '{"email": "forms@example.org", "password": "%s", "use_cookies": true}' % PASSWORD
    async with client_for(app) as http:
        for content_type in ("text/plain", "application/x-www-form-urlencoded"):
            response = await http.post("/api/v1/auth/login", content=body, headers={"Content-Type": content_type})
            assert response.status_code == 422, (content_type, response.text)
            assert "newsray_access" not in response.headers.get("set-cookie", "")
