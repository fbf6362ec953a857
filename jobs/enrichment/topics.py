"""Topics: keyword rules from a catalog, plus cosine to each topic's embedding centroid.

An article gets a topic when its keywords match (a hit in the title counts double; two points
are needed) or when its embedding is within the cosine threshold of the topic's centroid (the
normalized mean of the embeddings of the topic's descriptive sentences). Keyword rules only run
for the catalog's own languages: English keywords on German text would read "war" (= "was")
as a war.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cluster.topic_catalog import DEFAULT_CATALOG, catalog_items

DEFAULT_THRESHOLD = 0.78
TITLE_WEIGHT = 2
BODY_WEIGHT = 1
MIN_KEYWORD_WEIGHT = 2
MAX_TOPICS = 5
# Keywords deep in a long article are more often asides than its subject.
BODY_CHARS = 1500
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Topic:
    key: str
    names: dict[str, str]
    keywords: dict[str, tuple[str, ...]]
    descriptions: dict[str, tuple[str, ...]]


class KeywordMatcher:
    """All keywords of one language, matched on word tokens in a single left-to-right pass.

    Longest match wins and consumes its words ("prime minister" is one keyword, not also
    "minister"); a trailing * matches any ending of the last word. One dictionary pass is ~4x
    faster than a regex per topic, and counts distinct keywords rather than spellings.
    """

    def __init__(self, keywords_by_topic: Sequence[Sequence[str]]) -> None:
        self.exact: dict[tuple[str, ...], tuple[str, set[int]]] = {}
        self.wild: dict[tuple[str, ...], tuple[str, set[int]]] = {}
        self.heads: set[str] = set()
        lengths: dict[int, set[int]] = {}
        self.longest = 1
        for topic, keywords in enumerate(keywords_by_topic):
            for keyword in keywords:
                tokens = tuple(_WORD.findall(keyword.lower()))
                if not tokens:
                    continue
                table = self.wild if keyword.rstrip().endswith("*") else self.exact
                table.setdefault(tokens, (keyword, set()))[1].add(topic)
                self.longest = max(self.longest, len(tokens))
                if len(tokens) > 1:
                    self.heads.add(tokens[0])
                if table is self.wild:
                    lengths.setdefault(len(tokens), set()).add(len(tokens[-1]))
        self.wild_lengths = {n: sorted(ks, reverse=True) for n, ks in lengths.items()}

    def _at(self, tokens: Sequence[str], i: int) -> tuple[int, str, set[int]] | None:
        token = tokens[i]
        if token in self.heads:  # only then can a phrase start here
            for n in range(min(self.longest, len(tokens) - i), 1, -1):
                hit = self._lookup(tuple(tokens[i:i + n]), n)
                if hit:
                    return n, hit[0], hit[1]
        hit = self._lookup((token,), 1)
        return (1, hit[0], hit[1]) if hit else None

    def _lookup(self, gram: tuple[str, ...], n: int) -> tuple[str, set[int]] | None:
        hit = self.exact.get(gram)
        if hit:
            return hit
        last = gram[-1]
        for k in self.wild_lengths.get(n, ()):
            if k <= len(last):
                hit = self.wild.get((*gram[:-1], last[:k]))
                if hit:
                    return hit
        return None

    def match(self, text: str) -> dict[int, set[str]]:
        """Topic index → the distinct keywords of that topic found in `text` (already folded)."""
        tokens = _WORD.findall(text)
        found: dict[int, set[str]] = {}
        i = 0
        while i < len(tokens):
            hit = self._at(tokens, i)
            if hit is None:
                i += 1
                continue
            n, keyword, topic_ids = hit
            for topic in topic_ids:
                found.setdefault(topic, set()).add(keyword)
            i += n
        return found


def fold(text: str, language: str) -> str:
    """Lower case that knows Turkish dotted and dotless i."""
    if language == "tr":
        text = text.replace("I", "ı").replace("İ", "i")
    else:
        text = text.replace("İ", "i")
    return text.lower()


class TopicCatalog:
    def __init__(self, topics: Sequence[Topic]) -> None:
        if not topics:
            raise ValueError("enrich: the topic catalog is empty")
        self.topics = list(topics)
        self.keys = [t.key for t in self.topics]
        self.languages = sorted({lang for t in self.topics for lang in t.keywords})
        self._matchers = {lang: KeywordMatcher([t.keywords.get(lang, ()) for t in self.topics])
                          for lang in self.languages}

    @classmethod
    def load(cls, path: Path | None = None) -> "TopicCatalog":
        try:
            items = catalog_items(path)
        except ValueError as exc:
            raise ValueError(f"enrich: {exc}") from None
        try:
            topics = [
                Topic(
                    key=item["key"],
                    names=dict(item.get("name", {})),
                    keywords={lang: tuple(words) for lang, words in item.get("keywords", {}).items()},
                    descriptions={lang: tuple(text) for lang, text in item.get("description", {}).items()},
                )
                for item in items
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"enrich: cannot read topic catalog {path or DEFAULT_CATALOG}: {exc}") from None
        if len({t.key for t in topics}) != len(topics):
            raise ValueError("enrich: topic keys must be unique")
        return cls(topics)

    def centroid_texts(self) -> list[list[str]]:
        """Per topic: its names and descriptive sentences in every language."""
        return [[*t.names.values(), *(s for texts in t.descriptions.values() for s in texts)] for t in self.topics]

    def centroids(self, embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        texts = self.centroid_texts()
        flat = [s for group in texts for s in group]
        vectors = embed(flat)
        rows, start = [], 0
        for group in texts:
            mean = vectors[start:start + len(group)].mean(axis=0)
            rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            start += len(group)
        return np.asarray(rows, dtype=np.float32)

    def keyword_weights(self, title: str, body: str, language: str) -> np.ndarray:
        """Per topic: distinct keywords matched, title hits counting double."""
        weights = np.zeros(len(self.topics), dtype=np.float32)
        languages = [language] if language in self._matchers else (self.languages if language == "unknown" else [])
        for lang in languages:
            matcher = self._matchers[lang]
            in_title = matcher.match(fold(title, lang))
            in_body = matcher.match(fold(body[:BODY_CHARS], lang))
            for i in set(in_title) | set(in_body):
                title_hits = in_title.get(i, set())
                body_hits = in_body.get(i, set()) - title_hits
                weights[i] = max(weights[i], TITLE_WEIGHT * len(title_hits) + BODY_WEIGHT * len(body_hits))
        return weights


def assign(keyword_weights: np.ndarray, similarities: np.ndarray | None, keys: Sequence[str],
           threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """{topic: score} for the topics whose rule or centroid matches, best first, at most MAX_TOPICS.

    A keyword match scores 0.55 + 0.1 per point (capped at 0.95); a centroid match scores its
    cosine; a topic matched both ways keeps the higher.
    """
    scores: dict[str, float] = {}
    for i, key in enumerate(keys):
        weight = float(keyword_weights[i])
        score = 0.0
        if weight >= MIN_KEYWORD_WEIGHT:
            score = min(0.95, 0.55 + 0.1 * weight)
        if similarities is not None and float(similarities[i]) >= threshold:
            score = max(score, float(similarities[i]))
        if score > 0:
            scores[key] = round(score, 4)
    best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:MAX_TOPICS]
    return dict(best)
