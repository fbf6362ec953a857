"""Rate limits in Redis.

* AuthRateLimiter — login, register and MFA: a sliding-window log (a sorted set of attempt
  times) per action and subject, checked and recorded for all subjects (account and client
  address) in one Lua call, so concurrent attempts cannot slip past the count. Redis down:
  the caller fails closed (no unlimited password guessing while the limiter is blind).
* ApiLimiter — the general per-user API limit, and the per-user "not before" time that
  revokes access tokens early. A sliding-window counter (the previous fixed window weighted
  by how much of it still overlaps) counted in memory and synced with Redis every SYNC_EVERY
  requests or SYNC_INTERVAL_S, so an authenticated request costs no Redis round trip in the
  steady state. Redis down: reading fails open (counted locally), logged once per interval.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import redis.asyncio as redis_async

from cluster import keys as redis_keys

logger = logging.getLogger("newsray.auth")

SLIDING_LOG_SCRIPT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    local until_free = tonumber(oldest[2]) + window - now
    if until_free > wait then wait = until_free end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
end
return 0
"""

RedisProvider = Callable[[], redis_async.Redis]


class RateLimiterUnavailable(RuntimeError):
    """Redis could not be asked; login-type endpoints must refuse rather than go unlimited."""


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: int = 0


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The client's address: the peer, unless it is a trusted proxy, then the right-most
    X-Forwarded-For entry that is not a trusted proxy (entries left of it are the client's
    own claims and could be anything). IPv6 clients count per /64, the usual single host."""
    candidate = peer or "unknown"
    if forwarded_for and trusted and _is_trusted(candidate, trusted):
        for hop in reversed([part.strip() for part in forwarded_for.split(",") if part.strip()]):
            candidate = hop
            if not _is_trusted(hop, trusted):
                break
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _is_trusted(value: str, trusted: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address in network for network in trusted)


class AuthRateLimiter:
    def __init__(self, redis: RedisProvider, limit: int, window_s: int) -> None:
        self._redis = redis
        self.limit = limit
        self.window_ms = window_s * 1000
        self._scripts: dict[int, object] = {}

    async def hit(self, action: str, subjects: Sequence[tuple[str, str]]) -> RateDecision:
        """Record one attempt against every subject, or none if any is at its limit."""
        keys = [redis_keys.rate_limit_key(action, kind, value) for kind, value in subjects]
        now_ms = int(time.time() * 1000)
        try:
            client = self._redis()
            script = self._scripts.get(id(client))
            if script is None:
                script = self._scripts[id(client)] = client.register_script(SLIDING_LOG_SCRIPT)
            wait_ms = await script(keys=keys, args=[now_ms, self.window_ms, self.limit,  # type: ignore[operator]
                                                    f"{now_ms}-{secrets.token_hex(6)}"])
        except Exception as exc:  # noqa: BLE001 - any Redis failure means "cannot count"
            logger.warning("auth: rate limiter unavailable for %s: %s", action, type(exc).__name__)
            raise RateLimiterUnavailable(action) from None
        wait_ms = int(wait_ms or 0)
        if wait_ms > 0:
            return RateDecision(False, max(1, math.ceil(wait_ms / 1000)))
        return RateDecision(True)

    async def reset(self, action: str, subjects: Sequence[tuple[str, str]]) -> None:
        await self._redis().delete(*[redis_keys.rate_limit_key(action, kind, value) for kind, value in subjects])


# --------------------------------------------------------------------------- the API limit

SYNC_EVERY = 25
SYNC_INTERVAL_S = 1.0
# After a failure, Redis is left alone this long: a hung server must not stall every request
# for its socket timeout.
REDIS_BACKOFF_S = 5.0
FAILURE_LOG_INTERVAL_S = 30.0
MAX_TRACKED_USERS = 20_000


@dataclass
class _Usage:
    window: int
    previous: int = 0  # global count of the previous window
    current: int = 0  # global count of this window at the last sync (ours included)
    pending: int = 0  # ours since the last sync
    not_before_ms: int = 0
    synced_at: float = -math.inf
    synced_once: bool = False
    in_flight: asyncio.Future[None] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ApiDecision:
    allowed: bool
    revoked: bool = False
    retry_after_s: int = 0


class ApiLimiter:
    def __init__(self, redis: RedisProvider, limit: int, window_s: int, revocation_ttl_s: int) -> None:
        self._redis = redis
        self.limit = limit
        self.window_s = window_s
        self.revocation_ttl_s = revocation_ttl_s
        self._usage: dict[uuid.UUID, _Usage] = {}
        self._redis_down_until = 0.0
        self._last_failure_log = -math.inf

    async def hit(self, user_id: uuid.UUID, issued_ms: int) -> ApiDecision:
        now = time.time()
        window = int(now // self.window_s)
        usage = self._usage.get(user_id)
        if usage is None:
            if len(self._usage) >= MAX_TRACKED_USERS:
                self._prune(window)
            usage = self._usage[user_id] = _Usage(window)
        elif usage.window != window:
            usage.previous = usage.current + usage.pending if usage.window == window - 1 else 0
            usage.window, usage.current, usage.pending, usage.synced_at = window, 0, 0, -math.inf
        usage.pending += 1
        monotonic = time.monotonic()
        if usage.pending >= SYNC_EVERY or monotonic - usage.synced_at >= SYNC_INTERVAL_S:
            if usage.in_flight is None:
                await self._sync(user_id, usage)
            elif not usage.synced_once:
                # The first request of a user must know the revocation time before it passes.
                await asyncio.shield(usage.in_flight)
        if issued_ms < usage.not_before_ms:
            return ApiDecision(False, revoked=True)
        fraction = (now % self.window_s) / self.window_s
        estimate = usage.previous * (1.0 - fraction) + usage.current + usage.pending
        if estimate > self.limit:
            return ApiDecision(False, retry_after_s=max(1, math.ceil(self.window_s - now % self.window_s)))
        return ApiDecision(True)

    async def _sync(self, user_id: uuid.UUID, usage: _Usage) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        usage.in_flight = future
        delta, usage.pending = usage.pending, 0
        window = usage.window
        try:
            if time.monotonic() < self._redis_down_until:
                raise ConnectionError("redis marked down")
            key = redis_keys.api_usage_key(str(user_id), window)
            pipe = self._redis().pipeline(transaction=False)
            pipe.incrby(key, delta)
            pipe.expire(key, 2 * self.window_s)
            pipe.get(redis_keys.api_usage_key(str(user_id), window - 1))
            pipe.get(redis_keys.tokens_not_before_key(str(user_id)))
            current, _, previous, not_before = await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - fail open for reading; say so in the log
            usage.pending += delta
            self._note_failure(exc)
        else:
            if usage.window == window:
                usage.current = int(current)
                usage.previous = int(previous or 0)
            usage.not_before_ms = max(usage.not_before_ms, int(not_before or 0))
        finally:
            usage.synced_at = time.monotonic()
            usage.synced_once = True
            usage.in_flight = None
            future.set_result(None)

    def _note_failure(self, exc: BaseException) -> None:
        now = time.monotonic()
        if not isinstance(exc, ConnectionError) or "marked down" not in str(exc):
            self._redis_down_until = now + REDIS_BACKOFF_S
        if now - self._last_failure_log >= FAILURE_LOG_INTERVAL_S:
            self._last_failure_log = now
            logger.warning("auth: Redis unavailable for the API rate limit (%s); requests pass unlimited and "
                           "token revocations are not seen until it is back", type(exc).__name__)

    def _prune(self, window: int) -> None:
        for user_id in [uid for uid, usage in self._usage.items() if usage.window < window - 1]:
            del self._usage[user_id]

    def revoke_locally(self, user_id: uuid.UUID, not_before_ms: int) -> None:
        usage = self._usage.get(user_id)
        if usage is not None:
            usage.not_before_ms = max(usage.not_before_ms, not_before_ms)

    async def revoke_tokens(self, user_id: uuid.UUID, not_before_ms: int | None = None) -> bool:
        """Void every access token of the user issued before now: seen at once by this process,
        by the others within SYNC_INTERVAL_S. False when Redis could not be told (the tokens
        then still die at their expiry, at most 15 minutes later)."""
        not_before_ms = int(time.time() * 1000) if not_before_ms is None else not_before_ms
        self.revoke_locally(user_id, not_before_ms)
        return await publish_revocation(self._redis, user_id, not_before_ms, self.revocation_ttl_s)


async def publish_revocation(redis: RedisProvider, user_id: uuid.UUID, not_before_ms: int, ttl_s: int) -> bool:
    try:
        await redis().set(redis_keys.tokens_not_before_key(str(user_id)), not_before_ms, ex=ttl_s)
        return True
    except Exception as exc:  # noqa: BLE001
        logger.warning("auth: could not publish a token revocation (%s); access tokens expire on their own",
                       type(exc).__name__)
        return False
