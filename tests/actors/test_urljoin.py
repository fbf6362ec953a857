"""actors.urljoin equals urllib.parse.urljoin, and fastparse's copies of feedparser's URL
functions (built on it) equal feedparser's own."""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Callable

import pytest
from feedparser.urls import _urljoin as feedparser_urljoin
from feedparser.urls import make_safe_absolute_uri as feedparser_make_safe_absolute_uri

from actors.fastparse import _make_safe_absolute_uri, urljoin_like_feedparser
from actors.parse import _http_url
from actors.urljoin import urljoin

BASES = (
    "http://127.0.1.11:8080/feeds/10.xml", "https://feeds.example/dir/feed.xml", "HTTP://Example.COM",
    "http://a/b/c/d;p?q", "https://u@h.example:8443/a/b/", "http://a", "http://a?x#y", "http://a/b/../c/./d",
    "ftp://x/y", "http:/nohost", "http://[::1]:80/x", "http://[::1/x", "//a/b", "relative/path", "",
    "javascript:alert(1)", "mailto:x@y.example",
)
PIECES = (
    *"abcXYZ019/.?#;:@%!$&'()*+,=-_~", "..", "/.", "/..", "//", "http://", "https://", "HTTP://", "ftp://",
    "javascript:", "mailto:", " ", "\t", "\n", "\x00", "[", "]", "é", "İ", "?", "#", "%2e", "%zz", "h.example",
)
HAND_PICKED = (
    "/articles/0/19.html", "/img/0/19.jpg", "/", "/a//b", "/a/./b", "/a/../b", "/a/.", "/a/..", "/a?", "/a#",
    "/a?b?c#d?e", "//host/x", "/a;p", "https://www10.farm.example/10/19?utm_source=rss", "http://h.example",
    "http://h.example?", "http://h.example#", "http://h.example/a/../b", "https://h.example:99/x?y#z",
    "HTTPS://h.example/x", "http://[::1]/x", "http://h.example/ x", "http://é.example/", "h", "hx", "x/y", "../z",
)


def _outcome(join: Callable[[str, str], str], base: str, url: str) -> str | tuple[str, str]:
    try:
        return join(base, url)
    except ValueError as exc:
        return ("ValueError", str(exc))


def _generated(rng: random.Random, count: int) -> list[tuple[str, str]]:
    pairs = []
    for _ in range(count):
        url = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        if rng.random() < 0.3:
            url = "/" + url
        elif rng.random() < 0.3:
            url = rng.choice(("https://h.example", "http://h.example", "http://h.example/p")) + url
        pairs.append((rng.choice(BASES), url))
    return pairs


def test_hand_picked_inputs_join_as_urllib_does() -> None:
    for base in BASES:
        for url in HAND_PICKED:
            assert _outcome(urljoin, base, url) == _outcome(urllib.parse.urljoin, base, url), (base, url)


def test_generated_inputs_join_as_urllib_does() -> None:
    for base, url in _generated(random.Random(3), 60_000):
        assert _outcome(urljoin, base, url) == _outcome(urllib.parse.urljoin, base, url), (base, url)


def test_the_shortcuts_are_taken_for_plain_links(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    original = urllib.parse.urljoin

    def counting(base: str, url: str) -> str:
        calls.append((base, url))
        return original(base, url)

    monkeypatch.setattr(urllib.parse, "urljoin", counting)
    base = "http://127.0.1.11:8080/feeds/10.xml"
    assert urljoin(base, "/img/0/19.jpg?size=2#top") == "http://127.0.1.11:8080/img/0/19.jpg?size=2#top"
    absolute = "https://www10.farm.example/10/19?utm_source=rss"
    assert urljoin(base, absolute) == absolute
    assert calls == []
    assert urljoin(base, "../x") == "http://127.0.1.11:8080/x"  # not a shortcut shape
    assert calls == [(base, "../x")]


def test_feedparsers_url_functions_are_reproduced() -> None:
    for base, url in _generated(random.Random(5), 30_000):
        assert urljoin_like_feedparser(base, url) == feedparser_urljoin(base, url), (base, url)
        assert _make_safe_absolute_uri(base, url) == feedparser_make_safe_absolute_uri(base, url), (base, url)
    # Slashes after the first "://" are what feedparser's fixer removes; the copy skips it otherwise.
    slashy = ("http:///x", "http:////x//y", "a1+,-.://///b", "1x:///y", "x://", "://x", "h:/x://y", "ht tp:///x",
              "http://x:///y", "HTTP:///X", "https:/x", "http:\\x", "a:b://c")
    for base in BASES:
        for url in HAND_PICKED + slashy:
            assert urljoin_like_feedparser(base, url) == feedparser_urljoin(base, url), (base, url)
    for base in BASES:
        assert _make_safe_absolute_uri(base) == feedparser_make_safe_absolute_uri(base), base
        assert _make_safe_absolute_uri(base, "") == feedparser_make_safe_absolute_uri(base, ""), base


def _http_url_by_splitting(value: str, base: str) -> str | None:
    """actors.parse._http_url without its shortcut: join, split, check scheme and host."""
    if not value.strip():
        return None
    try:
        resolved = urljoin(base, value.strip())
        parts = urllib.parse.urlsplit(resolved)
    except ValueError:
        return None
    return resolved if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def test_http_links_are_kept_as_splitting_them_would_decide() -> None:
    hosts = ("http://a", "https://a.b-c.example:8080", "http://a@b", "http://a:b@c", "http://:80", "http://a:",
             "http://a:x", "http://[::1]", "HTTP://a", "http://-a", "http://a_b", "http://é.example", "http://a\tb")
    for base, url in _generated(random.Random(7), 30_000) + [
        (base, host + tail) for base in BASES for host in hosts for tail in ("", "/", "/x?y#z", "?q", "#f", "@x/")
    ]:
        assert _http_url(url, base) == _http_url_by_splitting(url, base), (base, url)
