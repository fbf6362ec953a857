"""OPML in and out: outlines with xmlUrl become sources, their parent outline the category."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources
from xml.parsers import expat
from xml.sax.saxutils import quoteattr

from cluster.store.sources import NewSource
from cluster.urls import normalize_source_url

DEFAULT_SOURCES_RESOURCE = ("cluster.data", "default_sources.opml")


class OpmlError(ValueError):
    """Not OPML we can read; the message says why."""


@dataclass(frozen=True, slots=True)
class OpmlImport:
    sources: list[NewSource]
    rejected: list[tuple[str, str]]  # (url or outline text, reason)


def _refuse_dtd(text: str | bytes) -> None:
    """OPML files come from users: refuse DTDs outright rather than trusting a parser with entities.

    Asked of the XML parser itself, not of the first bytes: a long comment before the DOCTYPE, or
    an encoding other than UTF-8 (UTF-16), hid one from a look at the text."""

    def refuse(*_: object) -> None:
        raise OpmlError("opml: DTDs and entities are not accepted")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(text, True)
    except expat.ExpatError:
        pass  # not well-formed: reported below with ElementTree's message


def parse_opml(text: str | bytes) -> OpmlImport:
    _refuse_dtd(text)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise OpmlError(f"opml: not well-formed XML ({exc})") from None
    if root.tag != "opml" or root.find("body") is None:
        raise OpmlError("opml: no <opml><body> element")
    sources: list[NewSource] = []
    rejected: list[tuple[str, str]] = []
    seen: set[str] = set()

    def walk(node: ET.Element, category: str | None) -> None:
        for outline in node.findall("outline"):
            url = (outline.get("xmlUrl") or "").strip()
            label = outline.get("title") or outline.get("text") or None
            if not url:
                walk(outline, label or category)
                continue
            try:
                normalized = normalize_source_url(url)
            except ValueError as exc:
                rejected.append((url, str(exc)))
                continue
            if normalized in seen:
                rejected.append((url, "duplicate in file"))
                continue
            seen.add(normalized)
            kind = "site" if (outline.get("type") or "").lower() == "site" else "feed"
            sources.append(NewSource(url=normalized, kind=kind, title=label, site_url=outline.get("htmlUrl"),
                                     language=outline.get("language"), category=category))

    walk(root.find("body"), None)  # type: ignore[arg-type]
    return OpmlImport(sources, rejected)


def default_sources() -> list[NewSource]:
    package, name = DEFAULT_SOURCES_RESOURCE
    return parse_opml(resources.files(package).joinpath(name).read_bytes()).sources


def to_opml(sources: list[NewSource], title: str = "newsray sources") -> str:
    by_category: dict[str, list[NewSource]] = {}
    for source in sources:
        by_category.setdefault(source.category or "Uncategorized", []).append(source)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<opml version="2.0">',
             f"  <head><title>{_escape(title)}</title></head>", "  <body>"]
    for category in sorted(by_category):
        lines.append(f"    <outline text={quoteattr(category)} title={quoteattr(category)}>")
        for source in by_category[category]:
            attrs = {"type": "rss" if source.kind == "feed" else "site", "text": source.title or source.url,
                     "title": source.title or source.url, "xmlUrl": source.url}
            if source.site_url:
                attrs["htmlUrl"] = source.site_url
            if source.language:
                attrs["language"] = source.language
            rendered = " ".join(f"{key}={quoteattr(value)}" for key, value in attrs.items())
            lines.append(f"      <outline {rendered}/>")
        lines.append("    </outline>")
    lines += ["  </body>", "</opml>", ""]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return quoteattr(text)[1:-1]
