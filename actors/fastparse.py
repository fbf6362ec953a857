"""A fast path for well-formed RSS 2.0 and Atom 1.0, exact to feedparser or silent.

feedparser spends ~0.4 ms per item in Python handler code (its SAX callbacks, FeedParserDict,
deep copies, an sgmllib pass over every HTML field); a crawler that must parse hundreds of feeds a
second on two cores cannot afford that. This module reads the same documents with lxml (one C
call builds the tree) and re-implements, for a deliberately small subset of elements, exactly what
feedparser's strict parser would store, in the same shape (``{"version", "feed", "entries"}``
with feedparser's keys), so :mod:`actors.parse` runs its one normalization on either result.

It answers only when it can be sure, and returns None otherwise (the caller then runs feedparser):

* the document must pass expat (the parser feedparser's strict mode uses) and lxml, and contain
  no DTD or entity declaration;
* the root is ``<rss version="2.x">`` or an Atom 1.0 ``<feed>``; RSS 0.9x/1.0, Atom 0.3 and every
  namespace whose elements feedparser maps onto the core ones (RSS 1.0, Userland, ...) bail out;
* every element must be in the whitelist below for its position, with whitelisted attributes
  only; anything else (iTunes, media groups, xml:base, XHTML content, inline markup, base64 or
  out-of-line content, a textInput, a second title...) bails out;
* a single-valued field appearing twice bails out instead of modelling feedparser's
  depth-and-order rules for duplicates.

Where feedparser's behaviour is a pure function (its date parser, HTML sniffing, cp1252 table)
the function itself is called, so there is nothing to get wrong. One rewrite: feedparser's URL
joining, copied line for line onto actors.urljoin (urllib's urljoin with shortcuts, compared with
both in tests/actors/test_urljoin.py). HTML fields are handed over as the document holds them:
actors.parse runs feedparser without its relative-URI pass, because its sanitizer resolves the
URLs it keeps itself (see there). tests/actors/test_fastparse.py holds the proof obligations:
equality with feedparser on every fixture and on generated and mutated feeds.
"""

from __future__ import annotations

import functools
import re
import threading
import urllib.parse
import xml.parsers.expat
from collections.abc import Callable, Iterator
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import ACCEPTABLE_URI_SCHEMES, _urifixer
from lxml import etree

from actors.urljoin import urljoin

__all__ = ["make_safe_absolute_uri", "parse_raw", "urljoin_like_feedparser"]


# feedparser's two URL functions, line for line, on actors.urljoin (urllib's urljoin, faster, same
# results) instead of urllib's: they run for every link and every URL in every HTML field.
# tests/actors/test_urljoin.py compares them with feedparser's own.


def urljoin_like_feedparser(base: str, uri: str) -> str:
    """feedparser.urls._urljoin."""
    # _urifixer drops the slashes right after the first "://" (its scheme class has no ":"), so
    # without a "/" there the substitution returns the string unchanged: skip it, as most links do.
    separator = uri.find("://")
    if separator > 0 and uri.startswith("/", separator + 3):
        uri = _urifixer.sub(r"\1\3", uri)
    try:
        return urljoin(base, uri)
    except ValueError:
        return ""


def _make_safe_absolute_uri(base: str, rel: str | None = None) -> str:
    """feedparser.urls.make_safe_absolute_uri."""
    if not ACCEPTABLE_URI_SCHEMES:
        return urljoin_like_feedparser(base, rel or "")
    if not base:
        return rel or ""
    if not rel:
        try:
            scheme = urllib.parse.urlparse(base)[0]
        except ValueError:
            return ""
        if not scheme or scheme in ACCEPTABLE_URI_SCHEMES:
            return base
        return ""
    uri = urljoin_like_feedparser(base, rel)
    if uri.strip().split(":", 1)[0] not in ACCEPTABLE_URI_SCHEMES:
        return ""
    return uri


# Pure functions of their string arguments; a feed repeats its URLs (content repeats the
# description) and its base.
_urljoin = functools.lru_cache(maxsize=4096)(urljoin_like_feedparser)
make_safe_absolute_uri = functools.lru_cache(maxsize=4096)(_make_safe_absolute_uri)

