"""HTTP fetch policy for feeds: conditional GET, size caps, redirects, retries, SSRF guard.

Pure asyncio + httpx, no Ray: the FeedCrawler actor owns one client from
:func:`make_client` and calls :func:`fetch` per source.

Why each rule exists:

* Every address a request may reach is checked twice: :func:`check_url_allowed`
  before each hop (clear error, injectable resolver) and again by the
  transport's network backend at connect time, which connects to the very IP it
  checked, so a DNS answer that changes between the two (DNS rebinding) cannot
  smuggle a request to an internal address.
* Redirects are followed by hand (the client never follows them) so each hop
  gets that check, loops are caught and permanent moves are reported.
* The body is decompressed here, in bounded steps, from the raw stream: httpx's
  own decoders inflate a whole network chunk at once (unbounded for brotli), so
  a 1,000:1 gzip or a million-to-one brotli bomb would be in memory before any
  size check could run.
* The per-attempt timeout is one asyncio deadline around connect, redirects
  and the whole body, because httpx's timeouts are per operation and a server
  dripping one byte a second never trips a read timeout.
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import functools
import ipaddress
import random
import re
import socket
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import brotli
import httpcore
import httpx

from actors.asyncio_backend import AsyncioBackend
from actors.http_pool import OriginPools

__all__ = [
    "BlockedAddressError",
    "FetchError",
    "FetchPolicy",
    "FetchResult",
    "Resolver",
    "check_url_allowed",
    "fetch",
    "make_client",
    "make_transport",
    "parse_retry_after",
    "sniff_encoding",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
ACCEPT_ENCODING = "gzip, deflate, br"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})
_RETRY_STATUSES = frozenset({429, 503})
_DECODE_STEP = 64 * 1024  # most bytes one decompression step may produce
# A compressed body that inflates more than this many times over is a decompression bomb, refused
# once past the grace size, before the size cap: text, feeds and pages included, compresses some
# 3-20 times, and zeros a thousand. Apache POI refuses zip entries at the same ratio (1 %).
_MAX_INFLATE_RATIO = 100
_INFLATE_GRACE_BYTES = 1024 * 1024

FETCH_ERROR_KINDS = frozenset(
    {
        "timeout", "connect", "too_large", "too_many_redirects", "redirect_loop",
        "blocked_address", "http_status", "invalid_url", "decode",
    }
)


@dataclass(frozen=True)
class FetchPolicy:
    timeout_s: float = 10.0  # total deadline of one attempt (all redirect hops and the body)
    max_bytes: int = 10 * 1024 * 1024  # after decompression
    max_redirects: int = 5
    max_retries: int = 3  # extra attempts after the first, on 429/503/connect errors/timeouts (not slow bodies)
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0  # also the longest Retry-After honoured in place
    user_agent: str = "newsray/0.1 (+https://github.com/newsray/newsray)"
    allow_private: bool = False
    allowed_networks: tuple[str, ...] = ()  # CIDRs allowed even when private, e.g. ("127.0.0.0/8",)
    http2: bool = True

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.max_bytes <= 0:
            raise ValueError("fetch: timeout_s and max_bytes must be positive")
        if self.max_redirects < 0 or self.max_retries < 0 or self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("fetch: max_redirects, max_retries and backoff values must not be negative")
        if isinstance(self.allowed_networks, str):  # a bare string would be read letter by letter
            raise ValueError("fetch: allowed_networks must be a tuple of CIDR strings")
        _networks(tuple(self.allowed_networks))  # fail at construction, not at first fetch


@dataclass
class FetchResult:
    url: str  # final URL, after redirects
    status: int
    body: bytes  # decompressed; b"" on 304
    headers: dict[str, str]  # lowercase keys
    etag: str | None
    last_modified: str | None
    not_modified: bool
    permanent_redirect_to: str | None  # set when only 301/308 led here: update the source URL
    elapsed_s: float  # whole fetch, retries and their waits included
    attempts: int
    content_type: str | None  # the Content-Type header value, parameters included
    encoding: str | None  # see sniff_encoding()


class FetchError(Exception):
    """A fetch that produced no usable response. ``str()`` starts with "fetch: "."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
        url: str | None = None,
    ) -> None:
        if kind not in FETCH_ERROR_KINDS:
            raise ValueError(f"fetch: unknown error kind {kind!r}")
        super().__init__(f"fetch: {message}")
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s
        self.url = url
        self.attempts = 1  # set by fetch() to the attempts made before giving up
        # The server answered and its body was still arriving when time ran out (see _retry_delay).
        self.slow_body = False


