"""actors.fetch against real HTTP servers on 127.0.0.1.

SSRF tests never let a packet leave loopback: forbidden targets are IP
literals or names answered by a fake resolver, and the client's transport is a
recorder that fails the test if it is ever asked to send.
"""

from __future__ import annotations

import asyncio
import codecs
import gzip
import random
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import brotli
import httpx
import pytest
from aiohttp import web

from actors.fetch import (
    BlockedAddressError,
    FetchError,
    FetchPolicy,
    check_url_allowed,
    fetch,
    make_client,
    make_transport,
    parse_retry_after,
    sniff_encoding,
)

LOOPBACK = ("127.0.0.0/8",)
FEED = b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def policy(**overrides: object) -> FetchPolicy:
    """Loopback allowed, tiny backoff so retry tests stay fast."""
    settings: dict[str, object] = {
        "allowed_networks": LOOPBACK,
        "timeout_s": 5.0,
        "max_retries": 2,
        "backoff_base_s": 0.01,
        "backoff_max_s": 2.0,
    }
    settings.update(overrides)
    return FetchPolicy(**settings)  # type: ignore[arg-type]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(policy()) as c:
        yield c


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport and records every request it is asked to send."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(str(request.url))
        if self.inner is None:
            raise AssertionError(f"no request may be sent, got {request.url}")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()


def compressed(data: bytes, coding: str) -> bytes:
    if coding == "gzip":
        c = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        return c.compress(data) + c.flush()
    if coding == "deflate":
        return zlib.compress(data)
    if coding == "deflate-raw":
        c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        return c.compress(data) + c.flush()
    if coding == "br":
        return brotli.compress(data)
    raise AssertionError(coding)


# ---------------------------------------------------------------- basics


async def test_plain_get_returns_body_headers_and_sends_policy_headers(server, client) -> None:
    url = server.reply("/feed", FEED, headers={"Content-Type": "application/rss+xml; charset=utf-8", "ETag": '"v1"'})
    result = await fetch(client, url, policy())
    assert result.status == 200 and result.body == FEED and not result.not_modified
    assert result.url == url and result.attempts == 1 and result.permanent_redirect_to is None
    assert result.etag == '"v1"' and result.headers["etag"] == '"v1"'
    assert result.content_type == "application/rss+xml; charset=utf-8" and result.encoding == "utf-8"
    sent = server.requests[0].headers
    assert sent["User-Agent"] == FetchPolicy().user_agent
    assert sent["Accept-Encoding"] == "gzip, deflate, br"
    assert "application/rss+xml" in sent["Accept"] and "application/feed+json" in sent["Accept"]
    assert "If-None-Match" not in sent


async def test_accept_override(server, client) -> None:
    url = server.reply("/feed", FEED)
    await fetch(client, url, policy(), accept="application/json")
    assert server.requests[0].headers["Accept"] == "application/json"


async def test_etag_revalidation_gives_not_modified(server, client) -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(body=FEED, headers={"ETag": '"v1"'})

    url = server.add("/feed", handler)
    first = await fetch(client, url, policy())
    second = await fetch(client, url, policy(), etag=first.etag)
    assert server.requests[1].headers["If-None-Match"] == '"v1"'
    assert second.not_modified and second.status == 304 and second.body == b""
    assert second.etag == '"v1"' and second.encoding is None


async def test_last_modified_revalidation_keeps_sent_validator(server, client) -> None:
    stamp = "Wed, 21 Oct 2015 07:28:00 GMT"

    async def handler(request: web.Request) -> web.Response:
        if request.headers.get("If-Modified-Since") == stamp:
            return web.Response(status=304)  # validators omitted, as many servers do
        return web.Response(body=FEED, headers={"Last-Modified": stamp})

    url = server.add("/feed", handler)
    first = await fetch(client, url, policy())
    assert first.last_modified == stamp
    second = await fetch(client, url, policy(), last_modified=stamp, etag='"x"')
    assert second.not_modified and second.last_modified == stamp and second.etag == '"x"'


@pytest.mark.parametrize("coding", ["gzip", "deflate", "deflate-raw", "br"])
async def test_compressed_bodies_are_decoded(server, client, coding: str) -> None:
    body = FEED * 200
    header = coding.split("-")[0]
    url = server.reply("/feed", compressed(body, coding), headers={"Content-Encoding": header})
    result = await fetch(client, url, policy())
    assert result.body == body
    assert result.headers["content-encoding"] == header


