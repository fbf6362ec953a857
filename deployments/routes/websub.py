"""WebSub callbacks: hubs verify our subscriptions here and push new entries here.

A push is checked (HMAC with the subscription's secret) in the ingress and handed to a crawler
through the crawl scheduler, which parses and stores it the way a crawl would.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request, Response

from cluster import components
from cluster.ray_cluster import NAMESPACE
from cluster.store import sources as source_store
from cluster.websub import signature_valid
from deployments.backends import Backends
from deployments.errors import ApiError, JsonErrorRoute

logger = logging.getLogger("newsray.api")
# A hub may push a whole feed; more than this is not a push we want.
MAX_PUSH_BYTES = 5 * 1024 * 1024

router = APIRouter(prefix="/websub", tags=["websub"], route_class=JsonErrorRoute, include_in_schema=False)


@router.get("/{source_id}")
async def verify(
    request: Request,
    source_id: int,
    mode: str = Query(alias="hub.mode"),
    topic: str = Query(alias="hub.topic"),
    challenge: str | None = Query(default=None, alias="hub.challenge"),
    lease_seconds: int | None = Query(default=None, alias="hub.lease_seconds", ge=0, le=10 * 365 * 24 * 3600),
    reason: str | None = Query(default=None, alias="hub.reason"),
) -> Response:
    """Verification of intent: echo the challenge only for a subscription we asked for."""
    backends: Backends = request.app.state.backends
    pool = await backends.pool()
    if mode == "denied":
        logger.warning("websub: hub denied the subscription of source %s: %s", source_id, (reason or "")[:200])
        return Response(status_code=200)
    if mode not in ("subscribe", "unsubscribe") or challenge is None:
        raise ApiError(400, "websub: hub.mode must be subscribe or unsubscribe, with a hub.challenge")
    lease = lease_seconds if mode == "subscribe" else None
    if not await source_store.confirm_websub(pool, source_id, topic, lease):
        raise ApiError(404, "websub: no such subscription")
    return Response(content=challenge, media_type="text/plain")


@router.post("/{source_id}")
async def push(request: Request, source_id: int) -> Response:
    backends: Backends = request.app.state.backends
    body = await request.body()
    if len(body) > MAX_PUSH_BYTES:
        raise ApiError(413, "websub: push too large")
    subscription = await source_store.websub_secret(await backends.pool(), source_id)
    if subscription is None:
        raise ApiError(404, "websub: no such subscription")
    _topic, secret = subscription
    if not signature_valid(secret, body, request.headers.get("x-hub-signature")):
        # The spec lets us acknowledge and drop; a clear refusal helps operators debug a hub.
        logger.warning("websub: push for source %s with a bad or missing signature dropped", source_id)
        raise ApiError(403, "websub: signature does not match")
    outcome = await _scheduler().ingest.remote(source_id, body, request.headers.get("content-type"))
    if not outcome.get("ok"):
        raise ApiError(422, f"websub: push not stored: {outcome.get('error')}")
    return Response(status_code=204)


def _scheduler() -> Any:
    import ray

    return ray.get_actor(components.SCHEDULER_NAME, namespace=NAMESPACE)
