"""The lxml fast path gives exactly feedparser's ParsedFeed, or steps aside.

Every document is parsed twice, with parser="feedparser" (the reference) and parser="fast"
(which raises FastPathDeclined where the default "auto" falls back to feedparser); whenever the
fast path answers, the two results must be equal dataclasses (or the same ParseError). Then it
must actually answer for common well-formed feeds, or it would be pointless.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import nh3
import pytest

from actors import parse as parse_module
from actors.fastparse import parse_raw
from actors.parse import FastPathDeclined, ParsedFeed, ParseError, parse_feed, sanitize_html
from tests.actors import feed_corpus

DATA = Path(__file__).parent / "data"
SAMPLES = Path(__file__).parents[2] / "cluster" / "samplefeeds" / "feeds"
FEED_URL = "https://feeds.example/dir/feed.xml"
NOW = datetime(2024, 6, 1, tzinfo=UTC)
HEADER_VARIANTS: tuple[dict[str, str], ...] = (
    {},
    {"content-type": "application/rss+xml; charset=utf-8", "content-language": "tr-TR"},
    {"content-type": "text/xml", "content-language": "en_GB"},
)

Outcome = ParsedFeed | ParseError | FastPathDeclined


def outcome(body: bytes, parser: str, headers: Mapping[str, str], url: str = FEED_URL) -> Outcome:
    try:
        return parse_feed(body, url, headers=headers, now=NOW, parser=parser)  # type: ignore[arg-type]
    except (ParseError, FastPathDeclined) as exc:
        return exc


def same(reference: Outcome, fast: Outcome) -> bool:
    if isinstance(reference, ParseError) or isinstance(fast, ParseError):
        return type(reference) is type(fast) and str(reference) == str(fast)
    return reference == fast


def check(body: bytes, headers: Mapping[str, str], url: str = FEED_URL) -> bool:
    """Assert equality where the fast path answers; return whether it answered."""
    fast = outcome(body, "fast", headers, url)
    if isinstance(fast, FastPathDeclined):
        return False
    reference = outcome(body, "feedparser", headers, url)
    assert same(reference, fast), describe(reference, fast)
    return True


def describe(reference: Outcome, fast: Outcome) -> str:
    if not isinstance(reference, ParsedFeed) or not isinstance(fast, ParsedFeed):
        return f"feedparser: {reference!r}\nfast: {fast!r}"
    lines = [f"{name}: {getattr(reference, name)!r} != {getattr(fast, name)!r}"
             for name in ("title", "site_url", "language", "ttl_minutes", "update_period_minutes", "hub_url",
                          "warning") if getattr(reference, name) != getattr(fast, name)]
    if len(reference.entries) != len(fast.entries):
        lines.append(f"{len(reference.entries)} entries != {len(fast.entries)}")
    for index, (a, b) in enumerate(zip(reference.entries, fast.entries)):
        lines += [f"entry {index} {name}: {getattr(a, name)!r} != {getattr(b, name)!r}"
                  for name in a.__slots__ if getattr(a, name) != getattr(b, name)]
    return "\n".join(lines)


# ---------------------------------------------------------------- real documents


def fixture_files() -> list[Path]:
    return sorted(p for p in DATA.rglob("*") if p.is_file())


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: str(p.relative_to(DATA)))
def test_every_fixture_reads_the_same(path: Path) -> None:
    for headers in HEADER_VARIANTS:
        check(path.read_bytes(), headers)


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_every_sample_feed_reads_the_same(path: Path) -> None:
    body = path.read_bytes().replace(b"{base}", b"http://127.0.0.1:1")
    for headers in HEADER_VARIANTS:
        check(body, headers, url="http://127.0.0.1:1/feeds/" + path.name)


@pytest.mark.parametrize("name", ["rss20.xml", "no_guids.xml", "relative_links.xml", "empty_channel.xml",
                                  "bad_dates.xml", "future_dates.xml", "turkish_cp1254.xml"])
def test_well_formed_fixtures_take_the_fast_path(name: str) -> None:
    assert check((DATA / name).read_bytes(), {})


@pytest.mark.parametrize("name", ["atom03.xml", "rss091.xml", "rss10.rdf", "truncated.xml", "truncated_items.xml",
                                  "undeclared_entity.xml", "xxe.xml", "billion_laughs.xml", "atom10.xml"])
def test_other_formats_and_broken_documents_go_to_feedparser(name: str) -> None:
    # Atom 0.3, RSS 0.91/1.0, malformed XML, DTDs, and xml:base/XHTML content (atom10.xml).
    assert isinstance(outcome((DATA / name).read_bytes(), "fast", {}), FastPathDeclined)


def test_sample_rss_and_atom_feeds_take_the_fast_path() -> None:
    answered = [p.name for p in sample_files() if p.suffix in (".xml", ".atom")
                and check(p.read_bytes().replace(b"{base}", b"http://127.0.0.1:1"), {})]
    assert len(answered) == len([p for p in sample_files() if p.suffix in (".xml", ".atom")])


def test_a_mislabeled_charset_keeps_feedparser_and_its_warning() -> None:
    # feedparser's encoding fallback leaves a warning on the result; only feedparser produces it.
    body = (DATA / "turkish_mislabeled.xml").read_bytes()
    assert isinstance(outcome(body, "fast", {}), FastPathDeclined)
    auto = parse_feed(body, FEED_URL, now=NOW)
    assert auto.warning and auto == parse_feed(body, FEED_URL, now=NOW, parser="feedparser")


# ---------------------------------------------------------------- generated documents

CORPUS = feed_corpus.corpus(300)


def test_generated_feeds_read_the_same_and_mostly_fast() -> None:
    answered = 0
    for index, (name, body) in enumerate(CORPUS):
        headers = HEADER_VARIANTS[index % len(HEADER_VARIANTS)]
        try:
            answered += check(body, headers, url=feed_corpus.BASE + "feed.xml")
        except AssertionError as exc:
            raise AssertionError(f"{name}:\n{exc}\n{body.decode()}") from None
    assert answered >= 0.9 * len(CORPUS), f"the fast path answered only {answered} of {len(CORPUS)}"


def test_generated_feeds_have_entries_to_compare() -> None:
    # Guards the test above against a corpus that silently became trivial.
    entries = [parse_feed(body, feed_corpus.BASE + "feed.xml", now=NOW).entries for _, body in CORPUS]
    assert sum(map(len, entries)) > 800
    flat = [e for feed in entries for e in feed]
    assert any(e.guid and e.guid.startswith("https://news.example/feeds/item-") for e in flat)  # resolved guid
    assert any(e.enclosures for e in flat) and any(len(e.categories) > 1 for e in flat)
    assert any(e.content and 'href="https://news.example/about?x=1&amp;y=2"' in e.content for e in flat)
    assert any(e.language == "tr" for e in flat) and any("ş" in e.title for e in flat)


def test_malformed_and_unmodelled_variants_never_differ() -> None:
    declined = 0
    for index, (name, body) in enumerate(CORPUS[:80]):
        for variant in feed_corpus.mutations(body, index):
            try:
                declined += not check(variant, {}, url=feed_corpus.BASE + "feed.xml")
            except AssertionError as exc:
                raise AssertionError(f"mutation of {name}:\n{exc}\n{variant!r}") from None
    assert declined > 300  # truncation, entities, bare "&", xml:base, iTunes, RSS 0.91, inline markup


def test_fast_path_needs_a_url_and_refuses_doctype() -> None:
    body = (DATA / "rss20.xml").read_bytes()
    assert parse_raw(body, "", None) is None
    assert parse_raw(body.replace(b"<rss", b"<!DOCTYPE rss>\n<rss", 1), FEED_URL, None) is None
    assert parse_raw(body, FEED_URL, None) is not None


# ---------------------------------------------------------------- HTML fields

FRAGMENT_TOKENS = (
    "text ", "word", " ", "\n", "<p>", "</p>", "<P>", "</P >", "<br>", "<br/>", "<br />", "<BR/>", "</br>", "<hr/>",
    "<p/>", '<a href="/x?a=1&amp;b=2">', '<a href="x.html" title="t">', "<a href='single.html'>", "</a>",
    '<img src="i.png" alt="a"/>', '<img alt="a" src="i.png" />', "<img src='i.png'>", '<a HREF="Up.html" Rel="NoFollow">',
    '<a href="javascript:x()">', '<a href="http:////x.example/y">', '<a href=" sp.html ">', '<q cite="c.html">',
    '<video src="v.mp4" poster="p.png">', '<span class="a" class="b">', '<a href="&#38;x">', '<a href="&copy">',
    '<a href="a&b">', '<a href="a&#x41;b">', '<a title="x > y">', "<a title='say \"hi\"'>", "<input disabled>",
    "<a href=unq>", "<o:p>", "</o:p>", "&amp;", "&lt;", "&copy;", "&copy", "&nbsp;", "&bogus;", "&bogus", "&#39;",
    "&#34;", "&#039;", "&#150;", "&#x201C;", "&#X41;", "&#8217;", "& ", "&", "&#", "&#x", "&a.b;", "<", "< ", "<3",
    ">", "<!-- c -->", "<!DOCTYPE html>", "<![CDATA[x]]>", "<?pi?>", "<script>if (a<b) x()</script>", "<>", "</>",
    "é", "İ", "\u0080", '"', "'", "=", "/", "<a/b/", "<tag-x>", "<a.b>", '<a href="x"title="y">', '<td colspan="2">',
    "</td>", '<div\nclass="x">', "<b\n>", "</b\n>",
)


def _resolver_for(base: str) -> Callable[[str, str, str], str | None]:
    def resolve(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in parse_module._URL_ATTRIBUTES:
            return value
        return parse_module._join_or_none(base, value.strip())

    return resolve


def _nh3_clean(fragment: str, base: str) -> str | None:
    return nh3.clean(
        fragment, tags=set(parse_module._ALLOWED_TAGS), clean_content_tags=set(parse_module._CLEAN_CONTENT_TAGS),
        attributes=parse_module._ALLOWED_ATTRIBUTES, attribute_filter=_resolver_for(base),
        url_schemes={"http", "https", "mailto"}, link_rel=parse_module._LINK_REL, strip_comments=True,
    ).strip() or None


def test_reused_cleaner_sanitizes_like_nh3_clean() -> None:
    # sanitize_html keeps one nh3.Cleaner for every base URL (speed); it must equal nh3.clean()
    # with the same options on the corpus's fragments and on fragments made from FRAGMENT_TOKENS.
    rng = random.Random(7)
    fragments = list(feed_corpus.HTML_FRAGMENTS) + [
        "".join(rng.choice(FRAGMENT_TOKENS) for _ in range(rng.randint(1, 12))) for _ in range(2_000)]
    for base in ("https://news.example/dir/feed.xml", "http://127.0.1.7:8080/feeds/7.xml"):
        for fragment in fragments:
            assert sanitize_html(fragment, base) == _nh3_clean(fragment, base), fragment


def test_threads_sanitizing_at_once_keep_their_own_base_url() -> None:
    # The shared Cleaner's URL filter reads the base URL from a thread-local: threads cleaning
    # at the same time (nh3 may release the GIL while it works) each resolve against their own.
    fragment = '<p>' + '<a href="story.html">x</a><img src="../img/a.png">' * 50 + '</p>'
    bases = [f"http://127.0.{n}.1/feeds/{n}/feed.xml" for n in range(1, 9)]
    expected = {base: _nh3_clean(fragment, base) for base in bases}
    results: dict[str, set[str | None]] = {base: set() for base in bases}

    def work(base: str) -> None:
        for _ in range(200):
            results[base].add(sanitize_html(fragment, base))

    threads = [threading.Thread(target=work, args=(base,)) for base in bases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == {base: {expected[base]} for base in bases}
