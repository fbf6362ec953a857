"""Wire the accounts layer into the API app: routers, middleware, error recording, CORS."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI, Request
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from cluster.db import StoreError
from cluster.store import error_logs as error_store
from deployments.auth.context import AuthContext
from deployments.auth.csrf import HEADER as CSRF_HEADER
from deployments.auth.dependencies import AuthError
from deployments.auth.middleware import AuthMiddleware, SecurityHeadersMiddleware, principal_of
from deployments.auth.settings import AuthSettings

logger = logging.getLogger("newsray.api")


def install_auth(app: FastAPI, settings: AuthSettings | None = None) -> None:
    """Call once from create_app, after app.state.backends is set."""
    from deployments.routes import admin, auth, me, subscriptions

    context = AuthContext(app.state.backends, settings)
    app.state.auth = context
    app.state.error_hooks = [record_server_error]
    app.state.error_writes = set()
    app.add_exception_handler(AuthError, _auth_error)
    for module in (auth, me, subscriptions, admin):
        app.include_router(module.router)
    # add_middleware wraps: the last added runs first. CORS answers preflights before anything,
    # the headers go on every response (errors from the auth middleware included).
    app.add_middleware(AuthMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, public_https=_public_https())
    _document_middleware_errors(app)
    origins = context.settings.cors_origin_list
    if origins:
        # Cross-origin clients use Bearer tokens: cookies (and so CSRF) stay same-origin.
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                           allow_headers=["authorization", "content-type", CSRF_HEADER], max_age=600)


_MIDDLEWARE_ERRORS = {
    "401": "The bearer token is invalid, expired or revoked.",
    "429": "Too many requests for this user; see Retry-After.",
}


def _document_middleware_errors(app: FastAPI) -> None:
    """The auth middleware can answer 401 and 429 on any API path (a bad bearer token, the
    per-user limit), and FastAPI 400 on any body it cannot decode: say so in every operation
    of the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        reference = {"$ref": "#/components/schemas/ErrorResponse"}
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                documented = dict(_MIDDLEWARE_ERRORS)
                if "requestBody" in operation:
                    # FastAPI answers 400 itself for a body it cannot decode (not UTF-8).
                    documented["400"] = "The body could not be parsed."
                for status, description in documented.items():
                    responses.setdefault(status, {"description": description,
                                                  "content": {"application/json": {"schema": reference}}})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _public_https() -> bool:
    from cluster.settings import get_settings

    public = get_settings().public_url
    return bool(public and public.startswith("https://"))


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    response: Response = exc.response()
    return response


def record_server_error(request: Request, exc: BaseException) -> None:
    """Error hook (deployments.errors): write the failure to error_logs in the background.
    Never raises; a database error is not recorded in the database that just failed."""
    if isinstance(exc, StoreError):
        return
    try:
        principal = principal_of(request.scope)
        fields = {
            "method": request.method, "path": request.url.path, "status": 500,
            "error_type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc) or type(exc).__name__,
            "user_id": principal.user_id if principal else None,
            "request_id": request.headers.get("x-request-id"),
        }
        task = asyncio.get_running_loop().create_task(_write_error(request.app, fields))
        writes: set[asyncio.Task[None]] = request.app.state.error_writes
        writes.add(task)
        task.add_done_callback(writes.discard)
    except Exception as hook_error:  # noqa: BLE001 - recording must never turn into a second failure
        logger.warning("api: could not record a server error: %s", type(hook_error).__name__)


async def _write_error(app: FastAPI, fields: dict[str, object]) -> None:
    try:
        pool = await app.state.backends.pool()
        await error_store.record_error(pool, **fields)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001
        logger.warning("api: could not write to error_logs: %s", type(exc).__name__)


async def drain_error_writes(app: FastAPI) -> None:
    """Wait for pending error_logs writes (tests, shutdown)."""
    writes: set[asyncio.Task[None]] = app.state.error_writes
    if writes:
        await asyncio.gather(*list(writes), return_exceptions=True)

