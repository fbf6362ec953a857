"""What the `/` page shows of an article, computed in Python so templates stay logic-free."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import urlsplit

from cluster.store.articles import Article

_SAFE_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class ArticleRow:
    title: str
    link: str | None
    source: str
    published_iso: str
    published_text: str
    published_ago: str
    language: str | None


def safe_link(url: str | None) -> str | None:
    """The URL if a browser may follow it; escaping alone would still let `javascript:` run."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in _SAFE_SCHEMES or not parts.netloc:
        return None
    return url.strip()


def relative_time(when: datetime, now: datetime) -> str:
    seconds = int((now - when).total_seconds())
    if seconds < 0:
        return "scheduled"  # feeds do publish dates in the future
    if seconds < 60:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


def article_row(article: Article, now: datetime) -> ArticleRow:
    published = article.published_at
    return ArticleRow(
        title=article.title or "(untitled)",
        link=safe_link(article.url or article.canonical_url),
        source=article.source_title or f"source {article.source_id}",
        published_iso=published.isoformat(),
        published_text=published.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        published_ago=relative_time(published, now),
        language=article.language,
    )
