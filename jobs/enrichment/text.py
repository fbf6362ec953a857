"""Text preparation: sanitized HTML to plain text, and the model input (title + lead + body)."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

# Elements that end a line of text; everything else is inline and joins with its neighbours.
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
     "table", "tr", "td", "th", "section", "article", "header", "footer", "figure", "figcaption", "hr"}
)
_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\s*\n\s*")
# A rough chars-per-token figure for news prose (WordPiece/BPE): cutting the string early saves
# tokenizer work; the tokenizer still truncates exactly at the model window.
CHARS_PER_TOKEN = 6


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def normalize(text: str) -> str:
    """NFC, one space between words, one newline between blocks."""
    text = unicodedata.normalize("NFC", text)
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n", text).strip()


def html_to_text(markup: str | None) -> str:
    """Plain text of (sanitized) HTML, with block elements on their own lines."""
    if not markup:
        return ""
    if "<" not in markup:  # feeds often carry plain text; skip the parser
        return normalize(html.unescape(markup))
    collector = _TextCollector()
    collector.feed(markup)
    collector.close()
    return normalize("".join(collector.parts))


def body_text(summary: str | None, content: str | None) -> str:
    """Lead + main text without saying the lead twice (feeds often repeat it as the first paragraph)."""
    lead = html_to_text(summary)
    main = html_to_text(content)
    if not main:
        return lead
    if not lead or _squash(lead)[:200] in _squash(main):
        return main
    return f"{lead}\n{main}"


def model_input(title: str, body: str, max_tokens: int) -> str:
    """Title + body, cut near the model window at a word boundary."""
    title = normalize(title or "")
    text = f"{title}\n{body}" if body else title
    return truncate(text, max_tokens * CHARS_PER_TOKEN)


def truncate(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return cut[:space] if space > max_chars // 2 else cut


def _squash(text: str) -> str:
    return re.sub(r"\W+", "", text).lower()
