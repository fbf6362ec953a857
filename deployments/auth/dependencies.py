"""FastAPI dependencies for routes that need a user: `current_user`, `require_admin`, and the
shared accessors (pool, auth context, client address)."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from deployments.auth.context import AuthContext, auth_context
from deployments.auth.middleware import principal_of
from deployments.auth.ratelimit import client_address
from deployments.auth.tokens import Principal
from deployments.errors import ApiError, error_response

# Documents the scheme in OpenAPI (the lock in /docs); the middleware already verified the
# token, so this only parses the header.
bearer_scheme = HTTPBearer(auto_error=False, description="An access token from /api/v1/auth/login.")

WWW_AUTHENTICATE = {"WWW-Authenticate": "Bearer"}


class AuthError(ApiError):
    """An ApiError with response headers (WWW-Authenticate, Retry-After)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(status, message, details)
        self.headers = headers or {}

    def response(self) -> Any:
        return error_response(self.status, self.message, self.details, headers=self.headers)


def unauthorized(message: str = "auth: sign in required") -> AuthError:
    return AuthError(401, message, WWW_AUTHENTICATE)


async def current_user(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
) -> Principal:
    principal = principal_of(request.scope)
    if principal is None:
        raise unauthorized()
    if not principal.csrf_ok:
        raise AuthError(403, "auth: missing or invalid CSRF token (send the X-CSRF-Token header)")
    return principal


async def require_admin(principal: Annotated[Principal, Depends(current_user)]) -> Principal:
    if not principal.is_admin:
        raise AuthError(403, "auth: administrators only")
    return principal


def context_of(request: Request) -> AuthContext:
    return auth_context(request.app)


async def pool_of(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = await request.app.state.backends.pool()
    return pool


def address_of(request: Request) -> str:
    context = auth_context(request.app)
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.get("x-forwarded-for"), context.settings.trusted_networks)


CurrentUser = Annotated[Principal, Depends(current_user)]
AdminUser = Annotated[Principal, Depends(require_admin)]
Pool = Annotated[asyncpg.Pool, Depends(pool_of)]
Context = Annotated[AuthContext, Depends(context_of)]
