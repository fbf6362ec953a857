"""urllib.parse.urljoin, with shortcuts for the two shapes feeds are made of.

Parsing a feed joins some sixty URLs against the feed's address (every link, every <a href> and
<img src> in its HTML, in feedparser's pass and again in the sanitizer's), and the standard
function parses both arguments every time: about a third of the fast path's time in a profile of
the crawl benchmark's feeds. Two shapes cover nearly all of them and have a result that can be
written down without parsing:

* an absolute http(s) URL of plain characters comes back unchanged (urljoin returns it as is when
  its scheme differs from the base's, and otherwise splits and reassembles it into itself, dot
  segments included);
* a path from the root ("/a/b.html?x=1") is appended to the base's scheme and host.

"Plain" is deliberately narrow (printable ASCII, no ";", no empty "?" or "#"; in a path from the
root, no "." or ".." segment), and everything else goes to urllib.parse.urljoin itself. tests/actors/test_urljoin.py
compares the two on generated and hand-picked inputs.
"""

from __future__ import annotations

import functools
import re
import urllib.parse

__all__ = ["urljoin"]

# Characters that urlsplit/urlunsplit pass through untouched and that delimit nothing here.
_PLAIN = r"[A-Za-z0-9\-._~!$&'()*+,=:@%/]"
_TAIL = rf"(?:\?{_PLAIN}(?:{_PLAIN}|\?)*)?(?:#(?:{_PLAIN}|\?)+)?"
_ABSOLUTE = re.compile(rf"https?://[A-Za-z0-9\-._~!$&'()*+,=:%@]+(?:/{_PLAIN}*)?{_TAIL}")
_FROM_ROOT = re.compile(rf"/(?!/){_PLAIN}*{_TAIL}")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:[/?#]|$)")


@functools.lru_cache(maxsize=256)
def _root(base: str) -> str | None:
    """"scheme://netloc" of an http(s) base, as urljoin would rebuild it; None for other bases."""
    scheme, netloc, _, _, _, _ = urllib.parse.urlparse(base)  # may raise, as urljoin would
    return f"{scheme}://{netloc}" if scheme in ("http", "https") and netloc else None


def urljoin(base: str, url: str) -> str:
    """urllib.parse.urljoin(base, url), for str arguments."""
    if base and url:
        if url[0] == "/":
            if _FROM_ROOT.fullmatch(url) and not _DOT_SEGMENT.search(url) and (root := _root(base)):
                return root + url
        elif url[0] == "h" and _ABSOLUTE.fullmatch(url) and _root(base):
            return url
    return urllib.parse.urljoin(base, url)
