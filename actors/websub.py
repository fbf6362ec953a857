"""WebSub subscriber: ask a feed's hub to push new entries to our callback.

The hub then verifies our intent with a GET on the callback (the Api's /websub route) and
pushes signed bodies there; the Api hands them to a crawler (see FeedCrawler.ingest).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

from actors.fetch import FetchError, FetchPolicy, check_url_allowed
from cluster.store import sources as source_store
from cluster.store.sources import Source
from cluster.websub import DEFAULT_LEASE_S, RENEW_BEFORE_S, callback_url

log = logging.getLogger(__name__)


class WebSubError(RuntimeError):
    """The hub refused or could not be reached; messages start with "websub: "."""


def needs_subscription(source: Source, hub_url: str, now: datetime | None = None) -> bool:
    now = now or datetime.now(timezone.utc)
    if source.hub_url != hub_url or source.websub_lease_until is None:
        return True
    return source.websub_lease_until - now < timedelta(seconds=RENEW_BEFORE_S)


async def subscribe(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    source: Source,
    hub_url: str,
    topic: str,
    public_url: str,
    policy: FetchPolicy,
    lease_s: int = DEFAULT_LEASE_S,
) -> None:
    """Send the subscription request (the hub answers 202 and verifies asynchronously)."""
    try:
        await check_url_allowed(hub_url, policy)
    except FetchError as exc:
        raise WebSubError(f"websub: hub {hub_url} refused by the fetch policy: {exc}") from None
    secret = secrets.token_hex(32)
    await source_store.start_websub(pool, source.id, hub_url, topic, secret)
    form = {
        "hub.mode": "subscribe",
        "hub.topic": topic,
        "hub.callback": callback_url(public_url, source.id),
        "hub.secret": secret,
        "hub.lease_seconds": str(lease_s),
    }
    try:
        response = await client.post(hub_url, data=form, timeout=policy.timeout_s)
    except httpx.HTTPError as exc:
        raise WebSubError(f"websub: hub {hub_url} unreachable: {exc.__class__.__name__}") from None
    if response.status_code not in (202, 204):
        raise WebSubError(f"websub: hub {hub_url} answered {response.status_code}")
