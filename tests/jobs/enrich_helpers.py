"""Data and builders shared by the enrichment tests and the benchmark (not fixtures, so they can
be imported: `from enrich_helpers import ...`; pytest puts this folder on sys.path)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg

from cluster.store import articles as article_store
from cluster.store import sources as source_store

DATA = Path(__file__).parent / "data"
BASE_TIME = datetime(2024, 5, 1, 8, tzinfo=timezone.utc)


@dataclass(frozen=True)
class SeedArticle:
    source: str
    key: str
    title: str
    body: str
    published_at: datetime
    language: str | None = None


Seeder = Callable[[asyncpg.Pool, list[SeedArticle]], Awaitable[dict[str, uuid.UUID]]]


def load_story_events() -> list[dict[str, Any]]:
    return list(json.loads((DATA / "story_events.json").read_text())["events"])


def event_articles(events: list[dict[str, Any]], sides: str = "ab", spacing_days: int = 4) -> list[SeedArticle]:
    """Articles of the labelled events; events `spacing_days` apart so only a pair can match."""
    articles = []
    for index, event in enumerate(events):
        for side in sides:
            item = event[side]
            articles.append(SeedArticle(
                source=item["source"], key=f"{event['id']}-{side}", title=item["title"],
                body=item["body"], published_at=BASE_TIME + timedelta(days=spacing_days * index, hours=item["hours"]),
            ))
    return articles


async def insert_articles(pool: asyncpg.Pool, articles: list[SeedArticle]) -> dict[str, uuid.UUID]:
    """Store articles through the real article store (one source per outlet); ids by key."""
    ids: dict[str, uuid.UUID] = {}
    by_source: dict[str, list[SeedArticle]] = {}
    for article in articles:
        by_source.setdefault(article.source, []).append(article)
    for name, items in by_source.items():
        slug = "".join(ch for ch in name.lower() if ch.isalnum())
        source, _ = await source_store.add_source(pool, source_store.NewSource(
            url=f"https://{slug}.example/feed.xml", title=name))
        inputs = [article_store.ArticleInput(
            dedupe_key=a.key, guid=a.key, url=f"https://{slug}.example/{a.key}", title=a.title,
            summary=a.body.split(". ")[0] + ".", content=f"<p>{a.body}</p>", published_at=a.published_at,
            language=a.language) for a in items]
        await article_store.upsert_articles(pool, source.id, inputs)
        for row in await pool.fetch("SELECT id, dedupe_key FROM articles WHERE source_id = $1", source.id):
            ids[row["dedupe_key"]] = row["id"]
    return ids


TINY_CORPUS = [
    "The central bank raised interest rates to fight inflation on Thursday.",
    "Rescue teams searched for survivors after the earthquake destroyed villages.",
    "Merkez Bankası faiz oranını yükseltti ve enflasyonla mücadele sürüyor.",
    "Deprem sonrası arama kurtarma ekipleri köylerde çalışıyor.",
    "Die Regierung beschließt ein neues Gesetz zum Klimaschutz.",
    "Football fans celebrated the late goal in the final.",
]


def build_tiny_seq2seq(target: Path, seed: int) -> Path:
    """A BPE tokenizer trained on a few sentences and a random two-layer BART: real files that
    AutoTokenizer / AutoModelForSeq2SeqLM load, small enough to build in a second."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TINY_CORPUS * 4, vocab_size=400, min_frequency=1, special_tokens=specials)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>", mask_token="<mask>", model_max_length=128)
    tokenizer.save_pretrained(target)
    config = BartConfig(
        vocab_size=len(tokenizer), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
        forced_bos_token_id=None, forced_eos_token_id=None,
    )
    torch.manual_seed(seed)
    model = BartForConditionalGeneration(config)
    # Random weights tend to emit </s> at once; biasing the special tokens away makes the model
    # write ordinary tokens until the length cap, which is what the cap test needs.
    with torch.no_grad():
        for token_id in tokenizer.all_special_ids:
            model.final_logits_bias[0, token_id] = -1e4
    model.save_pretrained(target)
    return target