Raw = dict[str, Any]

ATOM_NS = "http://www.w3.org/2005/Atom"
_XML_ATTR = "{http://www.w3.org/XML/1998/namespace}"
_ATOM_FEED = "{" + ATOM_NS + "}feed"

# feedparser's namespace table (lowercased URI -> its canonical prefix), taken from feedparser.
_CANONICAL: dict[str, str] = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
_CANONICAL_PREFIXES = frozenset(_CANONICAL.values()) - {""}
# Namespaces whose elements we model; every other one bails out. Atom's canonical prefix is "",
# which is how feedparser reads <atom:link> inside RSS as a plain <link>.
_MODELLED = frozenset({"", "dc", "content", "sy", "slash", "wfw", "media", "feedburner"})

_RELATIVE = _FeedParserMixin.can_be_relative_uri
_HTML_TYPES = _FeedParserMixin.html_types
_map_content_type: Callable[[str], str] = _FeedParserMixin.map_content_type
_looks_like_html: Callable[[str], bool] = _FeedParserMixin.looks_like_html
_enforce_href: Callable[[dict[str, str]], dict[str, str]] = _FeedParserMixin._enforce_href
_LINK_REF = re.compile("&([A-Za-z0-9_]+);")  # feedparser's "?a=1&b;=2" repair of link text
# Copied from feedparser's _sync_author_detail: "jane@example.com (Jane)" -> name and email.
_EMAIL = re.compile(
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"""
    r"""([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)
_DECLARATION = re.compile(rb"""xmlns(?::([^\s=/>]+))?\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_TEXT_TYPES = frozenset({"text/plain", "text/html"})
_CP1252_RANGE = re.compile("[\x80-\x9f]")
_BEYOND_LATIN1 = re.compile("[^\x00-\xff]")

_LANG = frozenset({"xml:lang"})
_LINK_ATTRS = frozenset({"href", "rel", "type", "title", "hreflang", "length", "xml:lang"})


class _Bail(Exception):
    """The document leaves the modelled subset: feedparser must read it."""


def parse_raw(data: bytes, url: str, content_language: str | None) -> Raw | None:
    """What feedparser.parse() would return for the keys actors.parse reads, or None.

    ``data`` is the document as actors.parse hands it to feedparser (UTF-8, entity declarations
    defused); ``url`` the Content-Location (base of relative links); ``content_language`` the
    Content-Language header.
    """
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or not url:
        return None
    try:
        return _Reader(data, url, content_language).read()
    except _Bail:
        return None


# ---------------------------------------------------------------- document checks

_local = threading.local()


def _lxml_parser() -> etree.XMLParser:
    # XMLParser objects are not thread-safe; one per thread, reused across documents.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                                 collect_ids=False, remove_blank_text=False)
        _local.parser = parser
    return parser


def _expat_accepts(data: bytes) -> bool:
    # feedparser's strict mode is expat via xml.sax; only what expat accepts stays out of its
    # loose (sgmllib) mode, whose output differs. A handler-less run costs a few microseconds per KB.
    parser = xml.parsers.expat.ParserCreate(None, " ")
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError:
        return False
    return True


def _check_declarations(data: bytes) -> None:
    """Namespace declarations feedparser would read differently from their URIs: a prefix bound
    twice, a URI that feedparser maps onto the core elements (RSS 1.0, Userland, Atom 0.3), or a
    canonical prefix such as "dc" bound to another namespace (feedparser dispatches on prefixes)."""
    if b"xmlns" not in data:
        return
    bound: dict[bytes, str] = {}
    for match in _DECLARATION.finditer(data):
        prefix = match.group(1)
        raw_uri = match.group(2) if match.group(2) is not None else match.group(3)
        if b"&" in raw_uri:
            raise _Bail
        uri = raw_uri.decode("utf-8").lower()
        # The default namespace may change (XHTML inside Atom); feedparser never dispatches on it.
        if prefix is not None and bound.setdefault(prefix, uri) != uri:
            raise _Bail
        canonical = _CANONICAL.get(uri)
        if "backend.userland.com/rss" in uri or (canonical == "" and uri not in ("", ATOM_NS.lower())):
            raise _Bail
        if prefix is not None and prefix.decode("utf-8", "replace") in _CANONICAL_PREFIXES:
            if canonical != prefix.decode("utf-8"):
                raise _Bail


_parse_date_cached = functools.lru_cache(maxsize=4096)(_parse_date)  # returns immutable struct_time


@functools.lru_cache(maxsize=1024)
def _name(tag: str) -> tuple[str, str]:
    """(feedparser's canonical prefix, lowercased local name) of an element."""
    if tag[0] != "{":
        return "", tag.lower()
    uri, local = tag[1:].split("}", 1)
    prefix = _CANONICAL.get(uri.lower())
    if prefix is None or prefix not in _MODELLED:
        raise _Bail
    if prefix == "" and uri != ATOM_NS:
        raise _Bail
    return prefix, local.lower()


def _attrs(element: etree._Element, allowed: frozenset[str]) -> dict[str, str]:
    """Attributes as feedparser's handlers see them: names lowercased, rel/type values lowercased."""
    items = element.items()
    if not items:
        return {}
    attrs: dict[str, str] = {}
    for key, value in items:
        if key[0] == "{":
            if not key.startswith(_XML_ATTR):
                raise _Bail  # feedparser drops unknown namespaces from attribute names
            key = "xml:" + key[len(_XML_ATTR):]
        key = key.lower()
        if key in attrs or key not in allowed:
            raise _Bail
        attrs[key] = value.lower() if key in ("rel", "type") else value
    return attrs


def _leaf_text(element: etree._Element) -> str:
    """The character data of an element that must not contain elements (comments and PIs are
    skipped, as SAX does)."""
    if len(element) == 0:
        return element.text or ""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            raise _Bail
        parts.append(child.tail or "")
    return "".join(parts)


def _children(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _language(attrs: dict[str, str], parent: str | None) -> str | None:
    lang = attrs.get("xml:lang")
    if lang == "":
        return None  # xml:lang="" unsets the language
    return parent if lang is None else lang


# ---------------------------------------------------------------- the reader


class _Reader:
    """One document. Field names and state follow feedparser's _FeedParserMixin, whose rules for
    each modelled element are reproduced in the method of the same name."""

    def __init__(self, data: bytes, url: str, content_language: str | None) -> None:
        self.data = data
        self.lang0 = content_language
        # feedparser re-derives the base at every element (no xml:base here): require a fixpoint.
        base = make_safe_absolute_uri(url, url) or url
        if (make_safe_absolute_uri(base, base) or base) != base:
            raise _Bail
        self.base = base
        self.atom = False
        self.feed: Raw = {}
        self.entries: list[Raw] = []
        self.title_depth = -1
        self.has_content = False

    def read(self) -> Raw:
        _check_declarations(self.data)
        try:
            root = etree.fromstring(self.data, _lxml_parser())
        except (etree.XMLSyntaxError, ValueError):
            raise _Bail from None
        if not _expat_accepts(self.data):
            raise _Bail
        if self.lang0:
            self.feed["language"] = self.lang0.replace("_", "-")
        if root.tag == "rss":
            self.rss(root)
            version = "rss20"
        elif root.tag == _ATOM_FEED:
            self.atom = True
            self.atom_feed(root)
            version = "atom10"
        else:
            raise _Bail
        return {"version": version, "feed": self.feed, "entries": self.entries, "bozo": False}

    # ------------------------------------------------------------ text fields

    def finish(self, text: str, element: str, ctype: str | None = None, guidislink: bool = True) -> tuple[str, str | None]:
        """feedparser's pop() for an element expecting text: the value and the (maybe sniffed) type."""
        out = text.strip()
        if out and element in _RELATIVE and (element != "id" or guidislink):
            out = _urljoin(self.base, out)
        if ctype == "text/plain" and not self.atom and _looks_like_html(out):
            ctype = "text/html"  # RSS titles are nominally text; feedparser sniffs for markup
        if not out.isascii():
            # feedparser's repair of UTF-8 read as Latin-1, then its cp1252 code point mapping. A
            # character beyond Latin-1 makes the encoding fail: found by a scan, not an exception.
            if not _BEYOND_LATIN1.search(out):
                try:
                    out = out.encode("iso-8859-1").decode("utf-8")
                except UnicodeDecodeError:
                    pass
            if _CP1252_RANGE.search(out):
                out = out.translate(_cp1252)
        return out, ctype

    def store(self, ctx: Raw, in_entry: bool, element: str, out: str, detail: Raw | None = None) -> None:
        """Where pop() puts a value (entry and feed contexts differ for links and descriptions)."""
        if in_entry:
            if element == "content":
                assert detail is not None
                ctx.setdefault("content", []).append(detail)
            elif element == "link":
                if "&" in out:  # what the repair rewrites starts with one
                    out = _LINK_REF.sub(r"&\g<1>", out.replace("&amp;", "&"))
                ctx["link"] = out
                if out:
                    ctx["links"][-1]["href"] = out
            else:
                if element == "description":
                    element = "summary"
                ctx[element] = out
                if detail is not None:
                    ctx[element + "_detail"] = detail
        else:
            if element == "description":
                element = "subtitle"
            ctx[element] = out
            if element == "link":
                if "&" in out:
                    out = _LINK_REF.sub(r"&\g<1>", out)
                ctx["link"] = out
                ctx["links"][-1]["href"] = out
            elif detail is not None:
                ctx[element + "_detail"] = detail

    def content_field(self, el: etree._Element, ctx: Raw, in_entry: bool, element: str, lang: str | None,
                      ctype: str, depth: int) -> str:
        """push_content()/pop_content(): a typed text field with a *_detail record."""
        out, ctype_out = self.finish(_leaf_text(el), element, ctype)
        detail = {"type": ctype_out, "language": lang.replace("_", "-") if lang else lang, "base": self.base,
                  "value": out}
        if element == "title" and -1 < self.title_depth <= depth:
            return out  # feedparser keeps the first title at this depth
        self.store(ctx, in_entry, element, out, detail)
        return out

    # ------------------------------------------------------------ shared element rules

    def title(self, el: etree._Element, ctx: Raw, in_entry: bool, lang: str | None, depth: int) -> None:
        attrs = _attrs(el, frozenset({"type", "xml:lang"}) if self.atom else _LANG)
        lang = _language(attrs, lang)
        ctype = _map_content_type(attrs.get("type", "text/plain"))
        if ctype not in _TEXT_TYPES:
            raise _Bail  # xhtml or another type: inline markup or base64
        if self.content_field(el, ctx, in_entry, "title", lang, ctype, depth):
            self.title_depth = depth

    def link(self, el: etree._Element, ctx: Raw, in_entry: bool) -> None:
        attrs = _attrs(el, _LINK_ATTRS)
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        attrs = _enforce_href(attrs)
        if "href" in attrs:
            attrs["href"] = _urljoin(self.base, attrs["href"])
        ctx.setdefault("links", []).append(dict(attrs))
        if "href" in attrs:
            if attrs.get("rel") == "alternate" and _map_content_type(attrs["type"]) in _HTML_TYPES:
                ctx["link"] = attrs["href"]
            if len(el):
                _leaf_text(el)  # only checks that no element hides in there
            return
        out, _ = self.finish(_leaf_text(el), "link")
        self.store(ctx, in_entry, "link", out)

    def guid(self, el: etree._Element, ctx: Raw, in_entry: bool, allowed: frozenset[str]) -> None:
        attrs = _attrs(el, allowed)
        guidislink = attrs.get("ispermalink", "true") == "true"
        out, _ = self.finish(_leaf_text(el), "id", guidislink=guidislink)
        self.store(ctx, in_entry, "id", out)
        ctx.setdefault("guidislink", guidislink and "link" not in ctx)
        if guidislink:
            ctx.setdefault("link", out)  # a permalink guid is the link when there is none (yet)

    def author(self, el: etree._Element, ctx: Raw, in_entry: bool) -> None:
        _attrs(el, _LANG)
        ctx.setdefault("authors", []).append({})
        pieces = [el.text or ""]
        for child in el:
            if isinstance(child.tag, str):
                if not self.atom:
                    raise _Bail
                self.person_part(child, ctx, on_author=True)
            pieces.append(child.tail or "")
        out, _ = self.finish("".join(pieces), "author")
        self.store(ctx, in_entry, "author", out)
        _sync_author_detail(ctx)

    def person_part(self, el: etree._Element, ctx: Raw, on_author: bool) -> None:
        """<name>, <email> or <uri> of an Atom author (stored) or contributor (ignored)."""
        prefix, name = _name(el.tag)
        _attrs(el, _LANG)
        if prefix or name not in ("name", "email", "uri"):
            raise _Bail
        text = _leaf_text(el)
        if not on_author:
            return
        if name == "uri":
            value, _ = self.finish(text, "href")
            _save_author(ctx, "href", value)
        else:
            _save_author(ctx, name, text.strip())  # pushed as not expecting text: no repairs

    def category(self, el: etree._Element, ctx: Raw, allowed: frozenset[str]) -> None:
        attrs = _attrs(el, allowed)
        _add_tag(ctx, attrs.get("term"), attrs.get("scheme", attrs.get("domain")), attrs.get("label"))
        out, _ = self.finish(_leaf_text(el), "category")
        if not out:
            return
        tags = ctx["tags"]
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = out
        else:
            _add_tag(ctx, out, None, None)

    def date(self, el: etree._Element, ctx: Raw, in_entry: bool, element: str) -> None:
        _attrs(el, _LANG)
        out, _ = self.finish(_leaf_text(el), element)
        self.store(ctx, in_entry, element, out)
        ctx[element + "_parsed"] = _parse_date_cached(out)

    def plain(self, el: etree._Element, ctx: Raw, in_entry: bool, element: str) -> None:
        """An element without a handler in feedparser: stored under its (prefixed) name."""
        attrs = _attrs(el, _LANG)
        if attrs:
            _leaf_text(el)
            ctx[element] = attrs  # feedparser keeps an unknown element's attributes instead
            return
        out, _ = self.finish(_leaf_text(el), element)
        self.store(ctx, in_entry, element, out)

    # ------------------------------------------------------------ RSS 2.0

    def rss(self, root: etree._Element) -> None:
        attrs = _attrs(root, frozenset({"version", "xml:lang"}))
        if not attrs.get("version", "").startswith("2."):
            raise _Bail  # 0.9x and version-less documents take feedparser's other paths
        lang = _language(attrs, self.lang0)
        if lang:
            self.feed["language"] = lang.replace("_", "-")
        channels = _children(root)
        if len(channels) != 1 or channels[0].tag != "channel":
            raise _Bail
        self.channel(channels[0], lang)

    def channel(self, el: etree._Element, lang: str | None) -> None:
        lang = _language(_attrs(el, _LANG), lang)
        feed = self.feed
        for child, rule in _rules(el, _CHANNEL, _SINGLE_CHANNEL):
            if rule == "item":
                self.item(child, lang)
            elif rule == "title":
                self.title(child, feed, False, lang, 3)
            elif rule == "link":
                self.link(child, feed, False)
            elif rule == "language":
                _attrs(child, _LANG)
                out, _ = self.finish(_leaf_text(child), "language")
                self.store(feed, False, "language", out)
            elif rule == "author":
                self.author(child, feed, False)
            elif rule in ("ttl", "sy_updateperiod", "sy_updatefrequency"):
                self.plain(child, feed, False, rule)
            elif rule == "image":
                self.image(child)
            else:
                _ignorable(child, rule)

    def image(self, el: etree._Element) -> None:
        _attrs(el, _LANG)
        for child in _children(el):
            prefix, name = _name(child.tag)
            if prefix or name not in ("url", "title", "link", "width", "height", "description"):
                raise _Bail  # other children would end feedparser's image mode early
            _attrs(child, _LANG)
            _leaf_text(child)
        self.title_depth = -1 if not _image_title(el) else 4

    def item(self, el: etree._Element, lang: str | None) -> None:
        lang, entry = self.new_entry(el, lang)
        for child, rule in _rules(el, _ITEM, _SINGLE_ITEM):
            if rule == "title":
                self.title(child, entry, True, lang, 4)
            elif rule == "link":
                self.link(child, entry, True)
            elif rule == "description":
                attrs = _attrs(child, _LANG)
                if "summary" in entry and not self.has_content:
                    raise _Bail  # feedparser would read it as content
                self.content_field(child, entry, True, "description", _language(attrs, lang), "text/html", 4)
            elif rule == "content":
                attrs = _attrs(child, _LANG)
                self.has_content = True
                out = self.content_field(child, entry, True, "content", _language(attrs, lang), "text/html", 4)
                entry.setdefault("summary", out)
            elif rule == "author":
                self.author(child, entry, True)
            elif rule == "category":
                self.category(child, entry, frozenset({"domain", "xml:lang"}))
            elif rule == "enclosure":
                attrs = _attrs(child, frozenset({"url", "length", "type", "xml:lang"}))
                _leaf_text(child)
                link = _enforce_href(dict(attrs))
                link["rel"] = "enclosure"
                entry.setdefault("links", []).append(link)
            elif rule == "guid":
                self.guid(child, entry, True, frozenset({"ispermalink", "xml:lang"}))
            elif rule in ("published", "updated"):
                self.date(child, entry, True, rule)
            elif rule == "language":
                _attrs(child, _LANG)
                out, _ = self.finish(_leaf_text(child), "language")
                self.store(entry, True, "language", out)
            elif rule == "source":
                _attrs(child, frozenset({"url", "xml:lang"}))
                _leaf_text(child)
                self.title_depth = -1
            else:
                _ignorable(child, rule)
        self.has_content = False

    # ------------------------------------------------------------ Atom 1.0

    def atom_feed(self, root: etree._Element) -> None:
        attrs = _attrs(root, _LANG)
        lang = _language(attrs, self.lang0)
        if lang:
            self.feed["language"] = lang.replace("_", "-")
        feed = self.feed
        for child, rule in _rules(root, _FEED, _SINGLE_FEED):
            if rule == "entry":
                self.entry(child, lang)
            elif rule == "title":
                self.title(child, feed, False, lang, 2)
            elif rule == "link":
                self.link(child, feed, False)
            elif rule == "id":
                self.guid(child, feed, False, _LANG)
            elif rule == "author":
                self.author(child, feed, False)
            elif rule == "contributor":
                self.contributor(child, feed)
            else:
                _ignorable(child, rule)

    def entry(self, el: etree._Element, lang: str | None) -> None:
        lang, entry = self.new_entry(el, lang)
        for child, rule in _rules(el, _ENTRY, _SINGLE_ENTRY):
            if rule == "title":
                self.title(child, entry, True, lang, 3)
            elif rule == "link":
                self.link(child, entry, True)
            elif rule == "id":
                self.guid(child, entry, True, _LANG)
            elif rule in ("published", "updated"):
                self.date(child, entry, True, rule)
            elif rule == "author":
                self.author(child, entry, True)
            elif rule == "contributor":
                self.contributor(child, entry)
            elif rule == "summary":
                attrs = _attrs(child, frozenset({"type", "xml:lang"}))
                if "summary" in entry and not self.has_content:
                    raise _Bail  # feedparser would read it as content
                ctype = _map_content_type(attrs.get("type", "text/plain"))
                if ctype not in _TEXT_TYPES:
                    raise _Bail
                self.content_field(child, entry, True, "summary", _language(attrs, lang), ctype, 3)
            elif rule == "content":
                attrs = _attrs(child, frozenset({"type", "xml:lang"}))  # src (out-of-line) bails
                ctype = _map_content_type(attrs.get("type", "text/plain"))
                if ctype not in _TEXT_TYPES:
                    raise _Bail  # xhtml (inline markup) or base64-encoded media types
                self.has_content = True
                out = self.content_field(child, entry, True, "content", _language(attrs, lang), ctype, 3)
                entry.setdefault("summary", out)
            elif rule == "category":
                self.category(child, entry, frozenset({"term", "scheme", "label", "xml:lang"}))
            else:
                _ignorable(child, rule)
        self.has_content = False

    def new_entry(self, el: etree._Element, lang: str | None) -> tuple[str | None, Raw]:
        """An <item> or <entry> starts: its language and its (appended) record."""
        lang = _language(_attrs(el, _LANG), lang)
        entry: Raw = {}
        self.entries.append(entry)
        self.title_depth = -1
        return lang, entry

    def contributor(self, el: etree._Element, ctx: Raw) -> None:
        _attrs(el, _LANG)
        for child in el:
            if isinstance(child.tag, str):
                self.person_part(child, ctx, on_author=False)


def _rules(el: etree._Element, table: dict[tuple[str, str], str], single: frozenset[str]
           ) -> Iterator[tuple[etree._Element, str]]:
    """The child elements of ``el`` with their rule in ``table``; bails on an element the table
    does not model and on a second occurrence of a single-valued one (feedparser's
    depth-and-order rules for duplicates are not reproduced)."""
    seen: set[str] = set()
    for child in el:
        tag = child.tag  # lxml builds a new string at every access
        if not isinstance(tag, str):
            continue  # comments and processing instructions
        rule = table.get(_name(tag))
        if rule is None:
            raise _Bail
        if rule in single:
            if rule in seen:
                raise _Bail
            seen.add(rule)
        yield child, rule


# ---------------------------------------------------------------- feedparser's author and tag rules


def _save_author(ctx: Raw, key: str, value: str) -> None:
    ctx.setdefault("author_detail", {})[key] = value
    _sync_author_detail(ctx)
    ctx.setdefault("authors", [{}])
    ctx["authors"][-1][key] = value


def _sync_author_detail(ctx: Raw) -> None:
    detail = ctx.get("authors", [{}])[-1]
    if detail:
        name, email = detail.get("name"), detail.get("email")
        if name and email:
            ctx["author"] = f"{name} ({email})"
        elif name:
            ctx["author"] = name
        elif email:
            ctx["author"] = email
        return
    author, email = ctx.get("author"), None
    if not author:
        return
    match = _EMAIL.search(author) if "@" in author else None
    if match:
        email = match.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "").replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    if author or email:
        ctx.setdefault("author_detail", detail)
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email


def _add_tag(ctx: Raw, term: str | None, scheme: str | None, label: str | None) -> None:
    tags = ctx.setdefault("tags", [])
    if not term and not scheme and not label:
        return
    value = {"term": term, "scheme": scheme, "label": label}
    if value not in tags:
        tags.append(value)


# ---------------------------------------------------------------- whitelists

# (canonical prefix, lowercased local name) -> rule. Rules in _IGNORED_* change nothing
# actors.parse reads (feedparser stores them under keys nobody reads, or in the image/source
# sub-records); they are still checked for shape, because children or attributes could.
_CHANNEL: dict[tuple[str, str], str] = {
    ("", "item"): "item", ("", "title"): "title", ("", "link"): "link",
    ("", "language"): "language", ("dc", "language"): "language",
    ("", "managingeditor"): "author", ("dc", "creator"): "author",
    ("", "ttl"): "ttl", ("sy", "updateperiod"): "sy_updateperiod", ("sy", "updatefrequency"): "sy_updatefrequency",
    ("", "image"): "image",
    ("", "description"): "text", ("", "copyright"): "text", ("dc", "rights"): "text",
    ("", "webmaster"): "text", ("dc", "publisher"): "text", ("", "generator"): "text", ("", "docs"): "text",
    ("", "pubdate"): "text", ("", "lastbuilddate"): "text", ("dc", "date"): "text", ("", "rating"): "text",
    ("sy", "updatebase"): "text",
    ("", "category"): "category", ("dc", "subject"): "category",
    ("", "cloud"): "cloud", ("", "skiphours"): "skiphours", ("", "skipdays"): "skipdays",
}
_SINGLE_CHANNEL = frozenset({"title", "language", "author", "ttl", "sy_updateperiod", "sy_updatefrequency",
                             "image"})
_ITEM: dict[tuple[str, str], str] = {
    ("", "title"): "title", ("", "link"): "link", ("", "description"): "description",
    ("content", "encoded"): "content", ("", "author"): "author", ("dc", "creator"): "author",
    ("", "category"): "category", ("dc", "subject"): "category", ("", "enclosure"): "enclosure",
    ("", "guid"): "guid", ("", "pubdate"): "published", ("dc", "date"): "updated",
    ("dc", "language"): "language", ("", "source"): "source",
    ("", "comments"): "text", ("slash", "comments"): "text", ("wfw", "commentrss"): "text",
    ("wfw", "comment"): "text", ("feedburner", "origlink"): "text",
    ("media", "content"): "media_content", ("media", "thumbnail"): "media_thumbnail",
}
_SINGLE_ITEM = frozenset({"title", "description", "content", "author", "guid", "published", "updated",
                          "language", "source"})
_FEED: dict[tuple[str, str], str] = {
    ("", "entry"): "entry", ("", "title"): "title", ("", "link"): "link", ("", "id"): "id",
    ("", "author"): "author", ("", "contributor"): "contributor",
    ("", "subtitle"): "typed_text", ("", "rights"): "typed_text",
    ("", "updated"): "text", ("", "icon"): "text", ("", "logo"): "text",
    ("", "generator"): "generator", ("", "category"): "atom_category",
}
_SINGLE_FEED = frozenset({"title", "id", "author"})
_ENTRY: dict[tuple[str, str], str] = {
    ("", "title"): "title", ("", "link"): "link", ("", "id"): "id", ("", "published"): "published",
    ("", "updated"): "updated", ("", "author"): "author", ("", "contributor"): "contributor",
    ("", "summary"): "summary", ("", "content"): "content", ("", "category"): "category",
    ("", "rights"): "typed_text",
}
_SINGLE_ENTRY = frozenset({"title", "id", "published", "updated", "author", "summary", "content"})

_IGNORED_ATTRS: dict[str, frozenset[str]] = {
    "text": _LANG,
    "typed_text": frozenset({"type", "xml:lang"}),
    "category": frozenset({"domain", "xml:lang"}),
    "atom_category": frozenset({"term", "scheme", "label", "xml:lang"}),
    "generator": frozenset({"uri", "version", "xml:lang"}),
    "cloud": frozenset({"domain", "port", "path", "registerprocedure", "protocol", "xml:lang"}),
    "media_content": frozenset({"url", "filesize", "type", "medium", "isdefault", "expression", "bitrate",
                                "framerate", "samplingrate", "channels", "duration", "height", "width"}),
    "media_thumbnail": frozenset({"url", "width", "height", "time"}),
}


def _ignorable(el: etree._Element, rule: str) -> None:
    """Check the shape of an element whose value actors.parse never reads."""
    if rule in ("skiphours", "skipdays"):
        _attrs(el, _LANG)
        inner = "hour" if rule == "skiphours" else "day"
        for child in _children(el):
            if _name(child.tag) != ("", inner):
                raise _Bail
            _attrs(child, _LANG)
            _leaf_text(child)
        return
    attrs = _attrs(el, _IGNORED_ATTRS[rule])
    if rule == "typed_text" and _map_content_type(attrs.get("type", "text/plain")) not in _TEXT_TYPES:
        raise _Bail  # xhtml children would flip feedparser into inline-content mode
    _leaf_text(el)


def _image_title(el: etree._Element) -> bool:
    """Whether the channel image has a non-empty title (feedparser then remembers its depth)."""
    for child in el:
        if isinstance(child.tag, str) and _name(child.tag) == ("", "title"):
            return bool((child.text or "").strip())
    return False
