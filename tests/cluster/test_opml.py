"""cluster.opml: reading users' OPML safely, writing it back, and the shipped default sources."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from cluster.opml import OpmlError, default_sources, parse_opml, to_opml
from cluster.store.sources import NewSource

NESTED = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Mine</title></head>
  <body>
    <outline type="rss" text="Top level" xmlUrl="https://top.example/feed"/>
    <outline text="News" title="News">
      <outline type="rss" text="World text" title="World title" xmlUrl="https://world.example/rss"
               htmlUrl="https://world.example/" language="en"/>
      <outline text="Tech">
        <outline type="rss" text="Gadgets" xmlUrl="HTTPS://Gadgets.Example:443/feed?utm_source=opml#top"/>
        <outline text="Deeper">
          <outline type="site" text="A site" xmlUrl="https://site.example/news" language="tr"/>
        </outline>
      </outline>
      <outline type="rss" text="Back in News" xmlUrl="https://back.example/atom"/>
    </outline>
    <outline text="Empty folder"/>
  </body>
</opml>
"""


def by_url(sources: list[NewSource]) -> dict[str, NewSource]:
    return {s.url: s for s in sources}


# --------------------------------------------------------------------------- parse_opml


def test_nested_categories() -> None:
    result = parse_opml(NESTED)
    assert result.rejected == []
    assert [s.url for s in result.sources] == [
        "https://top.example/feed", "https://world.example/rss", "https://gadgets.example/feed",
        "https://site.example/news", "https://back.example/atom",
    ]
    sources = by_url(result.sources)
    assert sources["https://top.example/feed"] == NewSource(url="https://top.example/feed", title="Top level")
    assert sources["https://world.example/rss"] == NewSource(
        url="https://world.example/rss", kind="feed", title="World title", site_url="https://world.example/",
        language="en", category="News")
    assert sources["https://gadgets.example/feed"].category == "Tech"  # the nearest folder
    assert sources["https://gadgets.example/feed"].title == "Gadgets"  # text when there is no title
    site = sources["https://site.example/news"]
    assert (site.kind, site.category, site.language) == ("site", "Deeper", "tr")
    assert sources["https://back.example/atom"].category == "News"  # leaving a subfolder restores the parent


def test_bytes_in_a_legacy_encoding() -> None:
    text = ('<?xml version="1.0" encoding="ISO-8859-9"?><opml version="1.0"><head/><body>'
            '<outline text="Gündem"><outline text="Haber Şehri" xmlUrl="https://haber.example/rss"/></outline>'
            '</body></opml>').encode("iso-8859-9")
    (source,) = parse_opml(text).sources
    assert (source.title, source.category) == ("Haber Şehri", "Gündem")


def test_rejected_entries_are_reported_and_others_kept() -> None:
    text = """<opml version="2.0"><body>
      <outline text="ok" xmlUrl="https://ok.example/feed"/>
      <outline text="ftp" xmlUrl="ftp://files.example/feed.xml"/>
      <outline text="js" xmlUrl="javascript:alert(1)"/>
      <outline text="dup" xmlUrl="HTTPS://OK.example/feed#again"/>
      <outline text="no host" xmlUrl="https:///feed"/>
      <outline text="ok2" xmlUrl="http://ok2.example/feed"/>
    </body></opml>"""
    result = parse_opml(text)
    assert [s.url for s in result.sources] == ["https://ok.example/feed", "http://ok2.example/feed"]
    rejected = dict(result.rejected)
    assert list(rejected) == ["ftp://files.example/feed.xml", "javascript:alert(1)", "HTTPS://OK.example/feed#again",
                              "https:///feed"]
    assert "scheme" in rejected["ftp://files.example/feed.xml"]
    assert rejected["HTTPS://OK.example/feed#again"] == "duplicate in file"
    assert "host" in rejected["https:///feed"]


@pytest.mark.parametrize(
    "text",
    [
        '<!DOCTYPE opml><opml version="2.0"><body/></opml>',
        '<?xml version="1.0"?>\n<!DOCTYPE opml SYSTEM "http://127.0.0.1:9/opml.dtd"><opml version="2.0"><body/></opml>',
        # Billion laughs.
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
        ']><opml version="2.0"><body><outline text="&lol2;" xmlUrl="https://x.example/"/></body></opml>',
        # XXE.
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        '<opml version="2.0"><body><outline text="&xxe;" xmlUrl="https://x.example/"/></body></opml>',
        # A DOCTYPE hidden after a long comment.
        '<?xml version="1.0"?>\n<!--' + "padding " * 1000 + '-->\n<!DOCTYPE opml [<!ENTITY u "https://evil.example/feed">]>'
        '<opml version="2.0"><body><outline text="a" xmlUrl="&u;"/></body></opml>',
    ],
)
def test_dtds_and_entities_are_refused(text: str) -> None:
    with pytest.raises(OpmlError, match="DTD"):
        parse_opml(text)
    with pytest.raises(OpmlError, match="DTD"):
        parse_opml(text.encode())