async def test_stacked_content_encodings_are_undone_in_reverse(server, client) -> None:
    body = FEED * 50
    url = server.reply("/feed", brotli.compress(compressed(body, "gzip")), headers={"Content-Encoding": "gzip, br"})
    assert (await fetch(client, url, policy())).body == body


async def test_corrupt_gzip_is_a_decode_error(server, client) -> None:
    url = server.reply("/feed", b"\x1f\x8b\x08\x00garbage-garbage-garbage", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy())
    assert info.value.kind == "decode" and str(info.value).startswith("fetch: ")


async def test_unknown_content_encoding_is_a_decode_error(server, client) -> None:
    url = server.reply("/feed", b"whatever", headers={"Content-Encoding": "zstd"})
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy())
    assert info.value.kind == "decode"


# ---------------------------------------------------------------- size caps


async def test_fifty_megabyte_stream_is_refused_early(server, client) -> None:
    url = server.stream("/big", b"x" * (1 << 20), limit=50 << 20)
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy())
    assert info.value.kind == "too_large" and info.value.attempts == 1  # not retried
    assert time.monotonic() - started < 5


async def test_declared_content_length_over_cap_is_refused_before_reading(server, client) -> None:
    url = server.stream("/big", b"x" * 1024, limit=1024, headers={"Content-Length": str(50 << 20)})
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy())
    assert info.value.kind == "too_large" and "Content-Length" in str(info.value)


async def test_gzip_bomb_is_refused_with_bounded_memory(server, client, gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 1 << 20  # 200 MB of zeros
    url = server.reply("/bomb", gzip_bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/xml"})
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(FetchError) as info:
            await fetch(client, url, policy())
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.kind == "too_large"
    assert elapsed < 5
    # The cap is 10 MB; inflating the bomb would need 200 MB.
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"


async def test_a_body_inflating_a_hundredfold_is_refused_under_the_size_cap(server, client) -> None:
    # 3 MB of zeros gzip to ~3 KB: under the 10 MB cap, but no text compresses like that.
    bomb = gzip.compress(bytes(3 << 20))
    url = server.reply("/bomb", bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/xml"})
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy())
    assert info.value.kind == "too_large" and "inflates over 100:1" in str(info.value)


async def test_a_large_compressed_feed_is_read_whole(server, client) -> None:
    # Text compresses a few times over, however long: 4 MB of entries in 1 MB chunks arrive whole.
    rng = random.Random(3)
    words = [f"word{n}" for n in range(5_000)]
    items = "".join(f"<item><guid>g{n}</guid><title>{' '.join(rng.choices(words, k=8))}</title>"
                    f"<description>{' '.join(rng.choices(words, k=60))}</description></item>" for n in range(8_000))
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>{items}</channel></rss>'.encode()
    compressed = gzip.compress(body)
    assert len(body) > 4 << 20 and len(body) / len(compressed) < 10
    url = server.reply("/big.xml", compressed, headers={"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"})
    result = await fetch(client, url, policy())
    assert result.body == body


async def test_brotli_bomb_is_refused(server, client) -> None:
    bomb = brotli.compress(bytes(100 << 20), quality=5)  # 100 MB -> a few hundred bytes
    url = server.reply("/bomb", bomb, headers={"Content-Encoding": "br"})
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy(max_bytes=1 << 20))
    assert info.value.kind == "too_large"


# ---------------------------------------------------------------- redirects


def redirect_chain(server, count: int, status: int = 302) -> str:
    server.reply("/final", FEED)
    for i in range(count):
        target = "/final" if i == count - 1 else f"/r{i + 1}"
        server.redirect(f"/r{i}", target, status)
    return server.url("/r0")


async def test_five_redirects_are_followed(server, client) -> None:
    result = await fetch(client, redirect_chain(server, 5), policy())
    assert result.url == server.url("/final") and result.body == FEED


async def test_six_redirects_are_too_many(server, client) -> None:
    with pytest.raises(FetchError) as info:
        await fetch(client, redirect_chain(server, 6), policy())
    assert info.value.kind == "too_many_redirects"
    assert server.hits["/final"] == 0


async def test_redirect_loop_is_detected(server, client) -> None:
    server.redirect("/a", "/b")
    server.redirect("/b", "/a#again")  # a fragment does not make it a new URL
    with pytest.raises(FetchError) as info:
        await fetch(client, server.url("/a"), policy())
    assert info.value.kind == "redirect_loop"
    assert server.hits["/a"] == 1 and server.hits["/b"] == 1


async def test_permanent_redirect_chain_is_reported(server, client) -> None:
    server.redirect("/old", "/older", 301)
    server.redirect("/older", "/new", 308)
    server.reply("/new", FEED)
    result = await fetch(client, server.url("/old"), policy())
    assert result.permanent_redirect_to == server.url("/new") == result.url


@pytest.mark.parametrize(("first", "second"), [(302, None), (301, 302), (307, 301)])
async def test_temporary_hop_means_no_permanent_redirect(server, client, first: int, second: int | None) -> None:
    server.reply("/new", FEED)
    if second is None:
        server.redirect("/old", "/new", first)
    else:
        server.redirect("/old", "/mid", first)
        server.redirect("/mid", "/new", second)
    result = await fetch(client, server.url("/old"), policy())
    assert result.url == server.url("/new") and result.permanent_redirect_to is None


async def test_redirect_to_non_http_scheme_is_refused(server, client) -> None:
    url = server.redirect("/r", "file:///etc/passwd")
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy())
    assert info.value.kind == "invalid_url"


