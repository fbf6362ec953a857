"""robots.txt policy (RFC 9309) for site scraping and full-content fetches. No Ray.

One :class:`RobotsCache` per crawler actor answers "may we fetch this URL?" and
"how long should we wait between requests to its host?" for our product token.
Each origin's ``/robots.txt`` is fetched once through :func:`actors.fetch.fetch`
(so the SSRF guard, body cap and timeout apply), parsed with Protego and kept
for ``ttl_s``.

What a fetch outcome means (RFC 9309 section 2.3.1):

* 2xx: the rules apply (only the first 500 KiB are parsed, as the RFC allows).
* 4xx except 429 ("unavailable"): no rules, everything is allowed.
* more than the allowed redirects, or a redirect loop: also "unavailable".
* 5xx, 429, timeouts, connection errors, refused addresses, oversized files
  ("unreachable"): everything is disallowed, and the answer is kept only for
  ``error_ttl_s`` so the origin is asked again soon. If an earlier fetch had
  succeeded, its rules keep applying instead (section 2.4 allows a stale copy
  while the file is unreachable).

Concurrent questions about one origin share a single fetch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx
from protego import Protego

from actors.fetch import FetchError, FetchPolicy, Resolver, fetch

__all__ = ["RobotsCache", "RobotsRules", "origin_of", "product_token"]

RobotsKind = Literal["ok", "unavailable", "unreachable"]

# RFC 9309 2.5: crawlers must parse at least 500 KiB; anything after may be ignored.
PARSE_LIMIT_BYTES = 500 * 1024
# Fetch a little more than we parse so a file just over the limit is truncated,
# not refused; a far larger one is not a robots.txt worth a 10 MB download.
FETCH_LIMIT_BYTES = 1024 * 1024
ROBOTS_ACCEPT = "text/plain, */*;q=0.5"

_UNAVAILABLE_ERRORS = frozenset({"too_many_redirects", "redirect_loop"})
_TOKEN = re.compile(r"[A-Za-z_-]+")


def product_token(user_agent: str) -> str:
    """The product token robots.txt groups are matched against: "newsray" for
    "newsray/0.1 (+https://github.com/newsray/newsray)".

    Only the token is matched, never the whole header: Protego matches a group's
    name anywhere at a token boundary, so the full string would also obey a
    "User-agent: github" group because of the URL in the comment.
    """
    match = _TOKEN.match(user_agent.strip())
    if not match:
        raise ValueError(f"robots: no product token in user agent {user_agent!r}")
    return match.group(0).lower()


def origin_of(url: str) -> str:
    """``scheme://host[:port]``: robots.txt applies per scheme, host and port."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"robots: invalid URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"robots: not an absolute http(s) URL: {url!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """The cached answer for one origin."""

    origin: str
    kind: RobotsKind
    status: int | None  # HTTP status of the fetch that produced these rules, None without one
    parser: Protego | None  # set for "ok" (and for stale "ok" rules kept while unreachable)
    allow_all: bool  # the answer when there is no parser
    fetched_at: float  # clock() time of the fetch
    expires_at: float
    error: str | None = None  # why the last fetch failed
    stale: bool = False  # unreachable now; the answers come from the last good fetch

    def allowed(self, url: str, token: str) -> bool:
        if urlsplit(url).path == "/robots.txt":
            return True
        if self.parser is not None:
            return bool(self.parser.can_fetch(url, token))
        return self.allow_all

    def crawl_delay(self, token: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(token)
        return float(delay) if delay is not None else None

    def sitemaps(self) -> list[str]:
        return list(self.parser.sitemaps) if self.parser is not None else []


class RobotsCache:
    """Per-origin robots.txt rules with a TTL; safe to share across tasks of one loop.

    ``client`` should come from :func:`actors.fetch.make_client` with the same
    ``policy`` and ``resolver``. ``clock`` (monotonic seconds) is injectable so
    tests can move time without sleeping.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: FetchPolicy,
        *,
        user_agent: str | None = None,
        ttl_s: float = 3600.0,
        error_ttl_s: float = 600.0,
        max_origins: int = 10_000,
        resolver: Resolver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s <= 0 or error_ttl_s <= 0 or max_origins <= 0:
            raise ValueError("robots: ttl_s, error_ttl_s and max_origins must be positive")
        self._client = client
        # One attempt: an unreachable robots.txt is already retried after
        # error_ttl_s, and a page fetch must not wait out several backoffs first.
        self._policy = dataclasses.replace(
            policy, max_retries=0, max_bytes=min(policy.max_bytes, FETCH_LIMIT_BYTES)
        )
        self.token = product_token(user_agent or policy.user_agent)
        self._ttl_s = ttl_s
        self._error_ttl_s = error_ttl_s
        self._max_origins = max_origins
        self._resolver = resolver
        self._clock = clock
        self._rules: OrderedDict[str, RobotsRules] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[RobotsRules]] = {}

    async def allowed(self, url: str) -> bool:
        """Whether our product token may fetch ``url``. ValueError("robots: …")
        for a URL that is not absolute http(s)."""
        return (await self.rules(url)).allowed(url, self.token)

    async def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay (seconds) of the group that applies to us on ``url``'s origin."""
        return (await self.rules(url)).crawl_delay(self.token)

    async def sitemaps(self, url: str) -> list[str]:
        """Sitemap URLs listed in ``url``'s origin's robots.txt."""
        return (await self.rules(url)).sitemaps()

    async def rules(self, url: str) -> RobotsRules:
        """The current rules for ``url``'s origin, fetching them when missing or expired."""
        origin = origin_of(url)
        cached = self._rules.get(origin)
        if cached is not None and cached.expires_at > self._clock():
            self._rules.move_to_end(origin)
            return cached
        task = self._inflight.get(origin)
        if task is None:
            task = asyncio.create_task(self._refresh(origin, cached))
            self._inflight[origin] = task
            task.add_done_callback(functools.partial(self._forget_inflight, origin))
        # shield: one caller being cancelled must not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    def _forget_inflight(self, origin: str, _task: asyncio.Task[RobotsRules]) -> None:
        self._inflight.pop(origin, None)

    def invalidate(self, url: str | None = None) -> None:
        """Forget one origin's rules (or all), so the next question fetches again."""
        if url is None:
            self._rules.clear()
        else:
            self._rules.pop(origin_of(url), None)

    async def _refresh(self, origin: str, previous: RobotsRules | None) -> RobotsRules:
        rules = await self._fetch(origin, previous)
        self._rules[origin] = rules
        self._rules.move_to_end(origin)
        while len(self._rules) > self._max_origins:
            self._rules.popitem(last=False)
        return rules

    async def _fetch(self, origin: str, previous: RobotsRules | None) -> RobotsRules:
        url = f"{origin}/robots.txt"
        now = self._clock()
        try:
            result = await fetch(self._client, url, self._policy, accept=ROBOTS_ACCEPT, resolver=self._resolver)
        except FetchError as exc:
            status = exc.status
            unavailable = exc.kind in _UNAVAILABLE_ERRORS or (
                exc.kind == "http_status" and status is not None and 400 <= status < 500 and status != 429
            )
            if unavailable:
                return RobotsRules(origin, "unavailable", status, None, True, now, now + self._ttl_s, str(exc))
            expires = now + self._error_ttl_s
            if previous is not None and (previous.kind != "unreachable" or previous.stale):
                # Keep answering from the last good fetch (RFC 9309 2.4) while asking again soon.
                return dataclasses.replace(
                    previous, kind="unreachable", status=status, expires_at=expires, error=str(exc), stale=True
                )
            return RobotsRules(origin, "unreachable", status, None, False, now, expires, str(exc))
        text = result.body[:PARSE_LIMIT_BYTES].decode("utf-8", errors="replace")  # RFC 9309: UTF-8
        parser = Protego.parse(text)
        return RobotsRules(origin, "ok", result.status, parser, False, now, now + self._ttl_s)
