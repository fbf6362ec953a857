"""URL canonicalization.

Articles are deduplicated by URL when a feed gives no guid, and sources are
identified by their feed URL, so two spellings of the same address must map to
one string. The rules are deliberately conservative: only changes that cannot
alter which resource a server returns (case of scheme and host, default ports,
dot segments, percent-escape spelling, fragments, well-known tracking
parameters) — never path case, trailing slashes or meaningful query keys.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, unquote, unquote_plus, urljoin, urlsplit

import idna

__all__ = ["TRACKING_PARAMS", "canonicalize_url", "normalize_source_url"]

# Query keys (compared case-insensitively) that only identify a campaign or a
# click, never the content. Kept explicit: broad patterns like "ref" or "source"
# are real parameters on too many sites.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid",
        "mc_cid", "mc_eid", "igshid", "yclid", "_ga", "_gl", "ref_src", "ref_url",
        "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp", "mkt_tok",
        "oly_anon_id", "oly_enc_id", "vero_id", "vero_conv", "twclid", "ttclid",
        "li_fat_id", "srsltid", "s_kwcid", "rb_clickid", "epik",
        "pk_campaign", "pk_kwd", "pk_keyword", "pk_source", "pk_medium", "pk_content",
        "mtm_campaign", "mtm_kwd", "mtm_source", "mtm_medium", "mtm_content",
        "mtm_cid", "mtm_group", "mtm_placement",
    }
)
_TRACKING_PREFIXES = ("utm_",)

_DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 3986 unreserved characters: an escape of one of these means the same as
# the character itself, so it is decoded; every other escape is kept, uppercased.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# Whitespace (what str.isspace() calls so, \x1c-\x1f included) and characters no host contains.
_BAD_HOST_CHARACTER = re.compile(r'[\s<>"\\^`{|}]')
# Characters left as they are when quoting a path or query ("%" so existing
# escapes survive, which keeps quoting idempotent).
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_PIECE_SAFE = "/?%:@!$'()*+,;=-._~"


def canonicalize_url(url: str, base: str | None = None) -> str:
    """Return the canonical form of an article URL.

    Resolves ``url`` against ``base``, lowercases scheme and host, encodes
    international hosts with IDNA, drops default ports, removes dot segments,
    spells percent-escapes one way (path case is kept, an empty path becomes
    "/"), drops the fragment and tracking parameters and sorts the remaining
    query pieces by key (stable, so repeated keys keep their order). Raises
    ``ValueError("url: ...")`` for anything but an absolute http(s) URL.
    """
    return _normalize(url, base, sort_query=True)


def normalize_source_url(url: str) -> str:
    """Return the normalized form of a source (feed) URL; idempotent.

    Same rules as :func:`canonicalize_url` except that the query order is kept:
    a feed endpoint's parameters are part of its identity and a few servers
    read them positionally. Raises ``ValueError("url: ...")`` for non-http(s)
    or hostless URLs.
    """
    return _normalize(url, None, sort_query=False)


def _normalize(url: str, base: str | None, *, sort_query: bool) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ValueError("url: empty URL")
    raw = url.strip()
    if base:
        raw = urljoin(base.strip(), raw)
    elif (canonical := _already_canonical(raw, sort_query)) is not None:
        return canonical
    try:
        parts = urlsplit(raw)
    except ValueError as exc:  # e.g. an unbalanced "[" in the host
        raise ValueError(f"url: cannot parse {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"url: unsupported scheme {scheme or '(none)'!r} in {url!r} (http or https only)")
    host = _normalize_host(parts.hostname or "", url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"url: invalid port in {url!r}") from None

    netloc = host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{host}:{port}"
    userinfo, at, _ = parts.netloc.rpartition("@")
    if at and userinfo:
        netloc = f"{userinfo}@{netloc}"

    path = _fix_escapes(quote(_remove_dot_segments(parts.path), safe=_PATH_SAFE)) or "/"
    query = _normalize_query(parts.query, sort=sort_query)
    return f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")


# A URL that every rule below leaves as it is, but for its fragment and its query's order and
# tracking parameters: lowercase http(s) scheme and ASCII host, no userinfo, a port only when it is
# not the default, a path of characters that need no escaping and no dot segments, and a query of
# pieces that need no escaping either ("%" and "+" excluded, so a key reads as it is spelled). Most
# article links look like this, and the crawler canonicalizes every one it reads
# (tests/cluster/test_urls.py checks the shortcut against the full rules on generated URLs).
_CANONICAL_ALREADY = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([1-9][0-9]{0,4}))?((?:/[A-Za-z0-9\-._~!$&'()*+,;=:@]*)*)"
    r"(?:\?([A-Za-z0-9\-._~!$'()*,;=:@/?&]*))?(?:#.*)?",
    re.DOTALL,
)
_DOT_SEGMENT = re.compile(r"/\.\.?(?=/|$)")


def _already_canonical(raw: str, sort_query: bool) -> str | None:
    """The canonical form of ``raw`` when the rules would only drop its fragment and rewrite its
    query from plain pieces, else None."""
    match = _CANONICAL_ALREADY.fullmatch(raw)
    if match is None:
        return None
    scheme, _, port, path, query = match.groups()
    if port is not None and (int(port) > 65535 or int(port) == _DEFAULT_PORTS[scheme]):
        return None
    if "." in path and _DOT_SEGMENT.search(path):
        return None
    head = raw[:match.end(4)] if path else raw[:match.end(4)] + "/"
    if not query:
        return head
    # _normalize_query on pieces that quoting, unescaping and unquote_plus all leave as they are.
    pieces = [(piece.partition("=")[0], piece) for piece in query.split("&") if piece]
    kept = _join_query([(key, piece) for key, piece in pieces if not _is_tracking(key)], sort=sort_query)
    return f"{head}?{kept}" if kept else head


def _normalize_host(host: str, url: str) -> str:
    host = host.rstrip(".")  # "example.com." names the same DNS host
    if not host:
        raise ValueError(f"url: missing host in {url!r}")
    if ":" in host:  # only IPv6 literals contain a colon once brackets are gone
        # urlsplit leaves a zone id escaped ("fe80::1%25eth0"); unescape it so
        # the output, which re-escapes it, stays idempotent.
        address, _, zone = unquote(host).partition("%")
        try:
            ip = ipaddress.IPv6Address(address)
        except ValueError:
            raise ValueError(f"url: invalid IPv6 host in {url!r}") from None
        return f"[{ip.compressed}{'%25' + zone if zone else ''}]"
    if host.isascii():
        if _BAD_HOST_CHARACTER.search(host):
            raise ValueError(f"url: invalid host in {url!r}")
        return host.lower()
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        try:  # IDNA 2003 accepts some names (emoji, symbols) that 2008 refuses
            return host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise ValueError(f"url: invalid international host in {url!r}") from None


def _normalize_query(query: str, *, sort: bool) -> str:
    pieces: list[tuple[str, str]] = []
    for piece in query.split("&"):
        if not piece:
            continue
        piece = _fix_escapes(quote(piece, safe=_QUERY_PIECE_SAFE))
        key = piece.partition("=")[0]
        if _is_tracking(unquote_plus(key)):
            continue
        pieces.append((key, piece))
    return _join_query(pieces, sort=sort)


def _is_tracking(name: str) -> bool:
    """Whether a query key (unescaped) only identifies a campaign or a click."""
    name = name.lower()
    return name in TRACKING_PARAMS or name.startswith(_TRACKING_PREFIXES)


def _join_query(pieces: list[tuple[str, str]], *, sort: bool) -> str:
    """(key, piece) pairs as a query: sorted by key when asked (stable: repeated keys keep their
    order), else as they came."""
    if sort:
        pieces.sort(key=lambda kp: kp[0])
    return "&".join(piece for _, piece in pieces)


def _fix_escapes(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return _ESCAPE.sub(repl, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4, so "/a/./b/../c" and "/a/c" compare equal."""
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    if path.startswith("/") and not result.startswith("/"):
        result = "/" + result
    return result
