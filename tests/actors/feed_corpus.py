"""Generated RSS 2.0 and Atom 1.0 documents for the fast-parser equivalence tests.

Deterministic (one seeded Random per document) and deliberately varied in the ways real feeds
vary and feedparser has quirks: missing or non-URL guids, isPermaLink spellings, HTML and
entities in titles, CDATA, relative links, duplicate and case-variant categories, enclosures,
RFC 822 / ISO 8601 dates in many zones (and broken ones), Turkish text, authors with e-mail
addresses, xml:lang, content types, fragments that only feedparser's own HTML pass can read.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from html import escape
from xml.sax.saxutils import quoteattr

BASE = "https://news.example/feeds/"

WORDS = (
    "markets rally after central bank holds rates steady while analysts expect cuts next year "
    "İstanbul'da yağmur etkili oldu, şehir içi ulaşımda aksamalar yaşandı ve öğrenciler çarşamba "
    "günü okula gidemedi Über naïve café résumé — “quoted” ‘single’ 50% off & more"
).split()

RFC822_DATES = (
    "Tue, 02 Jan 2024 10:30:00 +0100", "Wed, 03 Jan 2024 08:00:00 GMT", "Thu, 04 Jan 2024 23:59:59 EST",
    "04 Jan 2024 12:00:00 +0300", "Fri, 5 Jan 2024 7:05:00 PST", "Sat, 06 Jan 2024 10:30 +0000",
    "Sun, 07 Jan 2024 10:30:00 Z", "Mon, 08 Jan 2024 01:02:03 -0930", "Tue, 09 Jan 24 10:30:00 +0200",
    "Wed, 10 Jan 2024 10:30:00 UT", "not a date", "", "Thu, 11 Jan 2099 10:00:00 +0000",
    "2024-01-12T10:30:00+03:00",
)
ISO_DATES = (
    "2024-01-02T10:30:00Z", "2024-01-03T08:00:00+03:00", "2024-01-04T23:59:59.123-05:00",
    "2024-01-05T07:05:00+0000", "2024-01-06", "2024-01-07T10:30Z", "2099-01-01T00:00:00Z",
    "2024-13-40T99:00:00Z", "2024-01-08 10:30:00", "Tue, 09 Jan 2024 10:30:00 +0100",
)
LANGUAGES = ("en-us", "tr", "EN_gb", "de-DE", "x-klingon", "", None)
HTML_FRAGMENTS = (
    "<p>Plain paragraph with <b>bold</b> and <i>italic</i>.</p>",
    '<p>See <a href="/about?x=1&amp;y=2" title="About">about</a> and <img src="img/pic.png" alt="pic" />.</p>',
    "<P CLASS='lead' ID=\"x\">Upper-case tags</P><BR/><hr>",
    '<p>Entities: &nbsp;&copy; &#8217; &#150; &#x201C; &#39; &#34; &amp; &lt;tag&gt;</p>',
    '<a href="javascript:alert(1)">js</a> <a href="mailto:a@b.example">mail</a> <a href="HTTP://Example.com/A">abs</a>',
    "Tom & Jerry < 3 friends",
    '<p onclick="evil()">handlers</p><script>alert("x")</script><style>p{}</style>',
    "<!-- a comment --><p>after comment</p>",
    '<img src=unquoted.png alt=x><input disabled>',
    "<p>unclosed <em>emphasis",
    "&bogus; &amp &#x; & at end &",
    '<iframe src="https://video.example/embed/1"></iframe><video src="v.mp4" poster="p.jpg"></video>',
    '<blockquote cite="../quote.html">q</blockquote><q cite="q2">q2</q>',
    "<table><tr><td colspan=\"2\">cell</td></tr></table>",
    "Line one<br />Line two<br>Line three",
    '<a href="x.html" rel="NoFollow" type="TEXT/HTML">typed</a>',
    "<o:p>office</o:p><![CDATA[inner]]>",
    '<a href="http:////news.example/slashes">slashes</a> <a href=" spaced.html ">spaced</a>',
    "",
    "   ",
    "Ã¼ber mojibake and \u0080\u0093 cp1252 controls",
)
TITLES = (
    "Plain title", "Title with &amp; ampersand", "Tom &amp; Jerry", "AT&amp;T earnings",
    "Title with &lt;b&gt;escaped&lt;/b&gt; markup", "<![CDATA[CDATA <b>bold</b> title]]>",
    "Double &amp;amp; escaped", "Türkçe başlık: İstanbul'da öğle", "  spaced   out  title  ",
    "Ã¼ber mojibake", "x &lt; y &amp;&amp; y &gt; z", "&lt;/p&gt; closing only", "&amp;copy; 2024",
    "", "Entity &#8220;quotes&#8221;",
)


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def _text(rng: random.Random, value: str) -> str:
    """Serialize text content: escaped, CDATA, or raw (already escaped) markup."""
    if value.startswith("<![CDATA["):
        return value
    mode = rng.random()
    if mode < 0.4 or "]]>" in value:
        return escape(value, quote=False)
    if mode < 0.7:
        return f"<![CDATA[{value}]]>"
    return escape(escape(value, quote=False), quote=False) if rng.random() < 0.1 else escape(value, quote=False)


def _title(rng: random.Random) -> str:
    choice = rng.choice(TITLES)
    return choice if choice.startswith("<![CDATA[") else choice  # already in XML form


def _link(rng: random.Random, n: int) -> str:
    return rng.choice((
        f"https://news.example/{n}", f"/articles/{n}.html", f"articles/{n}?utm_source=rss&amp;id={n}",
        f"https://news.example/{n}#frag", f"  https://news.example/{n}  ", f"HTTPS://NEWS.example:443/{n}",
        f"javascript:alert({n})", "", f"/q?a=1&amp;amp;b=2&amp;copy;c={n}",
    ))


def _html(rng: random.Random) -> str:
    parts = [rng.choice(HTML_FRAGMENTS) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.5:
        parts.append(f"<p>{escape(_words(rng, 3, 12), quote=False)}</p>")
    return "".join(parts)


def rss_document(seed: int) -> bytes:
    rng = random.Random(seed)
    namespaces = {
        "content": "http://purl.org/rss/1.0/modules/content/", "dc": "http://purl.org/dc/elements/1.1/",
        "atom": "http://www.w3.org/2005/Atom", "sy": "http://purl.org/rss/1.0/modules/syndication/",
        "media": "http://search.yahoo.com/mrss/", "slash": "http://purl.org/rss/1.0/modules/slash/",
        "wfw": "http://wellformedweb.org/CommentAPI/",
    }
    declared = " ".join(f'xmlns:{p}="{u}"' for p, u in namespaces.items() if rng.random() < 0.8 or p in ("dc", "content", "atom"))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>']
    root_lang = rng.choice(LANGUAGES) if rng.random() < 0.2 else None
    lang_attr = f" xml:lang={quoteattr(root_lang)}" if root_lang is not None else ""
    lines.append(f'<rss version="{rng.choice(("2.0", "2.0", "2.01"))}" {declared}{lang_attr}>')
    lines.append("<channel>")
    channel: list[Callable[[], str]] = [
        lambda: f"<title>{_text(rng, rng.choice(('Example News', 'Haber &amp; Gündem', 'Feed <b>bold</b>')))}</title>",
        lambda: f"<link>{_link(rng, 0)}</link>",
        lambda: f"<description>{_text(rng, _words(rng, 3, 10))}</description>",
        lambda: f"<language>{rng.choice(LANGUAGES) or ''}</language>",
        lambda: f"<ttl>{rng.choice(('30', '0', ' 45 ', 'soon', '-5'))}</ttl>",
        lambda: f"<sy:updatePeriod>{rng.choice(('hourly', 'daily', 'Weekly', 'never'))}</sy:updatePeriod>"
        if "sy" in declared else "<generator>gen</generator>",
        lambda: f"<sy:updateFrequency>{rng.choice(('2', '1', 'x'))}</sy:updateFrequency>"
        if "sy" in declared else "<docs>https://www.rssboard.org/rss-specification</docs>",
        lambda: f"<managingEditor>{rng.choice(('editor@news.example (Ed Itor)', 'Ed Itor', 'ed@news.example'))}</managingEditor>",
        lambda: '<atom:link rel="self" type="application/rss+xml" href="https://news.example/feed.xml"/>',
        lambda: f'<atom:link rel="hub" href="{rng.choice(("https://hub.example/", "/hub", "ftp://hub.example/"))}"/>',
        lambda: "<image><url>/logo.png</url><title>Logo</title><link>https://news.example/</link></image>",
        lambda: "<category>Channel Cat</category>",
        lambda: f"<lastBuildDate>{rng.choice(RFC822_DATES)}</lastBuildDate>",
        lambda: '<cloud domain="rpc.example" port="80" path="/RPC2" registerProcedure="p" protocol="xml-rpc"/>',
        lambda: "<skipHours><hour>1</hour><hour>2</hour></skipHours>",
        lambda: "<!-- a comment between elements -->",
    ]
    for make in channel:
        if rng.random() < 0.6:
            lines.append(make())
    for n in range(rng.randint(0, 8)):
        lines.append(_rss_item(rng, n, declared))
    lines.append("</channel></rss>")
    return "\n".join(lines).encode("utf-8")


def _rss_item(rng: random.Random, n: int, declared: str) -> str:
    parts: list[str] = []
    lang = rng.choice(LANGUAGES) if rng.random() < 0.15 else None
    parts.append(f"<item{f' xml:lang={quoteattr(lang)}' if lang is not None else ''}>")
    if rng.random() < 0.9:
        parts.append(f"<title>{_title(rng)}</title>")
    if rng.random() < 0.8:
        parts.append(f"<link>{_link(rng, n)}</link>")
    guid = rng.random()
    if guid < 0.25:
        parts.append(f"<guid>https://news.example/{n}</guid>")
    elif guid < 0.4:
        parts.append(f"<guid>item-{n}-abc</guid>")  # not a URL, permalink by default: resolved
    elif guid < 0.55:
        parts.append(f'<guid isPermaLink="false">tag:news.example,2024:{n}</guid>')
    elif guid < 0.6:
        parts.append(f'<guid isPermaLink="{rng.choice(("False", "true", "TRUE"))}">/rel/{n}</guid>')
    if rng.random() < 0.8:
        parts.append(f"<pubDate>{rng.choice(RFC822_DATES)}</pubDate>")
    if rng.random() < 0.2:
        parts.append(f"<dc:date>{rng.choice(ISO_DATES)}</dc:date>")
    if rng.random() < 0.5:
        author = rng.choice(("jane@news.example (Jane Doe)", "Jane Doe", "<jane@news.example>", "Şükrü Öztürk",
                             "john.smith@news.example", "(Anonymous)"))
        tag = rng.choice(("author", "dc:creator"))
        parts.append(f"<{tag}>{escape(author, quote=False)}</{tag}>")
    for _ in range(rng.choice((0, 1, 2, 3))):
        cat = rng.choice(("Science", "science", " Computing ", "Türkiye", "TÜRKİYE", "", "Économie"))
        if rng.random() < 0.2:
            parts.append(f'<category domain="https://news.example/cats">{escape(cat)}</category>')
        elif rng.random() < 0.2:
            parts.append(f"<dc:subject>{escape(cat)}</dc:subject>")
        else:
            parts.append(f"<category>{escape(cat)}</category>")
    desc = rng.random()
    if desc < 0.75:
        body = _html(rng) if rng.random() < 0.7 else _words(rng, 5, 25)
        parts.append(f"<description>{_text(rng, body)}</description>")
    if rng.random() < 0.35:
        parts.append(f"<content:encoded>{_text(rng, _html(rng))}</content:encoded>")
    if rng.random() < 0.25:
        url = rng.choice(("https://cdn.news.example/a.mp3", "media/b.mp3", ""))
        length = rng.choice(('length="12345"', 'length="0"', 'length="big"', ""))
        kind = rng.choice(('type="audio/mpeg"', 'type="AUDIO/MPEG"', ""))
        parts.append(f'<enclosure url="{url}" {length} {kind}/>')
    if rng.random() < 0.2:
        parts.append(f"<comments>/comments/{n}</comments>")
    if rng.random() < 0.1 and "media" in declared:
        parts.append('<media:thumbnail url="thumb.jpg" width="75" height="50"/>')
    if rng.random() < 0.1 and "media" in declared:
        parts.append('<media:content url="https://cdn.news.example/v.mp4" type="video/mp4" medium="video"/>')
    if rng.random() < 0.05:
        parts.append('<source url="https://other.example/rss">Other</source>')
    body = parts[1:]
    rng.shuffle(body)  # element order varies; feedparser's order rules must hold either way
    return parts[0] + "".join(body) + "</item>"


def atom_document(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    root_lang = rng.choice(LANGUAGES) if rng.random() < 0.3 else None
    lang_attr = f" xml:lang={quoteattr(root_lang)}" if root_lang is not None else ""
    lines.append(f'<feed xmlns="http://www.w3.org/2005/Atom"{lang_attr}>')
    feed: list[Callable[[], str]] = [
        lambda: f'<title type="{rng.choice(("text", "html"))}">{_text(rng, "Atom &amp; Co <i>feed</i>")}</title>',
        lambda: f"<subtitle>{_text(rng, _words(rng, 2, 6))}</subtitle>",
        lambda: f"<id>{rng.choice(('urn:uuid:feed', 'https://atom.example/', 'tag:atom.example,2024:feed'))}</id>",
        lambda: "<updated>2024-03-01T12:00:00Z</updated>",
        lambda: f'<link rel="alternate" href="{rng.choice(("/", "https://atom.example/"))}"/>',
        lambda: '<link rel="self" href="/atom.xml"/>',
        lambda: '<link rel="hub" href="https://hub.example/"/>',
        lambda: f"<author>{_person(rng)}</author>",
        lambda: "<generator uri=\"https://gen.example/\" version=\"1\">Gen</generator>",
        lambda: "<rights>(c) 2024</rights>",
        lambda: "<icon>/favicon.ico</icon>",
        lambda: '<category term="feedcat"/>',
    ]
    for make in feed:
        if rng.random() < 0.6:
            lines.append(make())
    for n in range(rng.randint(0, 8)):
        lines.append(_atom_entry(rng, n))
    lines.append("</feed>")
    return "\n".join(lines).encode("utf-8")


def _person(rng: random.Random) -> str:
    parts = []
    if rng.random() < 0.9:
        parts.append(f"<name>{escape(rng.choice(('Grace Hopper', ' Ada  Lovelace ', 'Ömer Şahin', 'Ã¼ber', '')))}</name>")
    if rng.random() < 0.3:
        parts.append("<email>grace@atom.example</email>")
    if rng.random() < 0.2:
        parts.append("<uri>/people/grace</uri>")
    rng.shuffle(parts)
    return "".join(parts)


def _atom_entry(rng: random.Random, n: int) -> str:
    lang = rng.choice(LANGUAGES) if rng.random() < 0.2 else None
    parts = [f"<entry{f' xml:lang={quoteattr(lang)}' if lang is not None else ''}>"]
    body: list[str] = []
    if rng.random() < 0.9:
        kind = rng.choice(("", ' type="text"', ' type="html"', ' type="HTML"'))
        body.append(f"<title{kind}>{_title(rng)}</title>")
    if rng.random() < 0.9:
        body.append(f"<id>{rng.choice((f'urn:uuid:{n}', f'https://atom.example/{n}', f'tag:atom.example,2024:{n}', f'{n}'))}</id>")
    for _ in range(rng.choice((0, 1, 1, 2))):
        rel = rng.choice(("", ' rel="alternate"', ' rel="related"', ' rel="enclosure"', ' rel="self"', ' rel="ALTERNATE"'))
        kind = rng.choice(("", ' type="text/html"', ' type="application/xhtml+xml"', ' type="audio/mpeg"'))
        length = ' length="999"' if rng.random() < 0.3 else ""
        body.append(f'<link{rel}{kind}{length} href="{_link(rng, n)}"/>')
    if rng.random() < 0.7:
        body.append(f"<updated>{rng.choice(ISO_DATES)}</updated>")
    if rng.random() < 0.5:
        body.append(f"<published>{rng.choice(ISO_DATES)}</published>")
    if rng.random() < 0.5:
        body.append(f"<author>{_person(rng)}</author>")
    if rng.random() < 0.1:
        body.append("<contributor><name>Helper</name></contributor>")
    if rng.random() < 0.6:
        kind = rng.choice(("", ' type="text"', ' type="html"'))
        value = _html(rng) if "html" in kind else _words(rng, 4, 20)
        body.append(f"<summary{kind}>{_text(rng, value)}</summary>")
    if rng.random() < 0.5:
        kind = rng.choice(("", ' type="text"', ' type="html"', ' type="html"'))
        clang = f' xml:lang="{rng.choice(("fr", "tr-TR", ""))}"' if rng.random() < 0.2 else ""
        value = _html(rng) if "html" in kind else _words(rng, 10, 40)
        body.append(f"<content{kind}{clang}>{_text(rng, value)}</content>")
    for _ in range(rng.choice((0, 1, 2))):
        term = rng.choice(("programming", "Programming", "Tarih", ""))
        label = f' label="{rng.choice(("Programming", "History"))}"' if rng.random() < 0.3 else ""
        scheme = ' scheme="https://atom.example/cats"' if rng.random() < 0.2 else ""
        body.append(f'<category term="{term}"{label}{scheme}/>')
    rng.shuffle(body)
    return "".join(parts + body) + "</entry>"


def corpus(count: int) -> list[tuple[str, bytes]]:
    """``count`` documents, about 60% RSS 2.0 and 40% Atom 1.0."""
    return [(f"rss-{i}", rss_document(i)) if i % 5 < 3 else (f"atom-{i}", atom_document(i)) for i in range(count)]


def mutations(document: bytes, seed: int) -> list[bytes]:
    """Malformed or out-of-subset variants of a document (each must be declined or read identically)."""
    rng = random.Random(seed)
    cut = rng.randint(1, max(1, len(document) - 1))
    return [
        document[:cut],  # truncated
        document.replace(b"<item>", b"<item>&nbsp;", 1).replace(b"<entry>", b"<entry>&nbsp;", 1),  # undeclared entity
        document.replace(b"</title>", b" & </title>", 1),  # bare ampersand
        document.replace(b"<channel>", b'<channel xml:base="https://elsewhere.example/x/">', 1),
        document.replace(b"<channel>", b'<channel xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
                         b"<itunes:author>Pod</itunes:author>", 1),
        document.replace(b'encoding="UTF-8"', b'encoding="windows-1254"', 1).replace(b'encoding="utf-8"', b'encoding="iso-8859-9"', 1),
        document.replace("ş".encode(), b"\xfe"),  # invalid UTF-8 byte
        b"\xef\xbb\xbf" + document,  # byte-order mark
        document.replace(b'version="2.0"', b'version="0.91"', 1),
        document.replace(b"<title>", b"<title><b>inline</b>", 1),
    ]
