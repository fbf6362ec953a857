"""Summaries: extractive by default (the article's own sentences, never invented text), and
abstractive when a seq2seq model is configured for the article's language."""

from __future__ import annotations

import math
import os
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.enrichment.sentences import split_sentences

MIN_SENTENCES = 2
MAX_SENTENCES = 4
MAX_CHARS = 600
# Captions, datelines and headings are short; a summary sentence says something.
MIN_WORDS = 5

_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "a an the and or but if of to in on at by for with from as is are was were be been being it its this "
        "that these those he she they we you i his her their our your not no so than then there here also "
        "has have had do does did will would can could should may might said says about after before over "
        "into up out more most new one two who which what when where how all any some".split()
    ),
    "de": frozenset(
        "der die das den dem des ein eine einer eines einem einen und oder aber wenn von zu im in am an auf "
        "für mit aus als ist sind war waren sein wird werden wurde wurden es sie er wir ihr ich nicht kein "
        "keine so dass auch hat haben hatte bei nach vor über unter um noch nur mehr sich sagte sei".split()
    ),
    "tr": frozenset(
        "ve veya ile bir bu şu o da de için gibi ama fakat ancak çok daha en mi mı mu mü ne olarak olan "
        "oldu olduğu olduğunu ise ki her sonra önce kadar göre dedi diye var yok ilk yeni bin iki üç".split()
    ),
}


@dataclass(frozen=True, slots=True)
class Summary:
    text: str
    kind: str  # "extractive" or "abstractive"


def _words(sentence: str, stopwords: frozenset[str]) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(sentence)) if w not in stopwords and not w.isdigit()]


def target_sentences(count: int) -> int:
    """2 for short articles, up to 4 for long ones."""
    if count <= 6:
        return MIN_SENTENCES
    if count <= 15:
        return 3
    return MAX_SENTENCES


def extractive(title: str, body: str, language: str, max_chars: int = MAX_CHARS) -> str:
    """2–4 of the body's own sentences, ranked by centrality, in their original order.

    Score = summed document frequency of a sentence's content words (normalized by length),
    plus overlap with the title, plus a bonus for the lead: news puts the essentials first.
    """
    return extractive_of(title, split_sentences(body, language), language, max_chars)


def extractive_of(title: str, sentences: Sequence[str], language: str, max_chars: int = MAX_CHARS) -> str:
    """As extractive(), for a body already split into sentences."""
    if not sentences:
        return ""
    stopwords = STOPWORDS.get(language, STOPWORDS["en"])
    candidates = [i for i, s in enumerate(sentences) if len(s.split()) >= MIN_WORDS and len(s) <= max_chars]
    if not candidates:
        candidates = [i for i, s in enumerate(sentences) if len(s) <= max_chars]
    words = [_words(s, stopwords) for s in sentences]
    frequency = Counter(w for ws in words for w in set(ws))
    title_words = set(_words(title, stopwords))
    scores: dict[int, float] = {}
    for i in candidates:
        unique = set(words[i])
        if not unique:
            scores[i] = 0.0
            continue
        centrality = sum(frequency[w] for w in unique) / math.sqrt(len(words[i]))
        overlap = len(unique & title_words) / (len(title_words) or 1)
        scores[i] = centrality + 2.0 * overlap + 1.5 / (1 + i)
    chosen: list[int] = []
    used = 0
    for i in sorted(scores, key=lambda i: (-scores[i], i)):
        if len(chosen) >= target_sentences(len(sentences)):
            break
        extra = len(sentences[i]) + (1 if chosen else 0)
        if used + extra > max_chars:
            continue
        chosen.append(i)
        used += extra
    return " ".join(sentences[i] for i in sorted(chosen))


# --- abstractive -------------------------------------------------------------------------------

def parse_routes(spec: str) -> dict[str, str]:
    """'en=/models/bart,tr=/models/mt5,*=/models/m' → {language: model}; '*' is the fallback."""
    routes: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        language, sep, model = part.partition("=")
        if not sep:
            language, model = "*", part  # a bare model serves every language
        if not model.strip():
            raise ValueError(f"enrich: summarizer route {part!r} names no model")
        routes[language.strip().lower()] = model.strip()
    return routes


@dataclass(frozen=True, slots=True)
class Generated:
    text: str
    model: str
    tokens: int  # generated tokens, special ones excluded
    batch: int  # how many texts shared the generate() call


class AbstractiveSummarizer:
    """Seq2seq summaries: tokenizer + model.generate, batched per model, routed by language.

    Languages with no route get None, and the caller falls back to the extractive summary, so
    a Turkish article is never summarized by an English-only model.
    """

    def __init__(self, routes: Mapping[str, str], device: str = "cpu", max_new_tokens: int = 96,
                 batch_size: int = 8, max_input_tokens: int = 512) -> None:
        self.routes = dict(routes)
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens
        self._models: dict[str, tuple[Any, Any]] = {}
        self._lock = threading.Lock()

    def route(self, language: str) -> str | None:
        return self.routes.get(language) or self.routes.get("*")

    def _load(self, name: str) -> tuple[Any, Any]:
        with self._lock:
            if name not in self._models:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub at run time
                from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
                from transformers.utils import logging as transformers_logging

                transformers_logging.disable_progress_bar()

                local = Path(name).expanduser()
                source = str(local) if local.exists() else name
                try:
                    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
                    model = AutoModelForSeq2SeqLM.from_pretrained(source, local_files_only=True)
                except OSError as exc:
                    raise RuntimeError(f"enrich: cannot load summarizer {name!r} offline: {exc}") from None
                model.eval()
                model.to(self.device)
                self._models[name] = (tokenizer, model)
            return self._models[name]

    def summarize(self, texts: Sequence[str], languages: Sequence[str]) -> list[str | None]:
        return [g.text if g else None for g in self.generate(texts, languages)]

    def generate(self, texts: Sequence[str], languages: Sequence[str]) -> list[Generated | None]:
        """Per text: the generated summary with the model that wrote it, or None (no route)."""
        import torch

        results: list[Generated | None] = [None] * len(texts)
        by_model: dict[str, list[int]] = {}
        for i, language in enumerate(languages):
            model_name = self.route(language)
            if model_name and texts[i].strip():
                by_model.setdefault(model_name, []).append(i)
        for model_name, indexes in by_model.items():
            tokenizer, model = self._load(model_name)
            # The encoder's position table bounds the input, whatever the tokenizer claims.
            input_limit = min(self.max_input_tokens, int(tokenizer.model_max_length or self.max_input_tokens),
                              int(getattr(model.config, "max_position_embeddings", None) or self.max_input_tokens))
            for start in range(0, len(indexes), self.batch_size):
                chunk = indexes[start:start + self.batch_size]
                inputs = tokenizer([texts[i] for i in chunk], truncation=True, padding=True,
                                   max_length=input_limit, return_tensors="pt").to(self.device)
                with torch.inference_mode():
                    output = model.generate(**inputs, max_new_tokens=self.max_new_tokens, num_beams=1,
                                            do_sample=False)
                special = set(tokenizer.all_special_ids)
                for row, i in enumerate(chunk):
                    tokens = [int(t) for t in output[row] if int(t) not in special]
                    decoded = tokenizer.decode(tokens, skip_special_tokens=True).strip()
                    if decoded:
                        results[i] = Generated(decoded, model_name, len(tokens), len(chunk))
        return results