class BlockedAddressError(FetchError):
    """The URL leads to an address the policy refuses; raised before connecting."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__("blocked_address", message, url=url)


# ---------------------------------------------------------------- address policy


@functools.lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
    except ValueError as exc:
        raise ValueError(f"fetch: invalid allowed_networks entry: {exc}") from None


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address routes to (mapped, 6to4, NAT64), which
    must pass the same test: ::ffff:10.0.0.1 is 10.0.0.1."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _is_allowed(ip: IPAddress, allow_private: bool, allowed_networks: tuple[str, ...]) -> bool:
    if allow_private:
        return True
    networks = _networks(allowed_networks)
    for candidate in [ip, *_embedded_ipv4(ip)]:
        if any(candidate.version == net.version and candidate in net for net in networks):
            continue
        # is_global is False for private, loopback, link-local, reserved,
        # unspecified, shared (100.64/10) and documentation ranges; some
        # multicast ranges count as global, hence the second test.
        if not candidate.is_global or candidate.is_multicast:
            return False
    return True


@functools.lru_cache(maxsize=4096)
def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None


def _refusal(address: str, policy: FetchPolicy) -> str | None:
    """Why ``address`` may not be reached under ``policy``; None when it may."""
    return _refusal_cached(address, policy.allow_private, tuple(policy.allowed_networks))


@functools.lru_cache(maxsize=4096)
def _refusal_cached(address: str, allow_private: bool, allowed_networks: tuple[str, ...]) -> str | None:
    # A pure function of its arguments, asked twice per request (before it and at connect time).
    ip = _parse_ip(address)
    if ip is None:
        return f"resolved to {address!r}, which is not an IP address"
    if not _is_allowed(ip, allow_private, allowed_networks):
        return f"leads to {ip}, a private or reserved address; refused before connecting"
    return None


async def _system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _allowed_addresses(
    host: str, port: int, policy: FetchPolicy, resolver: Resolver | None, url: str
) -> list[str]:
    """Every address ``host`` resolves to, or BlockedAddressError if any is refused.

    Refusing on ANY bad address (not just skipping it) stops a name that lists
    one public and one internal address from being used to reach the latter.
    """
    literal = _parse_ip(host)
    if literal is not None:
        addresses = [host]
    else:
        try:
            addresses = await (resolver or _system_resolver)(host, port)
        except (OSError, UnicodeError) as exc:
            raise FetchError("connect", f"cannot resolve {host!r} ({exc})", url=url) from None
        if not addresses:
            raise FetchError("connect", f"cannot resolve {host!r} (no addresses)", url=url)
    for address in addresses:
        refusal = _refusal(address, policy)
        if refusal is not None:
            raise BlockedAddressError(f"{url} {refusal}", url=url)
    return addresses


@functools.lru_cache(maxsize=8192)
def _parse_url(url: str) -> httpx.URL:
    # httpx.URL is immutable. A fetch parsed its URL for the address check, for the redirect-loop
    # check (twice) and for the request, some 35 us in all, round after round.
    return httpx.URL(url)


def _split_url(url: str) -> tuple[httpx.URL, str, int]:
    try:
        parsed = _parse_url(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise FetchError("invalid_url", f"invalid URL {url!r}: {exc}", url=url) from None
    if parsed.scheme not in ("http", "https"):
        raise FetchError("invalid_url", f"unsupported scheme in {url!r} (http or https only)", url=url)
    host = parsed.raw_host.decode("ascii", "replace")
    if not host:
        raise FetchError("invalid_url", f"no host in {url!r}", url=url)
    return parsed, host, parsed.port or (443 if parsed.scheme == "https" else 80)


async def check_url_allowed(url: str, policy: FetchPolicy, resolver: Resolver | None = None) -> None:
    """Raise BlockedAddressError unless every address ``url``'s host resolves to
    is allowed by ``policy``; FetchError(kind="invalid_url") for non-http(s) or
    hostless URLs. IP-literal hosts are checked without resolving; nothing is
    ever sent to the host."""
    _, host, port = _split_url(url)
    await _allowed_addresses(host, port, policy, resolver, url)


# ---------------------------------------------------------------- client


class _GuardedNetworkBackend(AsyncioBackend):
    """Resolves, checks and connects to the checked IP itself (TLS still uses
    the URL's host name for SNI and certificate checks)."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver | None) -> None:
        self._policy = policy
        self._resolver = resolver

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = await _allowed_addresses(host, port, self._policy, self._resolver, f"//{host}:{port}")
        error: Exception | None = None
        for address in addresses:
            try:
                return await super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # addresses is never empty
        raise error


# Per origin: the scheduler lets a few requests at a time go to one host, so a few connections
# per origin are kept alive; the number of origins holding idle connections is bounded.
MAX_CONNECTIONS_PER_ORIGIN = 16
KEEPALIVE_PER_ORIGIN = 8
MAX_ORIGINS = 256
KEEPALIVE_EXPIRY_S = 30.0


def make_transport(policy: FetchPolicy, *, resolver: Resolver | None = None) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose every TCP connection goes through the address check."""
    transport = httpx.AsyncHTTPTransport(http2=policy.http2, trust_env=False, retries=0)
    # httpx offers no network-backend argument: replace the pool it built (no proxy, so a plain
    # AsyncConnectionPool) with per-origin pools (actors.http_pool) that use our backend.
    if not isinstance(getattr(transport, "_pool", None), httpcore.AsyncConnectionPool):
        raise RuntimeError("fetch: unexpected httpx transport internals; check the httpx version pin")
    transport._pool = OriginPools(  # type: ignore[assignment]
        ssl_context=httpx.create_ssl_context(trust_env=False),
        network_backend=_GuardedNetworkBackend(policy, resolver),
        max_connections=MAX_CONNECTIONS_PER_ORIGIN,
        max_keepalive_connections=KEEPALIVE_PER_ORIGIN,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
        max_origins=MAX_ORIGINS,
        http1=True,
        http2=policy.http2,
    )
    return transport


class _NoCookies(httpx.Cookies):
    """A jar that never takes a cookie (see :class:`CookielessClient`)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class CookielessClient(httpx.AsyncClient):
    """An httpx client that neither keeps nor sends cookies, like Miniflux's crawler: a cookie that
    one source's server sets must not travel with the crawler's later requests (one client serves
    every source), metered paywalls count nothing, and every page is a first visit. httpx has no
    switch for it, and a jar whose policy refuses them still builds a urllib request for every
    response: 2 % of a crawler's CPU in a first crawl, 5 % in a refresh of 304s."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NoCookies()

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        if cookies:
            raise ValueError("fetch: this client keeps no cookies")


def make_client(
    policy: FetchPolicy,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    resolver: Resolver | None = None,
) -> httpx.AsyncClient:
    """The shared client for :func:`fetch`: no automatic redirects, no proxies
    from the environment (a proxy would make the address check meaningless),
    pooled connections, HTTP/2 per policy. ``transport`` replaces the guarded
    one (tests wrap it); ``resolver`` is used by the connect-time check. No
    cookies (:class:`CookielessClient`)."""
    return CookielessClient(
        transport=transport or make_transport(policy, resolver=resolver),
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(policy.timeout_s),
        headers={"User-Agent": policy.user_agent, "Accept": DEFAULT_ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
    )


# ---------------------------------------------------------------- fetch


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    policy: FetchPolicy,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    accept: str | None = None,
    resolver: Resolver | None = None,
) -> FetchResult:
    """GET ``url`` under ``policy``; raise :class:`FetchError` on failure.

    A 304 comes back as ``not_modified=True`` with an empty body. 429/503,
    connection errors and timeouts before the response's body are retried up
    to ``policy.max_retries`` times with exponential backoff and full jitter
    (a body too slow to arrive in time is not: ``FetchError.slow_body``), or after Retry-After when
    the server sends one; a Retry-After longer than ``backoff_max_s`` is not
    waited for: the error is raised at once with ``retry_after_s`` so the
    scheduler can come back later. ``FetchError.attempts`` says how many
    attempts were made.

    ``resolver`` serves the pre-flight check of each hop; the connect-time
    check uses the resolver and policy the client was made with
    (:func:`make_client`), so pass the same policy to both.
    """
    headers: dict[str, str] = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    if accept:
        headers["Accept"] = accept

    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        progress = _AttemptProgress()
        try:
            async with asyncio.timeout(policy.timeout_s):
                result = await _attempt(client, url, policy, headers, resolver, progress)
        except TimeoutError:
            message = f"{url}: no complete response within {policy.timeout_s:g}s"
            error: FetchError = FetchError("timeout", message, url=url)
            error.slow_body = progress.reading_body
        except FetchError as exc:
            error = exc
        else:
            result.attempts = attempt
            result.elapsed_s = time.monotonic() - started
            return result
        error.attempts = attempt
        delay = _retry_delay(error, attempt, policy)
        if delay is None:
            raise error
        await asyncio.sleep(delay)


def _retry_delay(error: FetchError, attempt: int, policy: FetchPolicy) -> float | None:
    # A server that answered but sends its body too slowly (a slow drip) is slow, not
    # unreachable: asking again at once costs it and us a whole deadline per attempt (four for
    # one feed, a lane's worth of feeds waiting behind it) for the same outcome. It comes back
    # with the source's backoff, like any other failure.
    retryable = (error.kind in ("timeout", "connect") and not error.slow_body) or (
        error.kind == "http_status" and error.status in _RETRY_STATUSES
    )
    if not retryable or attempt > policy.max_retries:
        return None
    if error.retry_after_s is not None:
        return None if error.retry_after_s > policy.backoff_max_s else error.retry_after_s
    # Full jitter: spreads the retries of many crawlers hitting one host.
    return random.uniform(0.0, min(policy.backoff_max_s, policy.backoff_base_s * 2 ** (attempt - 1)))


@dataclass(slots=True)
class _AttemptProgress:
    """How far an attempt got, for the caller to read when the deadline cancels it."""

    reading_body: bool = False


async def _attempt(
    client: httpx.AsyncClient, url: str, policy: FetchPolicy, headers: dict[str, str], resolver: Resolver | None,
    progress: _AttemptProgress,
) -> FetchResult:
    current = url
    visited: set[str] | None = None  # the hops so far, made on the first redirect (most fetches have none)
    redirects = 0
    permanent = True
    while True:
        await check_url_allowed(current, policy, resolver)
        response = await _send(client, current, headers)
        try:
            status = response.status_code
            if not 200 <= status < 300:
                await _finish_bodiless(response)
            if status in _REDIRECT_STATUSES and "location" in response.headers:
                target = _redirect_target(response, current)
                key = _without_fragment(target)
                if visited is None:
                    visited = {_visit_key(url)}
                if key in visited:
                    raise FetchError("redirect_loop", f"{url}: redirect loop back to {target}", url=url)
                if redirects >= policy.max_redirects:
                    message = f"{url}: more than {policy.max_redirects} redirects"
                    raise FetchError("too_many_redirects", message, url=url)
                visited.add(key)
                redirects += 1
                permanent = permanent and status in _PERMANENT_REDIRECTS
                current = str(target)
                continue
            if status == 304:
                return _result(response, current, b"", url, redirects, permanent, headers)
            if 200 <= status < 300:
                progress.reading_body = True
                body = await _read_body(response, policy, current)
                return _result(response, current, body, url, redirects, permanent, headers)
            raise FetchError(
                "http_status",
                f"{current}: HTTP {status}",
                status=status,
                retry_after_s=parse_retry_after(response.headers.get("retry-after")),
                url=current,
            )
        finally:
            await response.aclose()


async def _finish_bodiless(response: httpx.Response) -> None:
    """Read the end of a response that has no body (a 304, or Content-Length: 0), so that its
    connection goes back to the pool: closing a response before its end closes the connection,
    and a refresh round, mostly 304s, would then connect anew for every feed. This never waits
    on the network (the end is already known from the headers); anything with a body is left
    unread and its connection closed, as before."""
    if response.status_code != 304 and response.headers.get("content-length", "").strip() != "0":
        return
    try:
        async for _ in response.aiter_raw():
            pass
    except httpx.HTTPError:
        pass  # the connection is closed instead of reused: nothing lost


async def _send(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    try:
        request = client.build_request("GET", _parse_url(url), headers=headers)
        return await client.send(request, stream=True)
    except FetchError:
        raise  # the connect-time address check
    except httpx.TimeoutException as exc:
        raise FetchError("timeout", f"{url}: {type(exc).__name__}", url=url) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise FetchError("invalid_url", f"{url}: {exc}", url=url) from None
    except httpx.TransportError as exc:
        # Refused, reset, TLS failure or a protocol violation: all "could not
        # talk to the server", all worth a retry.
        raise FetchError("connect", f"{url}: {type(exc).__name__}: {exc}", url=url) from None


def _redirect_target(response: httpx.Response, current: str) -> httpx.URL:
    location = response.headers["location"]
    try:
        target = response.url.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError("invalid_url", f"{current}: invalid redirect to {location!r}: {exc}", url=current) from None
    if target.scheme not in ("http", "https"):
        raise FetchError("invalid_url", f"{current}: redirect to unsupported scheme {location!r}", url=current)
    return target


@functools.lru_cache(maxsize=8192)
def _visit_key(url: str) -> str:
    return _without_fragment(_split_url(url)[0])


def _without_fragment(url: httpx.URL) -> str:
    return str(url.copy_with(fragment=None))


def _result(
    response: httpx.Response,
    final_url: str,
    body: bytes,
    original_url: str,
    redirects: int,
    permanent: bool,
    request_headers: dict[str, str],
) -> FetchResult:
    headers = {k.lower(): v for k, v in response.headers.items()}
    not_modified = response.status_code == 304
    content_type = headers.get("content-type")
    return FetchResult(
        url=final_url,
        status=response.status_code,
        body=body,
        headers=headers,
        # A 304 may omit validators; the ones sent are still the current ones.
        etag=headers.get("etag") or (request_headers.get("If-None-Match") if not_modified else None),
        last_modified=headers.get("last-modified")
        or (request_headers.get("If-Modified-Since") if not_modified else None),
        not_modified=not_modified,
        permanent_redirect_to=final_url if redirects and permanent and final_url != original_url else None,
        elapsed_s=0.0,
        attempts=1,
        content_type=content_type.strip() if content_type else None,
        encoding=None if not_modified else sniff_encoding(body, content_type),
    )


# ---------------------------------------------------------------- body


async def _read_body(response: httpx.Response, policy: FetchPolicy, url: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > policy.max_bytes:
        raise FetchError("too_large", f"{url}: Content-Length {declared} exceeds {policy.max_bytes} bytes", url=url)
    decoder = _decoder_for(response.headers.get("content-encoding"), url)
    chunks: list[bytes] = []
    total = 0
    received = 0

    def keep(pieces: Iterable[bytes]) -> None:
        nonlocal total
        for piece in pieces:
            total += len(piece)
            if total > policy.max_bytes:
                raise FetchError("too_large", f"{url}: body exceeds {policy.max_bytes} bytes", url=url)
            if total > _INFLATE_GRACE_BYTES and total > _MAX_INFLATE_RATIO * received:
                message = f"{url}: body inflates over {_MAX_INFLATE_RATIO}:1 ({total} bytes from {received})"
                raise FetchError("too_large", message, url=url)
            chunks.append(piece)

    try:
        async for raw in response.aiter_raw():
            received += len(raw)
            keep(decoder.feed(raw))
        keep(decoder.flush())
    except httpx.TimeoutException as exc:
        error = FetchError("timeout", f"{url}: {type(exc).__name__} while reading the body", url=url)
        error.slow_body = True
        raise error from None
    except httpx.TransportError as exc:
        raise FetchError("connect", f"{url}: {type(exc).__name__} while reading the body: {exc}", url=url) from None
    except (zlib.error, brotli.error) as exc:
        raise FetchError("decode", f"{url}: corrupt compressed body ({exc})", url=url) from None
    return b"".join(chunks)


class _Decoder:
    """Incremental decoder producing output in pieces of about _DECODE_STEP
    bytes, so the caller can stop as soon as the size cap is passed."""

    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data

    def flush(self) -> Iterator[bytes]:
        return iter(())


class _ZlibDecoder(_Decoder):
    def __init__(self, wbits: int, *, sniff_raw: bool = False) -> None:
        self._wbits = wbits
        self._obj = zlib.decompressobj(wbits)
        # HTTP "deflate" means zlib-wrapped, but some servers send raw deflate;
        # the two-byte zlib header (RFC 1950) tells them apart.
        self._sniff_raw = sniff_raw
        self._head = b""

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._sniff_raw:
            self._head += data
            if len(self._head) < 2:
                return iter(())
            data, self._head, self._sniff_raw = self._head, b"", False
            if not _is_zlib_header(data[:2]):
                self._wbits = -zlib.MAX_WBITS
                self._obj = zlib.decompressobj(self._wbits)
        return self._inflate(data)

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._obj.eof:
                # gzip allows several members back to back; anything else after
                # the end of the stream is ignored, as browsers do.
                if self._wbits > zlib.MAX_WBITS and data[:2] == b"\x1f\x8b":
                    self._obj = zlib.decompressobj(self._wbits)
                else:
                    return
            out = self._obj.decompress(data, _DECODE_STEP)
            if out:
                yield out
            data = self._obj.unconsumed_tail or self._obj.unused_data
            if not data and len(out) == _DECODE_STEP:
                # Output was cut at the limit with all input consumed: zlib may
                # still hold pending output.
                while len(out := self._obj.decompress(b"", _DECODE_STEP)) > 0:
                    yield out

    def flush(self) -> Iterator[bytes]:
        if self._head:  # a one-byte body never got past sniffing
            yield from self._inflate(self._head)
        tail = self._obj.flush()
        if tail:
            yield tail


def _is_zlib_header(head: bytes) -> bool:
    return len(head) == 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0


class _BrotliDecoder(_Decoder):
    # output_buffer_limit is a soft cap (the buffer grows in blocks, so a step
    # may return up to about twice it); pending output stays inside the
    # decoder's window instead of being materialized, which is the point.

    def __init__(self) -> None:
        self._obj = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._obj.is_finished():
            return  # trailing bytes after the end of the stream are ignored
        out = self._obj.process(data, output_buffer_limit=_DECODE_STEP)
        if out:
            yield out
        while not self._obj.can_accept_more_data():
            out = self._obj.process(b"", output_buffer_limit=_DECODE_STEP)
            if not out:
                break
            yield out

    def flush(self) -> Iterator[bytes]:
        while not self._obj.is_finished():
            out = self._obj.process(b"", output_buffer_limit=_DECODE_STEP)
            if not out:
                break  # truncated stream: keep what arrived, like browsers
            yield out


class _ChainDecoder(_Decoder):
    """For "Content-Encoding: gzip, br": undo the last coding first."""

    def __init__(self, decoders: list[_Decoder]) -> None:
        self._decoders = decoders  # in the order to apply

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._pipe(0, self._decoders[0].feed(data))

    def flush(self) -> Iterator[bytes]:
        for index, decoder in enumerate(self._decoders):
            yield from self._pipe(index, decoder.flush())

    def _pipe(self, index: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """Pass what decoder ``index`` produced through the decoders after it."""
        if index + 1 == len(self._decoders):
            yield from pieces
            return
        for piece in pieces:
            yield from self._pipe(index + 1, self._decoders[index + 1].feed(piece))


def _decoder_for(content_encoding: str | None, url: str) -> _Decoder:
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    decoders: list[_Decoder] = []
    for coding in reversed(codings):
        if coding in ("identity", ""):
            continue
        if coding in ("gzip", "x-gzip"):
            decoders.append(_ZlibDecoder(zlib.MAX_WBITS | 16))
        elif coding == "deflate":
            decoders.append(_ZlibDecoder(zlib.MAX_WBITS, sniff_raw=True))
        elif coding == "br":
            decoders.append(_BrotliDecoder())
        else:
            raise FetchError("decode", f"{url}: unsupported Content-Encoding {coding!r}", url=url)
    if not decoders:
        return _Decoder()
    if len(decoders) == 1:
        return decoders[0]
    return _ChainDecoder(decoders)


# ---------------------------------------------------------------- headers


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP date)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._:-]*)["']""")


def sniff_encoding(body: bytes, content_type: str | None) -> str | None:
    """The body's character encoding: byte-order mark, else the Content-Type
    charset, else the XML declaration; lowercase label, None if unknown."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    if content_type:
        for param in content_type.split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset" and _known_codec(label := value.strip().strip("\"'").lower()):
                return label
    match = _XML_ENCODING.match(body[:1024])
    if match and _known_codec(label := match.group(1).decode("ascii").lower()):
        return label
    return None


def _known_codec(label: str) -> bool:
    try:
        codecs.lookup(label)
    except LookupError:
        return False
    return True
