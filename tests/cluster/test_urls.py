"""cluster.urls: canonical article URLs and normalized source URLs."""

from __future__ import annotations

import pytest

from cluster.urls import TRACKING_PARAMS, canonicalize_url, normalize_source_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/Path", "http://example.com/Path"),  # path case kept
        ("https://example.com", "https://example.com/"),
        ("https://example.com?b=1", "https://example.com/?b=1"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),  # only the scheme's own default
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/%7euser/%2fx", "https://example.com/~user/%2Fx"),
        ("https://example.com/a b/ü", "https://example.com/a%20b/%C3%BC"),
        ("https://münchen.example/straße", "https://xn--mnchen-3ya.example/stra%C3%9Fe"),
        ("https://user:pw@Example.com/", "https://user:pw@example.com/"),
        ("http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
        ("https://example.com/a/", "https://example.com/a/"),  # trailing slash is significant
    ],
)
def test_canonicalize_basics(url: str, expected: str) -> None:
    assert canonicalize_url(url) == expected


def test_tracking_parameters_are_removed_and_rest_sorted() -> None:
    url = (
        "https://news.example/story?utm_source=rss&id=7&UTM_Medium=feed&fbclid=abc&gclid=1&dclid=2"
        "&msclkid=3&mc_cid=4&mc_eid=5&igshid=6&yclid=7&_ga=8&ref_src=twsrc&b=2&a=1&a=0"
    )
    assert canonicalize_url(url) == "https://news.example/story?a=1&a=0&b=2&id=7"


def test_query_sort_is_stable_and_keeps_encoding() -> None:
    assert canonicalize_url("https://e.example/?q=a%2bb&q=c+d&flag") == "https://e.example/?flag&q=a%2Bb&q=c+d"
    assert canonicalize_url("https://e.example/?utm_source=x") == "https://e.example/"
    assert canonicalize_url("https://e.example/?&&x=1&") == "https://e.example/?x=1"


def test_relative_urls_resolve_against_base() -> None:
    base = "https://blog.example/posts/2024/index.html"
    assert canonicalize_url("../about?utm_campaign=x", base) == "https://blog.example/posts/about"
    assert canonicalize_url("/p/1#c", base) == "https://blog.example/p/1"
    assert canonicalize_url("//cdn.example/img.png", base) == "https://cdn.example/img.png"
    assert canonicalize_url("HTTPS://Other.example", base) == "https://other.example/"


def test_tracking_list_covers_the_documented_names() -> None:
    for name in ("fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_ga", "ref_src"):
        assert name in TRACKING_PARAMS


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "mailto:someone@example.com",
        "javascript:alert(1)",
        "example.com/feed",  # no scheme
        "http://",
        "https:///path",
        "",
        "   ",
        "http://example.com:99999/",
        "http://exa mple.com/",
        "http://[not-an-ip]/",
    ],
)
def test_invalid_urls_raise_value_error(url: str) -> None:
    with pytest.raises(ValueError, match=r"^url: "):
        canonicalize_url(url)
    with pytest.raises(ValueError, match=r"^url: "):
        normalize_source_url(url)


SAMPLES = [
    "HTTP://Example.COM:80/a/./b/../C?utm_source=x&b=2&a=1#frag",
    "https://münchen.example/ä?x=ü",
    "https://example.com/%7Efoo/%2f?q=%e2%82%ac",
    "http://[fe80::1%25eth0]:81/",
    "https://example.com/a b?c d=e f",
    "http://example.com/a/..",
    "https://Example.com/feed.xml?format=rss&tag=ray",
]


@pytest.mark.parametrize("url", SAMPLES)
def test_both_functions_are_idempotent(url: str) -> None:
    once = canonicalize_url(url)
    assert canonicalize_url(once) == once
    source = normalize_source_url(url)
    assert normalize_source_url(source) == source


