"""Feed parsing: RSS 0.9x/1.0/2.0, Atom 0.3/1.0 (via feedparser) and JSON Feed 1.0/1.1.

Pure and synchronous: bytes in, :class:`ParsedFeed` out, no I/O. Everything a
reader's browser will render is sanitized here (nh3), so the store and the web
layer can treat ``summary``/``content`` as safe HTML and every other field as
plain text.

Date policy: ``published_at``/``updated_at`` are aware UTC datetimes or None.
A date the parser cannot read becomes None, and so does a date more than one
day ahead of ``now`` (broken clocks and "sticky" posts dated 2099 would
otherwise pin themselves to the top of every list): the caller substitutes the
fetch time. When an entry has only an update time (Atom requires <updated>,
<published> is optional), ``published_at`` falls back to it.

XML safety: external entities are never loaded (feedparser turns external
general entities off and the DTD is never fetched). Internal entities are the
other risk: feedparser keeps "safe" plain-text declarations and its fallback
(non-expat) parser expands them without any limit, so one 100 KB entity
referenced 20,000 times became a 2 GB string in 35 s. :func:`_defuse_entities`
therefore drops every declaration in the prolog except one-character shims
(``<!ENTITY nbsp "&#160;">``); billion laughs, quadratic blowup and XXE are
covered by tests/actors/test_parse.py.
"""

from __future__ import annotations

import functools
import hashlib
import html
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import feedparser
import nh3
from feedparser.encodings import convert_to_utf8  # feedparser's charset rules, reused as is

from actors import fastparse
from actors.urljoin import urljoin
from cluster.urls import canonicalize_url

__all__ = ["Enclosure", "Entry", "FastPathDeclined", "ParseError", "ParsedFeed", "parse_feed", "sanitize_html"]

ParserChoice = Literal["auto", "feedparser", "fast"]

FUTURE_TOLERANCE = timedelta(days=1)
DERIVED_TITLE_CHARS = 80
UNTITLED = "(untitled)"