# ---------------------------------------------------------------- retries


async def test_429_with_retry_after_is_honoured(server, client) -> None:
    url = server.sequence("/feed", (429, {"Retry-After": "1"}, b""), (200, {}, FEED))
    result = await fetch(client, url, policy(backoff_max_s=5.0))
    assert result.body == FEED and result.attempts == 2
    assert result.elapsed_s >= 0.95


async def test_503_then_success(server, client) -> None:
    url = server.sequence("/feed", (503, {}, b""), (200, {}, FEED))
    result = await fetch(client, url, policy())
    assert result.attempts == 2 and server.hits["/feed"] == 2


async def test_503_forever_gives_up_after_max_retries(server, client) -> None:
    url = server.sequence("/feed", (503, {}, b"down"))
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy(max_retries=2))
    assert info.value.kind == "http_status" and info.value.status == 503
    assert info.value.attempts == 3 and server.hits["/feed"] == 3


async def test_retry_after_beyond_cap_is_handed_to_the_caller(server, client) -> None:
    url = server.sequence("/feed", (429, {"Retry-After": "120"}, b""), (200, {}, FEED))
    started = time.monotonic()
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy(backoff_max_s=30.0))
    assert time.monotonic() - started < 2
    assert info.value.kind == "http_status" and info.value.status == 429
    assert info.value.retry_after_s == 120.0 and server.hits["/feed"] == 1


@pytest.mark.parametrize("status", [404, 410, 500])
async def test_other_error_statuses_are_not_retried(server, client, status: int) -> None:
    url = server.reply("/feed", b"nope", status=status)
    with pytest.raises(FetchError) as info:
        await fetch(client, url, policy())
    assert info.value.kind == "http_status" and info.value.status == status
    assert server.hits["/feed"] == 1 and f"HTTP {status}" in str(info.value)


async def test_connection_refused_is_connect_error_after_retries(client, closed_port: int) -> None:
    with pytest.raises(FetchError) as info:
        await fetch(client, f"http://127.0.0.1:{closed_port}/feed", policy(max_retries=1))
    assert info.value.kind == "connect" and info.value.attempts == 2


async def test_slow_drip_hits_the_total_deadline(server) -> None:
    # One byte every 0.2 s never trips a per-read timeout; the attempt deadline must.
    url = server.stream("/drip", b"<", limit=10_000, interval_s=0.2)
    slow = policy(timeout_s=1.0, max_retries=0)
    started = time.monotonic()
    async with make_client(slow) as c:
        with pytest.raises(FetchError) as info:
            await fetch(c, url, slow)
    assert info.value.kind == "timeout"
    assert 0.9 < time.monotonic() - started < 3


