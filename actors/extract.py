"""Full-content extraction and paywall detection for article pages. Pure, no I/O, no Ray.

How the crawler uses this for a feed entry (issue 3, item 6):

1. ``needs_full_content(entry.summary, entry.content)``: only teasers are worth
   a page fetch (and only where robots.txt allows it).
2. ``extract_article(body, final_url, encoding=result.encoding)``: main text
   (plain), sanitized HTML, title, author, date, canonical URL, language.
   Comments, navigation and footers are left out (trafilatura, offline).
3. ``detect_paywall(body, extracted.text, feed_text, encoding=…)``: when the verdict says
   ``paywalled``, mark the article paywalled and **keep what the feed gave**
   (its summary/content) — the page only holds a teaser or a subscription
   prompt. Otherwise store ``extracted.html``/``extracted.text`` when
   :func:`improves_on` says they add to the feed's text.

Everything a browser may render (``Extracted.html``) goes through
:func:`actors.parse.sanitize_html`, the same nh3 policy as feed content.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import nh3
import trafilatura
from dateutil import parser as dateutil_parser
from lxml import etree
from lxml.html import HtmlElement
from trafilatura.htmlprocessing import convert_to_html
from trafilatura.utils import load_html
from trafilatura.xml import xmltotxt

from actors.parse import sanitize_html
from cluster.urls import canonicalize_url

__all__ = [
    "TEASER_MAX_CHARS",
    "ExtractError",
    "Extracted",
    "PaywallVerdict",
    "detect_paywall",
    "extract_article",
    "improves_on",
    "needs_full_content",
    "parse_datetime",
    "plain_text",
]

TEASER_MAX_CHARS = 400  # feed text shorter than this (as plain text) is a teaser
FUTURE_TOLERANCE = timedelta(days=1)  # same rule as actors.parse: later dates are clock errors


class ExtractError(ValueError):
    """The document cannot be read as HTML at all; the message starts with "extract: "."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"extract: {reason}")


@dataclass(frozen=True, slots=True)
class Extracted:
    url: str  # the page URL the document was fetched from
    text: str  # main text, plain, paragraphs separated by newlines; "" when none was found
    html: str | None  # main text as sanitized HTML
    title: str | None
    author: str | None
    published_at: datetime | None  # aware UTC
    canonical_url: str | None  # from <link rel=canonical>, canonicalized; None without one
    language: str | None  # declared language, lowercase primary subtag ("en")
    description: str | None  # meta description, plain text

    @property
    def word_count(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True, slots=True)
class PaywallVerdict:
    paywalled: bool
    reason: str | None = None  # what gave it away, for logs and the source's health view


NOT_PAYWALLED = PaywallVerdict(False)


# ---------------------------------------------------------------- extraction


def extract_article(html: str | bytes, url: str, *, encoding: str | None = None) -> Extracted:
    """Extract the main content and metadata of an article page.

    ``url`` is the page's final URL (links and the canonical URL resolve
    against it); ``encoding`` is the charset from the HTTP headers when known,
    otherwise it is detected. A page with no recognizable article text gives
    ``text=""`` and ``html=None``; :class:`ExtractError` only for input that
    is not an HTML document.
    """
    tree = _load(html, encoding)
    meta = _PageMeta(tree)
    # trafilatura copies the tree it is given, so `tree` stays usable for `meta`.
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        include_comments=False,
        include_formatting=True,  # keeps headings, lists and emphasis for the HTML
        include_links=True,
        include_tables=True,
        with_metadata=True,
        output_format="python",
        deduplicate=False,  # its cache is process-wide; re-crawls must extract the same page again
    )
    text, body_html, title, author, date_text, description = "", None, None, None, None, None
    if document is not None and not isinstance(document, dict):
        title = _clean_line(document.title)
        author = _clean_line(document.author)
        date_text = document.date
        description = _clean_line(document.description)
        if document.body is not None:
            body = document.body
            _drop_leading_title(body, title)
            text = _body_text(body)
            if text:
                fragment = etree.tostring(convert_to_html(body)[0], encoding="unicode")
                body_html = sanitize_html(fragment, url)
    return Extracted(
        url=url,
        text=text,
        html=body_html,
        title=title or meta.title(),
        author=author,
        published_at=meta.published_at() or parse_datetime(date_text),
        canonical_url=meta.canonical_url(url),
        language=meta.language(),
        description=description or _clean_line(meta.first("description", "og:description")),
    )