class ParseError(ValueError):
    """The document is not a usable feed; the message starts with "parse: "."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"parse: {reason}")


class FastPathDeclined(Exception):
    """parse_feed(parser="fast") on a document the fast path leaves to feedparser."""


@dataclass(frozen=True, slots=True)
class Enclosure:
    url: str
    type: str | None = None
    length: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    guid: str | None
    url: str | None
    canonical_url: str | None
    title: str
    author: str | None = None
    summary: str | None = None  # sanitized HTML
    content: str | None = None  # sanitized HTML
    published_at: datetime | None = None  # aware UTC
    updated_at: datetime | None = None  # aware UTC
    language: str | None = None  # lowercase primary subtag ("en")
    categories: tuple[str, ...] = ()
    enclosures: tuple[Enclosure, ...] = ()

    @property
    def dedupe_key(self) -> str:
        """What identifies this entry within its source across re-crawls."""
        if self.guid:
            return self.guid
        if self.canonical_url:
            return self.canonical_url
        if self.url:
            return self.url
        text = f"{self.title}\n{self.summary or ''}".encode()
        digest = hashlib.sha1(text, usedforsecurity=False).hexdigest()  # an identity, not a secret
        return f"sha1:{digest}"


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    site_url: str | None
    language: str | None
    entries: list[Entry] = field(default_factory=list)
    ttl_minutes: int | None = None  # RSS <ttl>
    update_period_minutes: int | None = None  # sy:updatePeriod / sy:updateFrequency
    hub_url: str | None = None  # WebSub hub
    warning: str | None = None  # set when a malformed document was recovered


def parse_feed(
    body: bytes,
    url: str,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
    parser: ParserChoice = "auto",
) -> ParsedFeed:
    """Parse a fetched document into a :class:`ParsedFeed`.

    ``url`` is the (final) feed URL; relative links resolve against it.
    ``content_type`` is the Content-Type header value (its charset is honoured);
    when None it is taken from ``headers`` (lowercase keys), as is
    Content-Language. ``now`` (aware) is only for tests of the future-date rule.
    ``parser`` picks the XML reader: "auto" tries :mod:`actors.fastparse` and falls back to
    feedparser; "feedparser" and "fast" exist for the equivalence tests ("fast" raises
    :class:`FastPathDeclined` where "auto" would fall back).
    Raises :class:`ParseError` when the document is not a feed.
    """
    now = now or datetime.now(UTC)
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if content_type is None:
        content_type = headers.get("content-type")
    media_type, charset = _split_content_type(content_type)

    head = body.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if not head:
        raise ParseError("not a feed (empty document)")
    if head.startswith(b"{"):
        return _parse_json_feed(body, url, now)
    if _looks_like_html(head):
        raise ParseError("not a feed (looks like HTML)")
    if media_type in ("application/feed+json", "application/json") and not head.startswith(b"<"):
        raise ParseError(f"not a feed ({media_type} body that is not a JSON object)")
    return _parse_xml_feed(body, url, charset, headers.get("content-language"), now, parser)


# ---------------------------------------------------------------- XML (feedparser)

# Bozo reasons that say nothing about the document's structure.
_ENCODING_ONLY = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


def _parse_xml_feed(
    body: bytes, url: str, charset: str | None, content_language: str | None, now: datetime,
    parser: ParserChoice = "auto",
) -> ParsedFeed:
    # A byte-order mark (or "<?" spelled in UTF-16/32) outranks any label; it
    # must be applied here because UTF-16 text of ASCII is also valid UTF-8.
    charset = _unicode_signature(body) or charset
    # feedparser applies RFC 3023, under which text/xml without a charset means
    # US-ASCII; real servers mean "read the XML declaration" (RFC 7303), so only
    # the charset is passed on, under a neutral XML media type.
    content_type = "application/xml" + (f"; charset={charset}" if charset else "")
    # Decode first (feedparser's own charset rules: header, BOM, declaration,
    # fallbacks) so the entity defusing below sees the bytes the parsers will.
    conversion: dict[str, Any] = {}
    data = convert_to_utf8({"content-type": content_type}, body, conversion)
    encoding_problem = conversion.get("bozo_exception")
    if isinstance(encoding_problem, feedparser.CharacterEncodingUnknown):
        raise ParseError(f"undecodable document ({_describe(encoding_problem)})")
    data = _defuse_entities(data)

    # The fast path answers only for documents it reads exactly as feedparser would; an
    # encoding problem carries a warning only feedparser's result has, so it goes there too.
    result = None
    if parser != "feedparser" and encoding_problem is None:
        result = fastparse.parse_raw(data, url, content_language)
    if result is None and parser == "fast":
        raise FastPathDeclined(url)
    if result is None:
        response_headers = {"content-location": url, "content-type": "application/xml; charset=utf-8"}
        if content_language:
            response_headers["content-language"] = content_language
        # A stream, never bytes/str: feedparser treats a str as a URL or file name to open.
        # Its own sanitizer is off because nh3 below is stricter and faster. So is its
        # relative-URI pass: sanitize_html resolves every URL it keeps against the field's base
        # (the same xml:base feedparser would use), and the pass re-wrote each HTML field through
        # sgmllib first (entities, short tags, attribute order), a third of the parsing time.
        result = feedparser.parse(
            io.BytesIO(data), response_headers=response_headers, sanitize_html=False, resolve_relative_uris=False
        )
    version = _field(result, "version") or ""
    bozo_exc = _field(result, "bozo_exception") if _field(result, "bozo") else None
    structural_error = bozo_exc is not None and not isinstance(bozo_exc, _ENCODING_ONLY)
    warning = "; ".join(_describe(e) for e in (encoding_problem, bozo_exc) if e is not None) or None

    feed = _field(result, "feed") or {}
    feed_language = _primary_language(_field(feed, "language"))
    # Atom and JSON Feed both say a feed-level author is the author of entries naming none.
    feed_author = _xml_author(feed)
    entries = [
        e for e in (_xml_entry(raw, url, feed_language, feed_author, now) for raw in _field(result, "entries", [])) if e
    ]

    if not version and not entries:
        reason = f": {_describe(bozo_exc)}" if bozo_exc else ""
        raise ParseError(f"not a feed (no RSS, RDF or Atom root element{reason})")
    if structural_error and not entries:
        raise ParseError(f"malformed feed with no entries ({_describe(bozo_exc)})")

    return ParsedFeed(
        title=_text(_field(feed, "title"), _field(feed, "title_detail")),
        site_url=_http_url(_field(feed, "link"), url),
        language=feed_language,
        entries=entries,
        ttl_minutes=_positive_int(_field(feed, "ttl")),
        update_period_minutes=_update_period(_field(feed, "sy_updateperiod"), _field(feed, "sy_updatefrequency")),
        hub_url=next(
            (
                hub
                for link in _field(feed, "links", [])
                if _field(link, "rel") == "hub" and (hub := _http_url(_field(link, "href"), url))
            ),
            None,
        ),
        warning=warning,
    )


def _xml_author(node: Mapping[str, Any]) -> str | None:
    return _clean_line(_field(_field(node, "author_detail"), "name")) or _clean_line(_field(node, "author"))


def _xml_entry(
    raw: Mapping[str, Any], feed_url: str, feed_language: str | None, feed_author: str | None, now: datetime
) -> Entry | None:
    if not isinstance(raw, dict):
        return None
    # dict.get itself (see _field), bound once: this runs for every entry of every feed.
    get: Callable[..., Any] = functools.partial(dict.get, raw)
    link = _http_url(get("link"), feed_url)
    guid = _clean_line(get("id"))
    summary_detail = get("summary_detail")
    # feedparser copies <content> into "summary" when there is no summary; only
    # a real summary element has a summary_detail.
    summary = _html_field(get("summary"), summary_detail, link or feed_url) if summary_detail else None
    content_detail = _pick_content(get("content") or [])
    content = _html_field(_field(content_detail, "value"), content_detail, link or feed_url) if content_detail else None
    title = _text(get("title"), get("title_detail"))
    if not (guid or link or title or summary or content):
        return None  # e.g. the half-written last <item> of a truncated document

    published = _clamp_future(_struct_to_datetime(get("published_parsed")), now)
    updated = _clamp_future(_struct_to_datetime(get("updated_parsed")), now)
    language = None
    for detail in (get("title_detail"), content_detail, summary_detail):
        if detail and (language := _primary_language(_field(detail, "language"))):
            break
    # feedparser's FeedParserDict computes "enclosures" from the links on
    # attribute access; read the links directly, like every other field here.
    enclosures = tuple(
        enc
        for link_ in get("links", [])
        if _field(link_, "rel") == "enclosure"
        and (enc := _enclosure(_field(link_, "href"), _field(link_, "type"), _field(link_, "length"), feed_url))
    )
    return Entry(
        guid=guid,
        url=link,
        canonical_url=_canonical(link),
        title=title or _derive_title(summary, content),
        author=_xml_author(raw) or feed_author,
        summary=summary,
        content=content,
        published_at=published or updated,
        updated_at=updated,
        language=language or feed_language,
        categories=_categories(_field(tag, "term") or _field(tag, "label") for tag in get("tags", [])),
        enclosures=enclosures,
    )


def _field(mapping: Any, key: str, default: Any = None) -> Any:
    """Plain dict lookup: FeedParserDict.get() aliases keys (updated_parsed ->
    published_parsed) with a DeprecationWarning, and those aliases would blur
    the published/updated distinction kept here."""
    return dict.get(mapping, key, default) if isinstance(mapping, dict) else default


def _pick_content(contents: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for item in contents:
        if "html" in (_field(item, "type") or ""):
            return item
    return contents[0] if contents else None


# ---------------------------------------------------------------- JSON Feed


def _parse_json_feed(body: bytes, url: str, now: datetime) -> ParsedFeed:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ParseError(f"not a feed (invalid JSON: {_short(str(exc))})") from None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or "jsonfeed.org/version/" not in version:
        raise ParseError("not a feed (JSON without a jsonfeed.org version)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise ParseError("JSON Feed without an items list")

    feed_language = _primary_language(_str(doc.get("language")))
    feed_author = _json_authors(doc)
    entries = [
        entry
        for item in items
        if isinstance(item, dict) and (entry := _json_entry(item, url, feed_language, feed_author, now))
    ]
    hubs = doc.get("hubs") if isinstance(doc.get("hubs"), list) else []
    return ParsedFeed(
        title=_clean_line(_str(doc.get("title"))),
        site_url=_http_url(_str(doc.get("home_page_url")), url),
        language=feed_language,
        entries=entries,
        hub_url=next(
            (h for hub in hubs if isinstance(hub, dict) and (h := _http_url(_str(hub.get("url")), url))),
            None,
        ),
    )


def _json_authors(node: Mapping[str, Any]) -> str | None:
    # 1.1 has "authors" (a list); 1.0 had a single "author".
    authors = node.get("authors") if isinstance(node.get("authors"), list) else [node.get("author")]
    names = [_clean_line(_str(a.get("name"))) for a in authors if isinstance(a, dict)]
    return ", ".join(n for n in names if n) or None


def _json_entry(
    item: Mapping[str, Any], feed_url: str, feed_language: str | None, feed_author: str | None, now: datetime
) -> Entry | None:
    raw_id = item.get("id")
    # JSON Feed 1.0 allowed numeric ids; 1.1 requires strings. bool is an int subclass.
    guid = _clean_line(str(raw_id)) if isinstance(raw_id, str | int | float) and not isinstance(raw_id, bool) else None
    link = _http_url(_str(item.get("url")), feed_url) or _http_url(_str(item.get("external_url")), feed_url)
    base = link or feed_url
    summary_text = _str(item.get("summary"))
    summary = html.escape(summary_text.strip()) if summary_text and summary_text.strip() else None
    content_html, content_text = _str(item.get("content_html")), _str(item.get("content_text"))
    if content_html and content_html.strip():
        content = sanitize_html(content_html, base)
    elif content_text and content_text.strip():
        content = html.escape(content_text.strip())
    else:
        content = None
    title = _clean_line(_str(item.get("title")))
    if not (guid or link or title or summary or content):
        return None

    published = _clamp_future(_iso_datetime(item.get("date_published")), now)
    updated = _clamp_future(_iso_datetime(item.get("date_modified")), now)
    tags = item.get("tags") if isinstance(item.get("tags"), list) else []
    attachments = item.get("attachments") if isinstance(item.get("attachments"), list) else []
    return Entry(
        guid=guid,
        url=link,
        canonical_url=_canonical(link),
        title=title or _derive_title(summary, content),
        author=_json_authors(item) or feed_author,
        summary=summary,
        content=content,
        published_at=published or updated,
        updated_at=updated,
        language=_primary_language(_str(item.get("language"))) or feed_language,
        categories=_categories(_str(t) for t in tags),
        enclosures=tuple(
            enc
            for a in attachments
            if isinstance(a, dict)
            and (enc := _enclosure(_str(a.get("url")), _str(a.get("mime_type")), a.get("size_in_bytes"), feed_url))
        ),
    )


def _iso_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # RFC 3339 requires an offset; a naive value is most likely UTC.
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# ---------------------------------------------------------------- HTML sanitizing

_ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "acronym", "address", "article", "aside", "audio", "b", "bdi", "bdo",
        "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del",
        "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "footer",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "i", "img", "ins", "kbd",
        "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s", "samp", "section",
        "small", "source", "span", "strike", "strong", "sub", "summary", "sup", "table",
        "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "video", "wbr",
    }
)
_ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "lang", "dir"},
    "a": {"href", "hreflang"},  # "rel" is set by nh3 (link_rel), "target" never
    "abbr": {"title"},
    "audio": {"src", "controls", "preload"},
    "blockquote": {"cite"},
    "col": {"span"},
    "colgroup": {"span"},
    "del": {"cite", "datetime"},
    "img": {"src", "alt", "width", "height"},
    "ins": {"cite", "datetime"},
    "li": {"value"},
    "ol": {"start", "reversed", "type"},
    "q": {"cite"},
    "source": {"src", "type"},
    "td": {"colspan", "rowspan", "headers"},
    "th": {"colspan", "rowspan", "headers", "scope"},
    "time": {"datetime"},
    "video": {"src", "poster", "controls", "width", "height", "preload"},
}
# Removed together with everything inside them (plain disallowed tags keep their text).
_CLEAN_CONTENT_TAGS = frozenset({"script", "style", "iframe", "object", "embed", "template", "noembed", "frameset"})
_URL_ATTRIBUTES = frozenset({"href", "src", "cite", "poster"})
_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_LINK_REL = "noopener noreferrer nofollow"


def sanitize_html(fragment: str, base_url: str) -> str | None:
    """Sanitize an HTML fragment for display; relative URLs resolve against ``base_url``.

    Returns None when nothing but whitespace remains.
    """
    _base.url = base_url
    cleaned = _CLEANER.clean(fragment).strip()
    return cleaned or None


def _resolve_url(tag: str, attribute: str, value: str) -> str | None:
    if attribute not in _URL_ATTRIBUTES:
        return value
    # nh3 applies its scheme allow-list before this filter, to the value as written ("javascript:"
    # never gets here), and keeps what the filter returns: a relative value takes the base's
    # scheme here (an xml:base of ftp: or file:), so the resolved value is checked again.
    resolved = _join_or_none(_base.url, value.strip())
    return resolved if resolved is not None and resolved.split(":", 1)[0].lower() in _URL_SCHEMES else None


# The base URL of the fragment being cleaned, for _resolve_url. nh3 calls the filter on the
# thread that called clean(), so a thread-local keeps concurrent threads apart. One Cleaner for
# every base URL: building one converts the whole configuration (a fifth of a fragment's cost,
# and feeds have a base URL each).
_base = threading.local()
_CLEANER = nh3.Cleaner(
    tags=set(_ALLOWED_TAGS),
    clean_content_tags=set(_CLEAN_CONTENT_TAGS),
    attributes=_ALLOWED_ATTRIBUTES,
    attribute_filter=_resolve_url,
    url_schemes=set(_URL_SCHEMES),  # on the values as written; _resolve_url checks the resolved ones
    link_rel=_LINK_REL,
    strip_comments=True,
)


@functools.lru_cache(maxsize=4096)  # a feed's fragments repeat their URLs (content repeats the summary)
def _join_or_none(base_url: str, value: str) -> str | None:
    try:
        return urljoin(base_url, value)
    except ValueError:
        return None


def _html_field(value: Any, detail: Mapping[str, Any] | None, base_url: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    if _is_plain(detail):
        return html.escape(value.strip())
    return sanitize_html(value, _field(detail, "base") or base_url)


def _is_plain(detail: Mapping[str, Any] | None) -> bool:
    return _field(detail, "type") == "text/plain"


def _html_to_text(fragment: str) -> str:
    return " ".join(html.unescape(nh3.clean(fragment, tags=set(), clean_content_tags=set(_CLEAN_CONTENT_TAGS))).split())


# ---------------------------------------------------------------- small helpers


def _text(value: Any, detail: Mapping[str, Any] | None) -> str | None:
    """A title-like field as one line of plain text."""
    if not isinstance(value, str):
        return None
    if "html" in (_field(detail, "type") or ""):
        value = _html_to_text(value)
    return _clean_line(value)


def _derive_title(summary: str | None, content: str | None) -> str:
    for fragment in (summary, content):
        if fragment and (text := _html_to_text(fragment)):
            if len(text) <= DERIVED_TITLE_CHARS:
                return text
            cut = text[:DERIVED_TITLE_CHARS].rsplit(" ", 1)[0] or text[:DERIVED_TITLE_CHARS]
            return cut.rstrip(" ,;:.-") + "…"
    return UNTITLED


def _clean_line(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _http_url(value: Any, base: str) -> str | None:
    """Resolve a link and keep it only if it is http(s): a "javascript:" link
    must never reach a page as an href."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        resolved = urljoin(base, value.strip())
        if _HTTP_WITH_HOST.match(resolved):
            return resolved  # what the check below would find, without splitting every link
        parts = urlsplit(resolved)
    except ValueError:
        return None
    return resolved if parts.scheme.lower() in ("http", "https") and parts.hostname else None


