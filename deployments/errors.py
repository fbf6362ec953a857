"""One JSON shape for every error: {"error": {"status", "message", "details"?}}.

Clients (the reader's page, scripts, other services) parse one format whatever went wrong, and
a failure never leaks a stack trace or a connection string: those go to the server log only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from cluster.db import StoreError

logger = logging.getLogger("newsray.api")

INTERNAL_ERROR_MESSAGE = "api: internal server error"
STORE_UNAVAILABLE_MESSAGE = "api: the database is unavailable, try again shortly"


class ApiError(Exception):
    """An error the API reports as is: the message is meant for the client."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


def error_response(status: int, message: str, details: list[dict[str, Any]] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def invalid_parameter(location: str, name: str, message: str) -> ApiError:
    """A 422 shaped like FastAPI's own validation errors, for checks made inside a route."""
    return ApiError(422, "api: invalid request parameters",
                    [{"loc": [location, name], "msg": message, "type": "value_error"}])


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc/msg/type: pydantic's `ctx` may hold exception objects (not JSON) and `input`
    # would echo whatever the client sent back into the response.
    return [{"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
            for error in exc.errors()]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.details)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    # Starlette's own errors (unknown route, wrong method) carry the bare phrase.
    message = detail.lower() if detail == phrase else detail
    if not message.startswith("api: "):
        message = f"api: {message}"
    return error_response(exc.status_code, message, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "api: invalid request parameters", _validation_details(exc))


def unexpected_error_response(request: Request, exc: BaseException) -> Response:
    """Log the whole story server-side; tell the client only that it failed."""
    # Hooks set by the app (deployments.auth.install: the error_logs table); they never raise.
    for hook in getattr(request.app.state, "error_hooks", ()):
        hook(request, exc)
    if isinstance(exc, StoreError):
        # StoreError messages mask passwords, but host names stay out of responses too.
        logger.error("api: %s %s failed: %s", request.method, request.url.path, exc)
        return error_response(503, STORE_UNAVAILABLE_MESSAGE)
    # The path only: a query string may carry tokens.
    logger.exception("api: unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, INTERNAL_ERROR_MESSAGE)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    return unexpected_error_response(request, exc)


class JsonErrorRoute(APIRoute):
    """A route that turns any unexpected exception into the JSON 500 itself.

    Starlette's last-resort handler (ServerErrorMiddleware) re-raises after answering, so the
    server logs a second traceback and test clients see the exception; catching it here keeps
    one log line per failure. HTTP and validation errors pass through to their handlers.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (StarletteHTTPException, RequestValidationError, ApiError):
                raise
            except Exception as exc:  # noqa: BLE001 - the point of this route class
                return unexpected_error_response(request, exc)

        return guarded


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    # Backstop for errors outside a route (middleware, mounts): same JSON, no trace.
    app.add_exception_handler(Exception, _unexpected_error)