def _load(html: str | bytes, encoding: str | None) -> HtmlElement:
    if isinstance(html, bytes) and encoding:
        try:
            html = html.decode(encoding, errors="replace")
        except LookupError:
            pass  # an unknown label: let trafilatura detect the charset
    if not html.strip():
        raise ExtractError("empty document")
    tree = load_html(html)
    if tree is None:
        raise ExtractError("not an HTML document")
    return tree


def _drop_leading_title(body: etree._Element, title: str | None) -> None:
    """trafilatura keeps the page's <h1>; the title is stored on its own, so a
    first heading that repeats it would show twice."""
    if not title or len(body) == 0:
        return
    first = body[0]
    if first.tag == "head" and _normalize(first.xpath("string()")) == _normalize(title):
        body.remove(first)  # a heading's tail is whitespace between blocks


def _body_text(body: etree._Element) -> str:
    plain = deepcopy(body)
    # Without this xmltotxt writes links as Markdown; stored text must be plain.
    etree.strip_tags(plain, "ref")
    return xmltotxt(plain, False).strip()


# ---------------------------------------------------------------- page metadata


_ARTICLE_TYPES = re.compile(r"article|posting|report|review", re.IGNORECASE)
_DATE_METAS = (
    "article:published_time", "og:article:published_time", "datepublished", "date",
    "dc.date.issued", "dc.date", "dcterms.created", "parsely-pub-date", "sailthru.date", "pubdate",
)
_LANGUAGE = re.compile(r"^([a-z]{2,3})(?:[-_][a-z0-9]+)*$", re.IGNORECASE)


