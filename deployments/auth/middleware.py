"""Two pure ASGI middlewares (no BaseHTTPMiddleware: its per-request task costs more than the
work done here).

AuthMiddleware resolves the caller once per request from `Authorization: Bearer` or the
access cookie, applies the per-user API limit and early revocation, and leaves a Principal in
the scope for the dependencies. Anonymous requests pass straight through.

SecurityHeadersMiddleware adds the headers every response should carry.
"""

from __future__ import annotations

from dataclasses import replace
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deployments.auth import cookies
from deployments.auth.context import AuthContext
from deployments.auth.csrf import SAFE_METHODS, csrf_valid
from deployments.auth.tokens import Principal, TokenError
from deployments.errors import error_response
from deployments.web import PAGE_SECURITY_HEADERS

PRINCIPAL_SCOPE_KEY = "newsray.principal"
_BEARER = b"bearer "
_ACCESS_COOKIE = cookies.ACCESS.encode()


def _credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, bool, str | None]:
    """(token, came from the cookie, X-CSRF-Token). A Bearer header wins over the cookie."""
    bearer = cookie = csrf = None
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() == _BEARER:
                bearer = value[7:].strip().decode("latin-1")
        elif name == b"cookie":
            if _ACCESS_COOKIE in value:
                cookie = value
        elif name == b"x-csrf-token":
            csrf = value.decode("latin-1")
    if bearer:
        return bearer, False, csrf
    if cookie is not None:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie.decode("latin-1"))
        except Exception:  # noqa: BLE001 - a malformed Cookie header is the client's problem
            return None, False, csrf
        morsel = jar.get(cookies.ACCESS)
        if morsel is not None and morsel.value:
            return morsel.value, True, csrf
    return None, False, csrf


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        token, via_cookie, csrf_header = _credentials(scope["headers"])
        if token is None:
            await self.app(scope, receive, send)
            return
        context: AuthContext = scope["app"].state.auth
        try:
            principal = context.tokens.verify(token, via_cookie)
        except TokenError as exc:
            if via_cookie or scope["type"] == "websocket":
                # A stale cookie: browsers keep sending it until it expires; the request goes
                # on anonymous (public pages work, endpoints that need a user say 401).
                await self.app(scope, receive, send)
                return
            await error_response(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})(
                scope, receive, send)
            return
        if scope["type"] == "http":
            if via_cookie and scope["method"] not in SAFE_METHODS:
                if not csrf_valid(context.keys.csrf, principal.session_id, csrf_header):
                    principal = replace(principal, csrf_ok=False)
            decision = await context.api_limiter.hit(principal.user_id, principal.issued_ms)
            if decision.revoked:
                if via_cookie:
                    await self.app(scope, receive, send)
                    return
                await error_response(401, "auth: this session has ended, sign in again",
                                     headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})(scope, receive, send)
                return
            if not decision.allowed:
                await error_response(429, "auth: too many requests, slow down",
                                     headers={"Retry-After": str(decision.retry_after_s)})(scope, receive, send)
                return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, send)


def principal_of(scope: Scope) -> Principal | None:
    principal: Principal | None = scope.get(PRINCIPAL_SCOPE_KEY)
    return principal


# Swagger UI and ReDoc load their scripts from a CDN: the page policy would blank them.
_DOC_PATHS = ("/docs", "/redoc")
_NO_STORE_PREFIXES = ("/api/v1/auth", "/api/v1/me", "/api/v1/admin")
_HSTS = "max-age=63072000; includeSubDomains"
_PAGE_HEADERS = [(name.lower().encode(), value.encode()) for name, value in PAGE_SECURITY_HEADERS.items()]


class SecurityHeadersMiddleware:
    """nosniff everywhere; HSTS over https; the strict page policy (CSP with frame-ancestors
    'none', no framing, no referrer) on HTML that did not set its own; no-store on responses
    that carry personal data or tokens."""

    def __init__(self, app: ASGIApp, public_https: bool = False) -> None:
        self.app = app
        self.public_https = public_https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        https = scope.get("scheme") == "https" or self.public_https
        no_store = path.startswith(_NO_STORE_PREFIXES)
        docs = path.startswith(_DOC_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "x-content-type-options" not in headers:
                    headers.append("X-Content-Type-Options", "nosniff")
                if https:
                    headers.append("Strict-Transport-Security", _HSTS)
                if no_store:
                    headers["Cache-Control"] = "no-store"
                if "content-security-policy" not in headers and headers.get("content-type", "").startswith("text/html"):
                    if docs:
                        headers.append("Content-Security-Policy", "frame-ancestors 'none'")
                        headers.append("X-Frame-Options", "DENY")
                    else:
                        for name, value in _PAGE_HEADERS:
                            if name.decode() not in headers:
                                headers.append(name.decode(), value.decode())
            await send(message)

        await self.app(scope, receive, send_with_headers)
