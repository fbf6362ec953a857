"""Story clusters: articles from different sources about the same event share a story id.

Two articles are one story when they come from different sources, were published within the
window (72 h by default), and either their text is a near duplicate (MinHash estimate of the
Jaccard similarity of word shingles) or their embeddings are close (cosine). Assignment is
incremental and stable: an article that already has a story id keeps it, and a new article
joins the story of its best match or starts its own (its story id is its own article id).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

NUM_PERM = 64
SHINGLE_WORDS = 3
# Wire copies share their text: beyond the lead, more text adds cost, not evidence.
MINHASH_CHARS = 2000
_MERSENNE = np.uint64(4294967311)  # a prime just above 2**32
_MASK = np.uint64(0xFFFFFFFF)
_rng = np.random.RandomState(20240601)  # fixed: signatures must compare across runs and machines
_A = _rng.randint(1, 2**31 - 1, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
_B = _rng.randint(0, 2**31 - 1, size=NUM_PERM, dtype=np.int64).astype(np.uint64)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class StoryParams:
    window: timedelta = timedelta(hours=72)
    cosine: float = 0.6
    jaccard: float = 0.5


@dataclass(slots=True)
class StoryItem:
    article_id: str
    source_id: int
    published_at: datetime
    embedding: np.ndarray | None
    signature: np.ndarray | None
    story_id: str | None = None
    extra: dict[str, float] = field(default_factory=dict)


def shingles(text: str) -> set[str]:
    words = [w.lower() for w in _WORD.findall(text[:MINHASH_CHARS])]
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def minhash(text: str) -> np.ndarray | None:
    """64 uint32 minimums of universal hashes of the text's 3-word shingles; None for no words."""
    grams = shingles(text)
    if not grams:
        return None
    hashes = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64, count=len(grams))
    permuted = (hashes[:, None] * _A[None, :] + _B[None, :]) % _MERSENNE & _MASK
    return permuted.min(axis=0).astype(np.uint32)


def signature_to_bytes(signature: np.ndarray | None) -> bytes | None:
    return None if signature is None else signature.astype("<u4").tobytes()


def signature_from_bytes(raw: bytes | None) -> np.ndarray | None:
    return None if not raw else np.frombuffer(raw, dtype="<u4")


def jaccard(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None or len(a) != len(b):
        return 0.0
    return float(np.mean(a == b))


def cosine(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None or a.shape != b.shape:
        return 0.0
    return float(np.dot(a, b))  # embeddings are normalized


def match_score(a: StoryItem, b: StoryItem, params: StoryParams) -> float:
    """How strongly b belongs to a's story (0 = not the same story)."""
    if a.source_id == b.source_id or abs(a.published_at - b.published_at) > params.window:
        return 0.0
    similarity = cosine(a.embedding, b.embedding)
    overlap = jaccard(a.signature, b.signature)
    if similarity >= params.cosine or overlap >= params.jaccard:
        return max(similarity, overlap)
    return 0.0


def same_story(a: StoryItem, b: StoryItem, params: StoryParams) -> bool:
    return match_score(a, b, params) > 0.0


def assign_stories(batch: Sequence[StoryItem], neighbours: Mapping[str, Iterable[StoryItem]],
                   params: StoryParams) -> dict[str, str]:
    """Story id per article of `batch`.

    `neighbours` holds, per batch article, already-stored articles that may share its story
    (their story ids are final). Batch articles are taken oldest first, so each can also join
    an earlier one of the same batch. Articles that already have a story id keep it.
    """
    assigned: list[StoryItem] = []
    result: dict[str, str] = {}
    for item in sorted(batch, key=lambda i: (i.published_at, i.article_id)):
        if item.story_id is None:
            best_score, best_story = 0.0, None
            candidates = [*neighbours.get(item.article_id, ()), *assigned]
            for candidate in candidates:
                if candidate.article_id == item.article_id or candidate.story_id is None:
                    continue
                score = match_score(item, candidate, params)
                if score > best_score:
                    best_score, best_story = score, candidate.story_id
            item.story_id = best_story or item.article_id
        result[item.article_id] = item.story_id
        assigned.append(item)
    return result