class _PageMeta:
    """What the page declares about itself: <meta>, <link rel=canonical>, lang, JSON-LD."""

    def __init__(self, tree: HtmlElement) -> None:
        self.tree = tree
        self.metas: dict[str, str] = {}
        for element in tree.iter("meta"):
            key = element.get("property") or element.get("name") or element.get("itemprop") or element.get(
                "http-equiv"
            )
            content = element.get("content")
            if key and content and content.strip():
                self.metas.setdefault(key.strip().lower(), content.strip())
        self.json_ld: list[Any] = []
        for script in tree.iter("script"):
            if (script.get("type") or "").split(";")[0].strip().lower() != "application/ld+json":
                continue
            try:
                # strict=False: raw newlines and tabs inside strings are common in the wild.
                self.json_ld.append(json.loads(script.text or "", strict=False))
            except ValueError:
                continue

    def first(self, *keys: str) -> str | None:
        return next((self.metas[k] for k in keys if k in self.metas), None)

    def nodes(self) -> Iterator[dict[str, Any]]:
        """Every JSON-LD object, however deeply nested (@graph, hasPart, mainEntity, …)."""
        stack: list[Any] = list(self.json_ld)
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                yield item
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)

    def article_nodes(self) -> Iterator[dict[str, Any]]:
        for node in self.nodes():
            types = node.get("@type")
            names = types if isinstance(types, list) else [types]
            if any(isinstance(name, str) and _ARTICLE_TYPES.search(name) for name in names):
                yield node

    def title(self) -> str | None:
        og = _clean_line(self.first("og:title"))
        if og:
            return og
        element = next(self.tree.iter("title"), None)
        return _clean_line(element.text_content()) if element is not None else None

    def published_at(self) -> datetime | None:
        for node in self.article_nodes():
            if (found := parse_datetime(node.get("datePublished"))) is not None:
                return found
        for key in _DATE_METAS:
            if (found := parse_datetime(self.metas.get(key))) is not None:
                return found
        return None

    def canonical_url(self, base: str) -> str | None:
        for link in self.tree.iter("link"):
            rel = (link.get("rel") or "").lower().split()
            href = (link.get("href") or "").strip()
            if "canonical" in rel and href:
                try:
                    return canonicalize_url(href, base)
                except ValueError:
                    return None
        return None

    def language(self) -> str | None:
        candidates = [self.tree.get("lang"), self.tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
        candidates += [self.first("content-language", "language", "dc.language", "og:locale")]
        candidates += [n.get("inLanguage") for n in self.article_nodes()]
        for candidate in candidates:
            if isinstance(candidate, str):
                match = _LANGUAGE.match(candidate.split(",")[0].strip())
                if match:
                    return match.group(1).lower()
        return None


def parse_datetime(value: Any, *, lenient: bool = False, now: datetime | None = None) -> datetime | None:
    """An ISO 8601 date or date-time as aware UTC; None when unreadable or more
    than a day in the future. ``lenient`` also reads human forms ("14 May 2024
    08:30") — for dates picked by a site's CSS selector, never for metadata."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        if not lenient:
            return None
        try:
            # A callable tzinfos decides every zone itself, so dateutil neither
            # guesses from the machine's local zone nor warns about unknown names.
            parsed = dateutil_parser.parse(value.strip(), tzinfos=_zone)
        except (ValueError, OverflowError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # a page that omits its zone: UTC is the least surprising guess
    parsed = parsed.astimezone(UTC)
    if parsed > (now or datetime.now(UTC)) + FUTURE_TOLERANCE:
        return None
    return parsed


def _zone(name: str | None, offset: int | None) -> tzinfo | None:
    if offset is not None:
        return timezone(timedelta(seconds=offset))
    if name and name.upper() in ("UTC", "GMT", "Z"):
        return UTC
    return None  # unknown abbreviations ("EST" means several things): treated as UTC below


def _clean_line(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    cleaned = " ".join(html_lib.unescape(value).split())
    return cleaned or None


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


# ---------------------------------------------------------------- teasers


_TRUNCATION_TAIL = re.compile(
    r"(\.\.\.|…|\[…\]|\[\.\.\.\]|\(more…?\)|read more|continue reading|read the full (?:story|article)"
    r"|weiterlesen|lire la suite|leer más|devamını oku|devamı)\W*$",
    re.IGNORECASE,
)


def plain_text(fragment: str | None) -> str:
    """Visible text of an HTML fragment (or of plain text), whitespace collapsed."""
    if not fragment:
        return ""
    stripped = nh3.clean(fragment, tags=set(), clean_content_tags={"script", "style", "template"})
    return " ".join(html_lib.unescape(stripped).split())


def needs_full_content(
    entry_summary: str | None, entry_content: str | None, *, min_chars: int = TEASER_MAX_CHARS
) -> bool:
    """Whether a feed entry carries only a teaser, so its page is worth fetching.

    Takes the entry's (HTML) summary and content. The longer of the two counts
    — content that merely repeats the summary adds nothing. A teaser is text
    under ``min_chars`` characters, or text under four times that which ends
    the way excerpts do ("…", "[…]", "Read more", "Continue reading").
    """
    summary, content = plain_text(entry_summary), plain_text(entry_content)
    text = content if len(content) >= len(summary) else summary
    if len(text) < min_chars:
        return True
    return len(text) < 4 * min_chars and _TRUNCATION_TAIL.search(text) is not None


def improves_on(extracted: Extracted, feed_text: str | None, *, margin: float = 1.2) -> bool:
    """Whether the extracted text is worth storing instead of the feed's: it
    must exist and be clearly longer (by ``margin``) than what the feed gave.
    A page whose extraction went wrong must not replace good feed text."""
    if not extracted.text or extracted.html is None:
        return False
    return extracted.word_count > margin * len(plain_text(feed_text).split())


# ---------------------------------------------------------------- paywalls


_FALSE_VALUES = frozenset({"false", "no", "0", "https://schema.org/false", "http://schema.org/false"})
_LOCKED_TIERS = frozenset({"locked", "metered"})
# Class and id tokens used by paywall vendors and CMSs. Matched per token, so
# "paywall" inside an article about paywalls' prose never counts.
_MARKER = re.compile(
    r"paywall|regwall|registration-wall|subscriber-?s?-?only|subscription-?wall|premium-?(?:content-)?lock"
    r"|(?:^|[-_])tp-(?:modal|backdrop|container-inner)(?:$|[-_])|^piano(?:$|[-_])|[-_]piano(?:$|[-_])"
    r"|article-locked|content-locked|locked-content|meteredcontent|meter-wall",
    re.IGNORECASE,
)
_NOT_MARKER = re.compile(r"^(?:no-?paywall|paywall-?(?:free|off|disabled|none))$", re.IGNORECASE)
_HIDDEN_CONTAINERS = frozenset({"script", "style", "template", "noscript", "head"})
_VISIBLE_TEXT = "//text()[not(" + " or ".join(f"ancestor::{t}" for t in sorted(_HIDDEN_CONTAINERS)) + ")]"
_PROMPT = re.compile(
    r"subscribe (?:now )?to (?:continue|keep) reading|subscribe to read|to continue reading,? (?:please )?"
    r"(?:subscribe|log in|sign in)|(?:for|exclusive to) subscribers(?: only)?|subscribers only"
    r"|already a subscriber|this (?:article|story) is (?:only )?(?:available )?(?:for|to) (?:subscribers|members)"
    r"|lesen sie weiter mit|nur für abonnenten|réservé aux abonnés|exclusivo para suscriptores"
    r"|abonelere özel",
    re.IGNORECASE,
)
TRUNCATION_RATIO = 0.5  # extracted words below this share of the declared wordCount: truncated
MIN_DECLARED_WORDS = 150  # below this a declared wordCount is too small to judge by
PROMPT_MAX_WORDS = 150  # a subscription prompt next to less text than this: paywalled


def detect_paywall(
    html: str | bytes, extracted_text: str, feed_text: str | None = None, *, encoding: str | None = None
) -> PaywallVerdict:
    """Decide whether an article page withholds its text behind a paywall.

    Evidence, strongest first: schema.org ``isAccessibleForFree`` false
    (anywhere in the JSON-LD: top level, ``@graph``, ``hasPart``; also as
    microdata); ``<meta property="article:content_tier">`` locked or metered;
    a non-empty element whose class or id is a known paywall marker (an empty
    placeholder some sites put on every page does not count); extracted text
    under half the JSON-LD ``wordCount``; a subscription prompt next to short
    text (under ``PROMPT_MAX_WORDS`` words, or shorter than ``feed_text``).

    ``extracted_text`` is :attr:`Extracted.text`; ``feed_text`` the entry's
    summary/content (HTML or plain). When paywalled, the caller keeps the
    feed's text and marks the article paywalled. ``encoding`` as for
    :func:`extract_article`.
    """
    try:
        tree = _load(html, encoding)
    except ExtractError:
        return NOT_PAYWALLED
    meta = _PageMeta(tree)
    words = len(extracted_text.split())

    for node in meta.nodes():
        if _is_false(node.get("isAccessibleForFree")):
            return PaywallVerdict(True, "schema.org isAccessibleForFree is false")
    for element in tree.xpath('//*[@itemprop="isAccessibleForFree"]'):
        if _is_false(element.get("content") or element.text_content()):
            return PaywallVerdict(True, "schema.org isAccessibleForFree is false (microdata)")

    tier = (meta.first("article:content_tier", "og:article:content_tier") or "").lower()
    if tier in _LOCKED_TIERS:
        return PaywallVerdict(True, f"article:content_tier is {tier}")

    if (marker := _paywall_marker(tree)) is not None:
        return PaywallVerdict(True, f"paywall marker {marker!r}")

    declared = max((n for node in meta.article_nodes() if (n := _int(node.get("wordCount"))) is not None), default=0)
    if declared >= MIN_DECLARED_WORDS and words < TRUNCATION_RATIO * declared:
        return PaywallVerdict(True, f"extracted {words} of the {declared} words the page declares")

    if _PROMPT.search(" ".join(" ".join(tree.xpath(_VISIBLE_TEXT)).split())):
        feed_words = len(plain_text(feed_text).split())
        if words < PROMPT_MAX_WORDS or words < feed_words:
            return PaywallVerdict(True, f"subscription prompt next to {words} words of text")
    return NOT_PAYWALLED


def _is_false(value: Any) -> bool:
    if value is False:
        return True
    return isinstance(value, str) and value.strip().lower() in _FALSE_VALUES


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().replace(",", "").isdigit():
        return int(value.strip().replace(",", ""))
    return None


def _paywall_marker(tree: HtmlElement) -> str | None:
    for element in tree.xpath("//*[@class or @id]"):
        if any(a.tag in _HIDDEN_CONTAINERS for a in element.iterancestors()) or element.tag in _HIDDEN_CONTAINERS:
            continue
        tokens = (element.get("class") or "").split() + (element.get("id") or "").split()
        for token in tokens:
            if _MARKER.search(token) and not _NOT_MARKER.match(token) and _has_content(element):
                return token
    return None


def _has_content(element: HtmlElement) -> bool:
    """A prompt, a button or a form: something a reader would see."""
    return bool(element.text_content().strip()) or len(element) > 0