async def test_slow_body_is_not_retried(server) -> None:
    # The server answered; asking again would cost it and us another whole deadline.
    url = server.stream("/drip", b"<", limit=10_000, interval_s=0.2)
    slow = policy(timeout_s=0.8, max_retries=3, backoff_base_s=0.05)
    started = time.monotonic()
    async with make_client(slow) as c:
        with pytest.raises(FetchError) as info:
            await fetch(c, url, slow)
    assert info.value.kind == "timeout" and info.value.slow_body
    assert info.value.attempts == 1 and server.hits["/drip"] == 1
    assert time.monotonic() - started < 2


async def test_no_answer_before_the_deadline_is_retried(server) -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)  # cancelled when the client gives up
        return web.Response(body=FEED)

    url = server.add("/silent", silent)
    slow = policy(timeout_s=0.5, max_retries=2, backoff_base_s=0.05)
    async with make_client(slow) as c:
        with pytest.raises(FetchError) as info:
            await fetch(c, url, slow)
    assert info.value.kind == "timeout" and not info.value.slow_body
    assert info.value.attempts == 3 and server.hits["/silent"] == 3


async def test_cookies_are_neither_kept_nor_sent(server, client) -> None:
    url = server.reply("/feed", FEED, headers={"Set-Cookie": "session=abc; Path=/"})
    await fetch(client, url, policy())
    await fetch(client, url, policy())
    assert [r.headers.get("Cookie") for r in server.requests] == [None, None]
    assert len(client.cookies) == 0
    with pytest.raises(ValueError, match="keeps no cookies"):
        client.cookies = {"session": "abc"}


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Mon, 01 Jan 2024 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 01 Jan 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("") is None


# ---------------------------------------------------------------- encodings


def test_sniff_encoding_precedence() -> None:
    decl = b'<?xml version="1.0" encoding="windows-1254"?><rss/>'
    assert sniff_encoding(codecs.BOM_UTF8 + decl, "text/xml; charset=iso-8859-1") == "utf-8"
    assert sniff_encoding(codecs.BOM_UTF16_LE + "<rss/>".encode("utf-16-le"), None) == "utf-16-le"
    assert sniff_encoding(decl, 'application/rss+xml; charset="ISO-8859-9"') == "iso-8859-9"
    assert sniff_encoding(decl, "application/rss+xml") == "windows-1254"
    assert sniff_encoding(decl, "text/xml; charset=no-such-codec") == "windows-1254"
    assert sniff_encoding(b"<rss/>", None) is None


async def test_encoding_reported_from_declaration(server, client) -> None:
    body = (
        '<?xml version="1.0" encoding="windows-1254"?>'
        '<rss version="2.0"><channel><title>Haber ğ</title></channel></rss>'
    )
    url = server.reply("/tr", body.encode("cp1254"), headers={"Content-Type": "application/rss+xml"})
    result = await fetch(client, url, policy())
    assert result.encoding == "windows-1254"
    assert result.body.decode(result.encoding).endswith("</rss>")


# ---------------------------------------------------------------- SSRF guard

FORBIDDEN = [
    "http://10.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://192.168.1.1/",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://127.0.0.1/",
    "http://0.0.0.0/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://[::ffff:10.0.0.1]/",  # IPv4-mapped
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 form of 169.254.169.254
]


class Resolver:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers


@pytest.mark.parametrize("url", FORBIDDEN)
async def test_guard_refuses_private_literals_without_resolving_or_sending(url: str) -> None:
    strict = FetchPolicy()
    resolver = Resolver("8.8.8.8")
    with pytest.raises(BlockedAddressError) as info:
        await check_url_allowed(url, strict, resolver)
    assert info.value.kind == "blocked_address" and str(info.value).startswith("fetch: ")
    recorder = RecordingTransport()
    async with make_client(strict, transport=recorder) as c:
        with pytest.raises(BlockedAddressError):
            await fetch(c, url, strict, resolver=resolver)
    assert recorder.sent == [] and resolver.calls == []


async def test_guard_refuses_a_name_resolving_to_a_private_address() -> None:
    strict = FetchPolicy()
    resolver = Resolver("10.0.0.1")
    recorder = RecordingTransport()
    async with make_client(strict, transport=recorder) as c:
        with pytest.raises(BlockedAddressError) as info:
            await fetch(c, "http://internal.example/feed", strict, resolver=resolver)
    assert resolver.calls == [("internal.example", 80)]
    assert recorder.sent == []
    assert "10.0.0.1" in str(info.value) and info.value.attempts == 1  # never retried


