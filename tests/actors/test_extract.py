"""actors.extract on real-looking pages (tests/actors/data/pages/): main text, metadata,
teaser detection and paywall detection."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from actors.extract import (
    ExtractError,
    detect_paywall,
    extract_article,
    improves_on,
    needs_full_content,
    parse_datetime,
    plain_text,
)
from actors.parse import parse_feed

PAGES = Path(__file__).parent / "data" / "pages"
URL = "https://www.coastal-courier.example/news/2024/05/14/harbour-wind-farm-doubles-output"


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def article_html(head: str = "", body_extra: str = "", paragraphs: int = 6) -> str:
    """A plain free article around which single paywall signals are placed."""
    text = "".join(
        f"<p>Paragraph {i} of the council budget story explains where the money goes, which services "
        f"are cut, which grow, and what residents told the reporters at the public meetings this spring.</p>"
        for i in range(paragraphs)
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><title>Council budget</title>{head}</head>"
        f"<body><nav><a href='/'>Home</a></nav><article><h1>Council budget</h1>{text}{body_extra}</article>"
        f"<footer>Footer</footer></body></html>"
    )


# ---------------------------------------------------------------- extraction


def test_clean_article() -> None:
    result = extract_article(page("clean_article.html"), URL)
    assert result.title == "Harbour wind farm doubles its output"
    assert result.author == "Aisha Rahman"
    assert result.published_at == datetime(2024, 5, 14, 6, 30, tzinfo=UTC)  # +02:00 in the page
    assert result.published_at.tzinfo is UTC
    # <link rel=canonical> with tracking parameters and a fragment, canonicalized.
    assert result.canonical_url == URL
    assert result.language == "en"
    assert result.description == "The offshore wind farm off Port Mirren now supplies enough power for 180,000 homes."
    assert result.text.startswith("The offshore wind farm off Port Mirren has doubled its output")
    assert "weather permitting." in result.text
    assert 280 < result.word_count < 340
    # Boilerplate and comments stay out.
    for noise in ("COMMENT-MARKER", "Most read", "All rights reserved", "Privacy", "Ferry timetable", "Subscribe"):
        assert noise not in result.text
        assert result.html is not None and noise not in result.html
    assert "Harbour wind farm doubles its output" not in result.text  # the <h1> is not repeated
    assert result.html is not None
    assert result.html.startswith("<p>The offshore wind farm")
    assert "<h2>Jobs and the grid</h2>" in result.html
    assert "<script" not in result.html and "dataLayer" not in result.html
    assert "\n" in result.text and "<" not in result.text


def test_clean_article_is_not_paywalled() -> None:
    html = page("clean_article.html")
    result = extract_article(html, URL)
    assert detect_paywall(html, result.text, "The offshore wind farm off Port Mirren has doubled") == (
        detect_paywall(html, result.text)
    )
    assert not detect_paywall(html, result.text).paywalled


def test_str_input_and_declared_encoding() -> None:
    html = (
        "<html lang='fr'><head><title>Le café du port rouvre</title></head><body><article>"
        + "<h1>Le café du port rouvre</h1>"
        + "<p>Le café du port a rouvert ses portes après des années de travaux, à la grande joie des "
        "habitués du quai, qui s'y retrouvent désormais chaque matin avant le départ des bateaux.</p>" * 4
        + "</article></body></html>"
    )
    from_bytes = extract_article(html.encode("cp1252"), "https://port.example/cafe", encoding="cp1252")
    from_str = extract_article(html, "https://port.example/cafe")
    assert from_bytes.text == from_str.text
    assert "Le café du port a rouvert" in from_bytes.text
    assert from_bytes.language == "fr"
    assert from_bytes.canonical_url is None  # no <link rel=canonical>: the caller uses the page URL


def test_relative_canonical_and_jsonld_graph_metadata() -> None:
    result = extract_article(page("paywall_jsonld.html"), "https://ledger.example/markets/2024/06/03/x?utm_source=tw")
    assert result.canonical_url == "https://ledger.example/markets/2024/06/03/bond-market-worst-week"
    assert result.author == "Tomasz Wilk"
    assert result.published_at == datetime(2024, 6, 3, 6, 0, tzinfo=UTC)


def test_date_only_and_links_sanitized() -> None:
    html = article_html(
        head='<script type="application/ld+json">{"@type": "BlogPosting", "datePublished": "2024-04-02"}</script>',
        body_extra='<p>Read the <a href="/docs/budget.pdf">full budget</a> or '
        '<a href="javascript:alert(1)">this</a>.</p>',
    )
    result = extract_article(html, "https://city.example/news/budget")
    assert result.published_at == datetime(2024, 4, 2, tzinfo=UTC)
    assert result.html is not None
    assert 'href="https://city.example/docs/budget.pdf"' in result.html  # resolved against the page URL
    assert "javascript:" not in result.html
    assert "full budget" in result.text and "](" not in result.text  # plain text, no Markdown links


def test_future_and_bad_dates_are_dropped() -> None:
    head = '<meta property="article:published_time" content="2999-01-01T00:00:00Z">'
    assert extract_article(article_html(head=head), "https://city.example/a").published_at is None
    assert parse_datetime("yesterday-ish") is None
    assert parse_datetime("14 May 2024 08:30", lenient=True) == datetime(2024, 5, 14, 8, 30, tzinfo=UTC)
    assert parse_datetime("2024-05-14T08:30:00-05:00") == datetime(2024, 5, 14, 13, 30, tzinfo=UTC)


def test_page_without_an_article() -> None:
    result = extract_article("<html><head><title>Index</title></head><body><div></div></body></html>",
                             "https://city.example/")
    assert result.text == "" and result.html is None
    assert result.title == "Index"


@pytest.mark.parametrize("document", [b"", "   ", b"\x00\x01\x02"])
def test_not_html_is_an_error(document: str | bytes) -> None:
    with pytest.raises(ExtractError, match="^extract: "):
        extract_article(document, "https://city.example/a")


# ---------------------------------------------------------------- teasers


def test_needs_full_content_on_feed_entries() -> None:
    feed = parse_feed(page("teaser_feed.xml"), "https://www.coastal-courier.example/feed.xml")
    verdicts = {e.title: needs_full_content(e.summary, e.content) for e in feed.entries}
    assert verdicts == {
        "Harbour wind farm doubles its output": True,  # a one-line summary, no content
        "Ferry timetable changes for the summer": True,  # over 400 chars, but cut off with "[…]"
        "Rovers promoted after dramatic final day": True,  # content that is just the summary
        "Library reopens after two-year refit": False,  # the whole story is in the feed
    }


def test_needs_full_content_edges() -> None:
    long_text = "<p>" + "A full paragraph of the story with many words in it. " * 20 + "</p>"
    assert needs_full_content(None, None)
    assert needs_full_content("", "   ")
    assert not needs_full_content(long_text, None)  # a long summary is the story
    assert not needs_full_content(None, long_text)
    assert needs_full_content("<p>" + "word " * 90 + "Continue reading →</p>", None)
    assert not needs_full_content("<p>" + "word " * 400 + "…</p>", None)  # long enough to be the story


def test_improves_on() -> None:
    result = extract_article(page("clean_article.html"), URL)
    assert improves_on(result, "<p>The offshore wind farm off Port Mirren has doubled its output.</p>")
    assert not improves_on(result, result.html)  # not clearly longer than what the feed has
    empty = extract_article("<html><head><title>Empty</title></head><body><div></div></body></html>", URL)
    assert not improves_on(empty, None)
    assert plain_text("<p>a &amp; b</p><script>x()</script>") == "a & b"


# ---------------------------------------------------------------- paywalls


def test_jsonld_paywall_fixture() -> None:
    html = page("paywall_jsonld.html")
    verdict = detect_paywall(html, extract_article(html, "https://ledger.example/m").text)
    assert verdict.paywalled and "isAccessibleForFree" in (verdict.reason or "")


@pytest.mark.parametrize(
    "json_ld",
    [
        '{"@type": "NewsArticle", "isAccessibleForFree": false}',
        '{"@type": "NewsArticle", "isAccessibleForFree": "false"}',
        '{"@type": "NewsArticle", "isAccessibleForFree": "https://schema.org/False"}',
        '[{"@type": "WebSite"}, {"@type": "Article", "isAccessibleForFree": "False"}]',
        '{"@graph": [{"@type": "WebPage", "mainEntity": {"@type": "NewsArticle", "isAccessibleForFree": false}}]}',
        '{"@type": "NewsArticle", "hasPart": [{"@type": "WebPageElement", "isAccessibleForFree": "False",'
        ' "cssSelector": ".paywalled-section"}]}',
    ],
)
def test_is_accessible_for_free_variants(json_ld: str) -> None:
    html = article_html(head=f'<script type="application/ld+json">{json_ld}</script>')
    verdict = detect_paywall(html, extract_article(html, "https://city.example/a").text)
    assert verdict.paywalled, json_ld


def test_free_jsonld_and_broken_jsonld_are_not_paywalls() -> None:
    for json_ld in ('{"@type": "NewsArticle", "isAccessibleForFree": true}', '{"@type": "NewsArticle", "isAcc'):
        html = article_html(head=f'<script type="application/ld+json">{json_ld}</script>')
        assert not detect_paywall(html, extract_article(html, "https://city.example/a").text).paywalled


def test_microdata_flag() -> None:
    html = article_html(body_extra='<meta itemprop="isAccessibleForFree" content="False">')
    assert detect_paywall(html, "irrelevant").paywalled


def test_paywall_div_fixture() -> None:
    html = page("paywall_div.html")
    verdict = detect_paywall(html, extract_article(html, "https://rheinblatt.example/a").text)
    assert verdict.paywalled and "paywall" in (verdict.reason or "")


@pytest.mark.parametrize(
    "marker",
    [
        '<div class="piano-offer">Subscribe</div>',
        '<div id="tp-modal"><button>Log in</button></div>',
        '<section class="story subscriber-only"><p>Rest of the story</p></section>',
        '<div class="regwall"><form><input name="email"></form></div>',
    ],
)
def test_known_markers(marker: str) -> None:
    html = article_html(body_extra=marker)
    assert detect_paywall(html, extract_article(html, "https://city.example/a").text).paywalled


@pytest.mark.parametrize(
    "not_marker",
    [
        '<div class="paywall"></div>',  # an empty placeholder some CMSs put on every page
        '<div class="no-paywall">Thanks for reading</div>',
        "<script>var paywall = document.querySelector('.paywall')</script>",
        '<template><div class="paywall">Subscribe</div></template>',
        "<p>The paywall debate divides the newsroom.</p>",
    ],
)
def test_non_markers(not_marker: str) -> None:
    html = article_html(body_extra=not_marker)
    assert not detect_paywall(html, extract_article(html, "https://city.example/a").text).paywalled


@pytest.mark.parametrize(("tier", "paywalled"), [("locked", True), ("metered", True), ("free", False)])
def test_content_tier(tier: str, paywalled: bool) -> None:
    html = article_html(head=f'<meta property="article:content_tier" content="{tier}">')
    verdict = detect_paywall(html, extract_article(html, "https://city.example/a").text)
    assert verdict.paywalled is paywalled
    if paywalled:
        assert verdict.reason == f"article:content_tier is {tier}"


def test_truncated_against_declared_word_count() -> None:
    html = page("truncated_wordcount.html")
    result = extract_article(html, "https://valley.example/a")
    verdict = detect_paywall(html, result.text)
    assert verdict.paywalled
    assert verdict.reason == f"extracted {result.word_count} of the 1450 words the page declares"
    honest = html.replace(b'"wordCount": "1450"', b'"wordCount": "80"')
    assert not detect_paywall(honest, result.text).paywalled


def test_subscription_prompt_with_short_text() -> None:
    prompt = "<p>Subscribe to continue reading. Already a subscriber? Log in.</p>"
    short = article_html(body_extra=prompt, paragraphs=1)
    result = extract_article(short, "https://city.example/a")
    verdict = detect_paywall(short, result.text)
    assert verdict.paywalled and "subscription prompt" in (verdict.reason or "")
    # The same prompt under a full story (a newsletter box) is not a paywall…
    long = article_html(body_extra=prompt, paragraphs=8)
    assert not detect_paywall(long, extract_article(long, "https://city.example/a").text).paywalled
    # …unless the feed had more text than the page shows.
    feed_text = "<p>" + "word " * 400 + "</p>"
    assert detect_paywall(long, extract_article(long, "https://city.example/a").text, feed_text).paywalled


def test_garbage_is_not_paywalled() -> None:
    assert not detect_paywall(b"", "").paywalled
