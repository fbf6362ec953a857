"""Sentiment with VADER, for English only: its lexicon is English, and a score computed on
Turkish or German words would be noise that looks like data."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobs.enrichment.sentences import split_sentences

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

SUPPORTED = frozenset({"en"})
# VADER is tuned on short texts; the title and the first sentences carry a story's tone.
LEAD_SENTENCES = 4

_analyzer: SentimentIntensityAnalyzer | None = None
_lock = threading.Lock()


def _get_analyzer() -> SentimentIntensityAnalyzer:
    global _analyzer
    if _analyzer is None:
        with _lock:
            if _analyzer is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


def sentiment(title: str, body: str, language: str) -> float | None:
    """Mean VADER compound score of the title and lead sentences in [-1, 1]; None if not English."""
    if language not in SUPPORTED:
        return None
    # Only the lead is scored, so only the lead needs splitting.
    return sentiment_of(title, split_sentences(body[:1500], language), language)


def sentiment_of(title: str, sentences: Sequence[str], language: str) -> float | None:
    """As sentiment(), for a body already split into sentences."""
    if language not in SUPPORTED:
        return None
    parts = [title.strip()] if title.strip() else []
    parts.extend(sentences[:LEAD_SENTENCES])
    if not parts:
        return None
    analyzer = _get_analyzer()
    scores = [analyzer.polarity_scores(part)["compound"] for part in parts]
    return round(sum(scores) / len(scores), 4)