async def test_guard_refuses_when_any_answer_is_private() -> None:
    with pytest.raises(BlockedAddressError):
        await check_url_allowed("https://mixed.example/", FetchPolicy(), Resolver("93.184.216.34", "10.0.0.1"))


async def test_guard_allows_public_answers_and_configured_networks() -> None:
    await check_url_allowed("https://news.example/", FetchPolicy(), Resolver("93.184.216.34", "2606:2800:220:1::"))
    await check_url_allowed("http://10.1.2.3/", FetchPolicy(allowed_networks=("10.0.0.0/8",)))
    await check_url_allowed("http://[fd00::1]/", FetchPolicy(allow_private=True))
    with pytest.raises(BlockedAddressError):
        await check_url_allowed("http://10.1.2.3/", FetchPolicy(allowed_networks=("10.1.2.4/32",)))


async def test_guard_sees_through_numeric_host_spellings() -> None:
    # The system resolver turns these into 127.0.0.1 without any DNS traffic.
    for url in ("http://2130706433/", "http://0x7f000001/", "http://127.1/"):
        with pytest.raises(BlockedAddressError):
            await check_url_allowed(url, FetchPolicy())


async def test_resolution_failure_is_a_connect_error() -> None:
    async def failing(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(FetchError) as info:
        await check_url_allowed("http://nowhere.example/", FetchPolicy(), failing)
    assert info.value.kind == "connect"
    with pytest.raises(FetchError) as info:
        await check_url_allowed("http://nowhere.example/", FetchPolicy(), Resolver())
    assert info.value.kind == "connect"


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "file:///etc/passwd", "http:///feed", "javascript:alert(1)"])
async def test_non_http_urls_are_invalid(url: str) -> None:
    with pytest.raises(FetchError) as info:
        await check_url_allowed(url, FetchPolicy())
    assert info.value.kind == "invalid_url"


async def test_default_policy_refuses_loopback_test_server(server) -> None:
    url = server.reply("/feed", FEED)
    strict = FetchPolicy()
    async with make_client(strict) as c:
        with pytest.raises(BlockedAddressError):
            await fetch(c, url, strict)
    assert server.hits["/feed"] == 0


async def test_redirect_to_metadata_address_is_refused_before_connecting(server) -> None:
    url = server.redirect("/feed", "http://169.254.169.254/latest/meta-data/")
    only_server = policy(allowed_networks=("127.0.0.1/32",))
    recorder = RecordingTransport(make_transport(only_server))
    async with make_client(only_server, transport=recorder) as c:
        with pytest.raises(BlockedAddressError) as info:
            await fetch(c, url, only_server)
    assert recorder.sent == [url]  # the first hop only
    assert "169.254.169.254" in str(info.value)


async def test_connect_time_check_defeats_dns_rebinding(server) -> None:
    # The pre-flight resolver says "public"; at connect time the name points at
    # loopback (the rebinding trick). The connection must still be refused.
    url = server.reply("/feed", FEED).replace("127.0.0.1", "rebind.example")
    strict = FetchPolicy(max_retries=0)
    async with make_client(strict, resolver=Resolver("127.0.0.1")) as c:
        with pytest.raises(BlockedAddressError):
            await fetch(c, url, strict, resolver=Resolver("93.184.216.34"))
    assert server.hits["/feed"] == 0


async def test_connects_to_the_checked_address_and_keeps_the_host_name(server) -> None:
    url = server.reply("/feed", FEED).replace("127.0.0.1", "feeds.example")
    resolver = Resolver("127.0.0.1")
    loop_policy = policy()
    async with make_client(loop_policy, resolver=resolver) as c:
        result = await fetch(c, url, loop_policy, resolver=resolver)
    assert result.body == FEED
    assert server.requests[0].host.startswith("feeds.example:")


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="fetch: invalid allowed_networks"):
        FetchPolicy(allowed_networks=("not-a-cidr",))
    with pytest.raises(ValueError):
        FetchPolicy(allowed_networks="127.0.0.0/8")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FetchPolicy(timeout_s=0)


async def test_many_concurrent_fetches_share_one_client(server, client) -> None:
    url = server.reply("/feed", FEED)
    results = await asyncio.gather(*(fetch(client, url, policy()) for _ in range(20)))
    assert all(r.body == FEED for r in results)
