"""actors.robots against real robots.txt servers on 127.0.0.1.

Time is a fake clock (TTL tests never sleep); forbidden addresses are IP
literals or names answered by a fake resolver, so no packet leaves loopback.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from actors.fetch import FetchPolicy, make_client
from actors.robots import RobotsCache, origin_of, product_token
from tests.actors.conftest import LocalServer

UA = "newsray/0.1 (+https://github.com/newsray/newsray)"
ROBOTS = b"""# a typical news site
User-agent: *
Disallow: /private/
Disallow: /search
Allow: /private/press-room/
Crawl-delay: 2.5
Sitemap: https://news.example/sitemap.xml
Sitemap: https://news.example/news-sitemap.xml

User-agent: github
Disallow: /

User-agent: badbot
Disallow: /
"""


def policy(**overrides: object) -> FetchPolicy:
    settings: dict[str, object] = {"allowed_networks": ("127.0.0.0/8",), "timeout_s": 3.0, "user_agent": UA}
    settings.update(overrides)
    return FetchPolicy(**settings)  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(policy()) as c:
        yield c


def cache(client: httpx.AsyncClient, clock: Clock | None = None, **kwargs: object) -> RobotsCache:
    return RobotsCache(client, policy(), clock=clock or Clock(), **kwargs)  # type: ignore[arg-type]


def test_product_token_and_origin() -> None:
    assert product_token(UA) == "newsray"
    assert product_token("Mozilla/5.0 (compatible)") == "mozilla"
    with pytest.raises(ValueError, match="^robots: "):
        product_token("  /1.0")
    assert origin_of("HTTP://News.Example:80/a/b?q=1") == "http://news.example"
    assert origin_of("https://news.example:8443/x") == "https://news.example:8443"
    assert origin_of("http://[::1]:81/") == "http://[::1]:81"
    with pytest.raises(ValueError, match="^robots: "):
        origin_of("ftp://news.example/")


async def test_rules_for_our_product_token(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.reply("/robots.txt", ROBOTS, headers={"Content-Type": "text/plain"})
    robots = cache(client)
    assert await robots.allowed(server.url("/2024/05/14/story"))
    assert not await robots.allowed(server.url("/private/notes"))
    assert await robots.allowed(server.url("/private/press-room/release"))  # longest match wins
    assert not await robots.allowed(server.url("/search?q=x"))
    assert await robots.allowed(server.url("/robots.txt"))
    # Only the product token is matched: the full header would also match the
    # "github" group (it appears in our URL) and be shut out of the whole site.
    assert await robots.crawl_delay(server.url("/")) == 2.5
    assert await robots.sitemaps(server.url("/")) == [
        "https://news.example/sitemap.xml",
        "https://news.example/news-sitemap.xml",
    ]
    assert server.hits["/robots.txt"] == 1
    request = server.requests[0]
    assert request.headers["User-Agent"] == UA


async def test_specific_group_beats_the_wildcard(server: LocalServer, client: httpx.AsyncClient) -> None:
    rules = b"User-agent: *\nDisallow: /\n\nUser-agent: NewsRay\nDisallow: /drafts/\nCrawl-delay: 1\n"
    server.reply("/robots.txt", rules)
    robots = cache(client)
    assert await robots.allowed(server.url("/news/a"))
    assert not await robots.allowed(server.url("/drafts/b"))
    assert await robots.crawl_delay(server.url("/")) == 1.0


async def test_cached_for_the_ttl_then_refetched(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.sequence(
        "/robots.txt",
        (200, {}, b"User-agent: *\nDisallow: /old/\n"),
        (200, {}, b"User-agent: *\nDisallow: /new/\n"),
    )
    clock = Clock()
    robots = cache(client, clock, ttl_s=3600)
    assert not await robots.allowed(server.url("/old/a"))
    clock.now += 3599
    assert not await robots.allowed(server.url("/old/a"))
    assert server.hits["/robots.txt"] == 1
    clock.now += 2
    assert await robots.allowed(server.url("/old/a"))
    assert not await robots.allowed(server.url("/new/a"))
    assert server.hits["/robots.txt"] == 2
    robots.invalidate(server.url("/"))
    await robots.allowed(server.url("/x"))
    assert server.hits["/robots.txt"] == 3


@pytest.mark.parametrize("status", [404, 410, 401, 403])
async def test_4xx_means_allow_all(server: LocalServer, client: httpx.AsyncClient, status: int) -> None:
    server.reply("/robots.txt", b"User-agent: *\nDisallow: /\n", status=status)
    robots = cache(client)
    assert await robots.allowed(server.url("/private/anything"))
    rules = await robots.rules(server.url("/"))
    assert (rules.kind, rules.status) == ("unavailable", status)
    assert await robots.crawl_delay(server.url("/")) is None


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_5xx_and_429_mean_disallow_all_for_a_while(
    server: LocalServer, client: httpx.AsyncClient, status: int
) -> None:
    server.sequence(
        "/robots.txt", (status, {"Retry-After": "0"}, b"down"), (200, {}, b"User-agent: *\nDisallow: /x/\n")
    )
    clock = Clock()
    robots = cache(client, clock, ttl_s=3600, error_ttl_s=300)
    assert not await robots.allowed(server.url("/news/a"))
    rules = await robots.rules(server.url("/"))
    assert (rules.kind, rules.status) == ("unreachable", status)
    assert rules.error is not None and rules.error.startswith("fetch: ")
    assert server.hits["/robots.txt"] == 1  # one attempt, no retries: the cache retries later
    clock.now += 299
    assert not await robots.allowed(server.url("/news/a"))
    assert server.hits["/robots.txt"] == 1
    clock.now += 2  # the short error TTL, not the hour
    assert await robots.allowed(server.url("/news/a"))
    assert server.hits["/robots.txt"] == 2


async def test_unreachable_host_disallows(client: httpx.AsyncClient, closed_port: int) -> None:
    robots = cache(client)
    assert not await robots.allowed(f"http://127.0.0.1:{closed_port}/news/a")
    assert (await robots.rules(f"http://127.0.0.1:{closed_port}/")).kind == "unreachable"


async def test_stale_rules_kept_while_unreachable(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.sequence(
        "/robots.txt",
        (200, {}, b"User-agent: *\nDisallow: /private/\n"),
        (503, {}, b"maintenance"),
    )
    clock = Clock()
    robots = cache(client, clock, ttl_s=60, error_ttl_s=10)
    assert await robots.allowed(server.url("/news/a"))
    clock.now += 61
    # RFC 9309 2.4: while robots.txt is unreachable the last good copy may be used.
    assert await robots.allowed(server.url("/news/a"))
    assert not await robots.allowed(server.url("/private/b"))
    rules = await robots.rules(server.url("/"))
    assert rules.kind == "unreachable" and rules.stale and rules.status == 503
    assert server.hits["/robots.txt"] == 2


async def test_too_many_redirects_means_unavailable(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.redirect("/robots.txt", "/robots-a.txt")
    server.redirect("/robots-a.txt", "/robots.txt")
    robots = cache(client)
    assert await robots.allowed(server.url("/news/a"))  # RFC 9309 2.3.1.2
    assert (await robots.rules(server.url("/"))).kind == "unavailable"


async def test_redirected_robots_is_followed(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.redirect("/robots.txt", "/static/robots-v2.txt", status=301)
    server.reply("/static/robots-v2.txt", b"User-agent: *\nDisallow: /drafts/\n")
    robots = cache(client)
    assert not await robots.allowed(server.url("/drafts/x"))
    assert await robots.allowed(server.url("/news/x"))


async def test_only_the_first_500_kib_are_parsed(server: LocalServer, client: httpx.AsyncClient) -> None:
    padding = b"# " + b"x" * 1000 + b"\n"
    body = b"User-agent: *\nDisallow: /early/\n" + padding * 600 + b"Disallow: /late/\n"
    server.reply("/robots.txt", body)
    robots = cache(client)
    assert not await robots.allowed(server.url("/early/a"))
    assert await robots.allowed(server.url("/late/a"))


async def test_concurrent_questions_share_one_fetch(server: LocalServer, client: httpx.AsyncClient) -> None:
    server.reply("/robots.txt", b"User-agent: *\nDisallow: /private/\n")
    robots = cache(client)
    answers = await asyncio.gather(*(robots.allowed(server.url(f"/news/{i}")) for i in range(20)))
    assert all(answers)
    assert server.hits["/robots.txt"] == 1


async def test_origins_are_separate_and_bounded(server: LocalServer) -> None:
    server.reply("/robots.txt", b"User-agent: *\nDisallow: /x/\n")

    async def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]  # two names for one loopback server: two origins

    async with make_client(policy(), resolver=resolver) as c:
        robots = RobotsCache(c, policy(), resolver=resolver, max_origins=1)
        port = server.base_url.rsplit(":", 1)[1]
        assert not await robots.allowed(f"http://a.test:{port}/x/1")
        assert not await robots.allowed(f"http://b.test:{port}/x/1")
        assert server.hits["/robots.txt"] == 2
        assert not await robots.allowed(f"http://a.test:{port}/x/1")  # evicted by the bound: fetched again
        assert server.hits["/robots.txt"] == 3
    assert {r.host for r in server.requests} == {f"a.test:{port}", f"b.test:{port}"}


async def test_ssrf_guard_applies_to_robots(server: LocalServer) -> None:
    strict = FetchPolicy(user_agent=UA)  # no private networks allowed
    calls: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["169.254.169.254"]

    async with make_client(strict, resolver=resolver) as c:
        robots = RobotsCache(c, strict, resolver=resolver)
        assert not await robots.allowed(server.url("/news/a"))  # 127.0.0.1 literal: refused
        rules = await robots.rules(server.url("/"))
        assert rules.kind == "unreachable" and "refused before connecting" in (rules.error or "")
        assert not await robots.allowed("http://metadata.internal/latest")
        assert calls == [("metadata.internal", 80)]
    assert server.hits["/robots.txt"] == 0


async def test_invalid_urls_are_rejected(client: httpx.AsyncClient) -> None:
    robots = cache(client)
    with pytest.raises(ValueError, match="^robots: "):
        await robots.allowed("mailto:editor@news.example")
    with pytest.raises(ValueError, match="^robots: "):
        RobotsCache(client, policy(), ttl_s=0)