# An http(s) URL whose network location is a plain host (and port): urlsplit would give it that
# scheme and a non-empty hostname. Anything else (userinfo, brackets, upper case) is split.
_HTTP_WITH_HOST = re.compile(r"https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::[0-9]*)?(?:[/?#]|\Z)")


def _canonical(link: str | None) -> str | None:
    if not link:
        return None
    try:
        return canonicalize_url(link)
    except ValueError:
        return None


def _enclosure(href: Any, mime: Any, length: Any, base: str) -> Enclosure | None:
    link = _http_url(href, base)
    if not link:
        return None
    size: int | None = None
    if isinstance(length, int) and not isinstance(length, bool):
        size = length
    elif isinstance(length, str) and length.strip().isdigit():
        size = int(length.strip())
    return Enclosure(url=link, type=_clean_line(mime), length=size if size and size > 0 else None)


def _categories(values: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for value in values:
        if (clean := _clean_line(value)) and clean.casefold() not in seen:
            seen[clean.casefold()] = clean
    return tuple(seen.values())


_LANGUAGE = re.compile(r"[a-z]{2,3}")


def _primary_language(tag: Any) -> str | None:
    """"en-US" / "EN_us" / " de " -> "en" / "en" / "de"; anything else -> None."""
    if not isinstance(tag, str):
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if _LANGUAGE.fullmatch(primary) else None


def _struct_to_datetime(value: Any) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)  # feedparser normalizes to UTC
    except (ValueError, OverflowError):
        return None