def test_dtd_in_utf16_is_refused() -> None:
    text = ('<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE opml [<!ENTITY u "https://evil.example/feed">]>'
            '<opml version="2.0"><body><outline text="a" xmlUrl="&u;"/></body></opml>')
    with pytest.raises(OpmlError, match="DTD"):
        parse_opml(text.encode("utf-16"))


def test_utf16_without_dtd_is_read() -> None:
    text = '<?xml version="1.0" encoding="UTF-16"?><opml version="2.0"><body><outline text="Çay" xmlUrl="https://cay.example/"/></body></opml>'
    assert [(s.url, s.title) for s in parse_opml(text.encode("utf-16")).sources] == [("https://cay.example/", "Çay")]


def test_comment_mentioning_doctype_after_the_root_is_harmless() -> None:
    text = '<opml version="2.0"><body><outline text="a" xmlUrl="https://a.example/"/></body><!-- no <!DOCTYPE here --></opml>'
    assert [s.url for s in parse_opml(text).sources] == ["https://a.example/"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('<opml version="2.0"><body><outline text="a" xmlUrl="https://a.example/"></body></opml>', "well-formed"),
        ("<opml><body>", "well-formed"),
        ("", "well-formed"),
        ("not xml at all", "well-formed"),
        ('<!doctype opml><opml version="2.0"><body/></opml>', "well-formed"),  # DOCTYPE is case-sensitive
        ('<opml version="2.0"><body><outline text="&undefined;" xmlUrl="https://a.example/"/></body></opml>', "well-formed"),
        ('<rss version="2.0"><channel/></rss>', "<opml><body>"),
        ('<opml version="2.0"><head/></opml>', "<opml><body>"),
    ],
)
def test_malformed_or_not_opml(text: str, reason: str) -> None:
    with pytest.raises(OpmlError) as info:
        parse_opml(text)
    assert reason in str(info.value)
    assert str(info.value).startswith("opml: ")


# --------------------------------------------------------------------------- to_opml


def test_round_trip_preserves_sources() -> None:
    sources = [
        NewSource(url="https://world.example/rss", kind="feed", title="World & <Friends>", site_url="https://world.example/",
                  language="en", category="World"),
        NewSource(url="https://haber.example/rss?kategori=g%C3%BCndem&sayfa=1", kind="feed", title='Haber "Şehri" ığüşöç',
                  language="tr", category="Gündem"),
        NewSource(url="https://site.example/news", kind="site", title="A site", category="World"),
        NewSource(url="https://tech.example/atom", title="Tech\tline\nbreak", language="en", category="Technology"),
    ]
    text = to_opml(sources, title="Export & <more>")
    root = ET.fromstring(text)  # well-formed, with an escaped title
    assert root.findtext("head/title") == "Export & <more>"
    result = parse_opml(text)
    assert result.rejected == []
    assert by_url(result.sources) == by_url(sources)  # url, kind, title, site URL, language, category
    # And the result is stable: exporting the import gives the same document.
    assert to_opml(result.sources, title="Export & <more>") == text


def test_round_trip_of_the_defaults() -> None:
    defaults = default_sources()
    again = parse_opml(to_opml(defaults))
    assert again.rejected == []
    assert by_url(again.sources) == by_url(defaults)


# --------------------------------------------------------------------------- default sources


def test_default_sources() -> None:
    sources = default_sources()
    assert len(sources) >= 100
    languages = {s.language for s in sources}
    assert {"en", "tr"} <= languages
    assert sum(s.language == "tr" for s in sources) >= 10
    assert len({s.url for s in sources}) == len(sources)
    assert all(s.url.startswith(("https://", "http://")) for s in sources)
    assert all(s.title and s.category for s in sources)
    categories = {s.category for s in sources}
    assert len(categories) >= 6


def test_shipped_file_has_no_rejected_entries() -> None:
    from importlib import resources

    from cluster.opml import DEFAULT_SOURCES_RESOURCE

    package, name = DEFAULT_SOURCES_RESOURCE
    result = parse_opml(resources.files(package).joinpath(name).read_bytes())
    assert result.rejected == []
    assert len(result.sources) == len(default_sources())
