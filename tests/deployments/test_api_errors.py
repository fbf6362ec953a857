"""Every error is JSON {"error": {...}}; a crash answers 500 and leaves its trace in the log only."""

from __future__ import annotations

import logging

import httpx
import pytest

from deployments.api import create_app
from deployments.errors import INTERNAL_ERROR_MESSAGE
from tests.deployments.support import client_for

SECRET = "postgresql://newsray:s3cret-password@db.internal/newsray"


async def test_unknown_route_is_404_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"error": {"status": 404, "message": "api: not found"}}


async def test_wrong_method_is_405_json(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/articles")
    assert response.status_code == 405
    assert response.json()["error"]["status"] == 405
    assert "GET" in response.headers["allow"]


async def test_a_crashing_route_is_500_json_without_trace(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"cannot reach {SECRET}")

    caplog.set_level(logging.ERROR, logger="newsray.api")
    async with client_for(app) as http:
        response = await http.get("/boom", params={"token": "abc"})
    assert response.status_code == 500
    assert response.json() == {"error": {"status": 500, "message": INTERNAL_ERROR_MESSAGE}}
    for leak in ("Traceback", "RuntimeError", "s3cret", "boom.py", "File "):
        assert leak not in response.text
    # The story is in the server log, with the trace; the query string is not.
    [record] = [r for r in caplog.records if r.name == "newsray.api"]
    assert record.exc_info is not None and "GET /boom" in record.getMessage()
    assert "token" not in record.getMessage()


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert {"/health", "/api/v1/articles", "/api/v1/articles/{article_id}", "/api/v1/sources", "/"} <= set(spec["paths"])
    listing = spec["paths"]["/api/v1/articles"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"limit", "cursor", "source", "language", "q", "since", "topic"}
    assert "ErrorResponse" in spec["components"]["schemas"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