def _clamp_future(value: datetime | None, now: datetime) -> datetime | None:
    return None if value is None or value > now + FUTURE_TOLERANCE else value


def _positive_int(value: Any) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
        return number if number > 0 else None
    return None


_PERIOD_MINUTES = {"hourly": 60, "daily": 1440, "weekly": 10080, "monthly": 43200, "yearly": 525600}


def _update_period(period: Any, frequency: Any) -> int | None:
    if not isinstance(period, str) or period.strip().lower() not in _PERIOD_MINUTES:
        return None
    times = _positive_int(frequency) or 1  # sy:updateFrequency defaults to 1
    return max(1, _PERIOD_MINUTES[period.strip().lower()] // times)


def _split_content_type(value: str | None) -> tuple[str | None, str | None]:
    if not value:
        return None, None
    media, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip().strip("\"'"):
            charset = val.strip().strip("\"'")
    return media.strip().lower() or None, charset


_ENTITY_DECL = re.compile(rb"<!ENTITY(?:[^>\"']|\"[^\"]*\"|'[^']*')*>")
# One character or one character reference: what HTML-entity shims declare,
# and too small to amplify anything.
_HARMLESS_ENTITY = re.compile(rb'<!ENTITY\s+\w+\s+"(?:&#\w+;|[^&%"<]?)"\s*>')
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
# Quote-aware, so a "]" or ">" inside an entity value does not end the DTD early.
_DOCTYPE = re.compile(rb"<!DOCTYPE[^\[>]*(?:\[(?:[^\]\"']|\"[^\"]*\"|'[^']*')*\])?[^>]*>")


def _defuse_entities(data: bytes) -> bytes:
    """Remove entity declarations that could amplify, from the prolog (where
    both parsers read them) through the end of the DOCTYPE."""
    if b"<!ENTITY" not in data:
        return data
    first = _FIRST_ELEMENT.search(data)
    end = first.start() if first else len(data)
    doctype_at = data.find(b"<!DOCTYPE", 0, end)
    if doctype_at != -1:
        doctype = _DOCTYPE.match(data, doctype_at)
        # An internal subset we cannot delimit gets defused everywhere.
        end = max(end, doctype.end()) if doctype else len(data)
    head = _ENTITY_DECL.sub(lambda m: m.group(0) if _HARMLESS_ENTITY.fullmatch(m.group(0)) else b"", data[:end])
    return head + data[end:]


_SIGNATURES = (
    (b"\x00\x00\xfe\xff", "utf-32be"),
    (b"\xff\xfe\x00\x00", "utf-32le"),
    (b"\xfe\xff", "utf-16be"),
    (b"\xff\xfe", "utf-16le"),
    (b"\x00\x00\x00<", "utf-32be"),
    (b"<\x00\x00\x00", "utf-32le"),
    (b"\x00<\x00?", "utf-16be"),
    (b"<\x00?\x00", "utf-16le"),
)


def _unicode_signature(body: bytes) -> str | None:
    return next((name for prefix, name in _SIGNATURES if body.startswith(prefix)), None)


_HTML_START = re.compile(
    rb"^(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>]|body[\s>])",
    re.IGNORECASE | re.DOTALL,
)


def _looks_like_html(head: bytes) -> bool:
    return bool(_HTML_START.match(head[:4096]))


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    return _short(f"{type(exc).__name__}: {exc}")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