def test_source_urls_keep_query_order_but_drop_tracking() -> None:
    assert (
        normalize_source_url(" https://Example.com/feed.xml?tag=ray&format=rss&utm_source=x#top ")
        == "https://example.com/feed.xml?tag=ray&format=rss"
    )
    assert normalize_source_url("HTTPS://Blog.Example:443") == "https://blog.example/"


def test_the_already_canonical_shortcut_agrees_with_the_full_rules() -> None:
    # _normalize returns early for URLs the rules would only strip of a fragment; on every
    # generated URL where the shortcut answers, the full rules must give the same string.
    import random

    from cluster import urls

    rng = random.Random(11)
    schemes = ["http", "https", "HTTP", "Https", "ftp"]
    hosts = ["example.com", "Example.com", "a.b-c.example", "127.0.1.8", "xn--bcher-kva.example", "host.",
             "exa_mple.com", "-x.example", "münchen.example", "[::1]", "user@host.example", "h..example", "1234"]
    ports = ["", ":80", ":443", ":8080", ":080", ":0", ":65535", ":65536", ":99999", ":", ":x"]
    segments = ["a", "B", "", ".", "..", ".hidden", "a.b", "%41", "%7e", "%2F", "~u", "x y", "é", "a:b", "@",
                "!$&'()*+,;=", "index.html", "a%", "\t", "a\nb", "[x]", "{x}", "|", "^"]
    tails = ["", "?", "?a=1", "?utm_source=x", "#", "#frag", "#a?b", "#x#y", "?b=2&a=1#f", "?b=2&a=1&UTM_Medium=y",
             "?x=1&&y", "?a=2&A=1&a=1", "?=x&b", "?q=a+b", "?q=%41", "?q=%7e&utm_source=1", "?a=1?b=2", "?fbclid=1#x",
             "?k=é", "?k=a b", "?k=[1]", "?a=/x:@!$'()*,;", "?mc_cid=&z=1"]
    plain = {"scheme": schemes[:2], "host": hosts[:5], "port": ports[:4] + ports[6:7], "segment": segments[:2] + segments[5:7]
             + segments[10:12] + segments[13:15], "tail": tails}
    odd = {"scheme": schemes, "host": hosts, "port": ports, "segment": segments, "tail": tails}
    answered = with_query = 0
    for n in range(30_000):
        # Mostly URLs near the shortcut's edge: one piece at a time from the odd ones.
        pick = {key: (odd if rng.random() < 0.15 else plain)[key] for key in plain} if n % 2 else odd
        path = "".join("/" + rng.choice(pick["segment"]) for _ in range(rng.randint(0, 4)))
        url = f"{rng.choice(pick['scheme'])}://{rng.choice(pick['host'])}{rng.choice(pick['port'])}{path}{rng.choice(pick['tail'])}"
        sorted_shortcut, kept_order_shortcut = urls._already_canonical(url, True), urls._already_canonical(url, False)
        assert (sorted_shortcut is None) == (kept_order_shortcut is None), url
        if sorted_shortcut is None:
            continue
        answered += 1
        with_query += "?" in url.split("#", 1)[0]
        original = urls._already_canonical
        try:
            urls._already_canonical = lambda raw, sort_query: None  # type: ignore[assignment] - the full rules only
            assert canonicalize_url(url) == sorted_shortcut, url
            assert normalize_source_url(url) == kept_order_shortcut, url
        finally:
            urls._already_canonical = original  # type: ignore[assignment]
    assert answered > 3_000 and with_query > 1_000, (answered, with_query)
    assert urls._already_canonical("http://127.0.1.8:40777/articles/7/19.html", True) == "http://127.0.1.8:40777/articles/7/19.html"
    assert urls._already_canonical("https://news.example", True) == "https://news.example/"
    assert urls._already_canonical("https://w.example/a?utm_source=rss&b=2&a=1#c", True) == "https://w.example/a?a=1&b=2"
    assert urls._already_canonical("https://w.example/a?utm_source=rss&b=2&a=1#c", False) == "https://w.example/a?b=2&a=1"
    assert urls._already_canonical("https://w.example/a?q=%41", True) is None  # escapes take the full rules
