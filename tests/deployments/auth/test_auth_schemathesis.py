"""Schemathesis over the whole OpenAPI document with a signed-in admin: no 500s, and every
response matches the schema (status code, content type, headers, body).

The app runs under a real uvicorn on 127.0.0.1 in a thread (its own event loop, pool and Redis
client, closed when it stops). Bounded: a handful of examples per operation.
"""

from __future__ import annotations

import asyncio
import atexit
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_headers_conformance, response_schema_conformance, status_code_conformance,
)

from cluster.db import close_pool, create_pool
from cluster.redis_client import close_redis
from cluster.store.enrichment import write_enrichment
from deployments.api import create_app
from deployments.auth.context import AuthContext
from deployments.auth.settings import load_auth_settings
from jobs.enrichment.config import PIPELINE_VERSION
from tests.deployments.enrichment_support import MODEL_VERSION, embed, enrichment_row
from tests.deployments.support import Seeder

# Hypothesis caches constants under ./.hypothesis by default; a directory there would also
# trip its pytest plugin's collection warning (an error here). Keep its files out of the tree.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="nrt-hypothesis-")
set_hypothesis_home_dir(_HYPOTHESIS_HOME)
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES = 6


@dataclass
class RunningApi:
    base_url: str
    context: AuthContext
    user_id: uuid.UUID

    def headers(self) -> dict[str, str]:
        # A fresh token per case: a generated logout or password change revokes the ones before.
        token = self.context.tokens.issue(self.user_id, "admin", uuid.uuid4())
        return {"Authorization": f"Bearer {token}"}


class ThreadedServer:
    def __init__(self, app: Any) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False,
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="schemathesis-api", daemon=True)

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        finally:  # the pool and Redis client this loop made die with it
            await close_pool()
            await close_redis()

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test: uvicorn did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def running_api(test_env: Any, service_settings: None, pool: Any) -> Iterator[RunningApi]:
    app = create_app()
    context = AuthContext(app.state.backends, load_auth_settings(api_rate_limit=1_000_000))
    app.state.auth = context
    with ThreadedServer(app) as base_url:
        email = f"schemathesis-{uuid.uuid4().hex[:8]}@example.org"
        with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as http:
            created = http.post("/api/v1/auth/register", json={"email": email, "password": "a sturdy passphrase 42"})
            assert created.status_code == 201, created.text
        user_id = uuid.UUID(created.json()["user"]["id"])
        asyncio.run(_make_admin(test_env.urls.database_url, user_id))
        asyncio.run(_seed_enriched(test_env.urls.database_url))
        yield RunningApi(base_url, context, user_id)


async def _make_admin(database_url: str, user_id: uuid.UUID) -> None:
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE users SET role = 'admin' WHERE id = $1", user_id)
    finally:
        await conn.close()


async def _seed_enriched(database_url: str) -> None:
    """One article embedded by the real model: semantic search has a vector space to search
    (without one it answers 503, which this test would count as a server error)."""
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        seed = Seeder(pool)
        source = await seed.source(title="Schemathesis Daily")
        [article_id] = await seed.articles(source, 1, prefix=f"st-{uuid.uuid4().hex[:8]}")
        [vector] = embed(["Article 0"])
        row = await enrichment_row(pool, uuid.UUID(article_id), {"economy": 0.9}, vector=vector)
        await write_enrichment(pool, [row], MODEL_VERSION, PIPELINE_VERSION)
    finally:
        await pool.close()


def test_api_conforms_to_its_schema(running_api: RunningApi) -> None:
    """Every operation, valid and invalid inputs alike. (Schemathesis's own pytest plugin needs
    pytest internals that pytest 9 removed, so operations are driven through its strategies.)"""
    schema = schemathesis.openapi.from_url(f"{running_api.base_url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None, phases=[Phase.explicit, Phase.generate])
            def exercise(case: Any) -> None:
                case.call_and_validate(base_url=running_api.base_url, headers=running_api.headers(), checks=CHECKS)

            try:
                exercise()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no parameters, no body
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect all, then report
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:3000])
    assert operations >= 40
    assert not failures, "\n\n".join(failures)
