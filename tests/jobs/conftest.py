"""Fixtures for the enrichment tests: labelled data, the real default model, tiny seq2seq models
built here (nothing can be downloaded), and a helper that stores articles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from enrich_helpers import Seeder, build_tiny_seq2seq, insert_articles, load_story_events


@pytest.fixture(scope="session")
def story_events() -> list[dict[str, Any]]:
    return load_story_events()


@pytest.fixture(scope="session")
def seed() -> Seeder:
    return insert_articles


@pytest.fixture(scope="session")
def embedder() -> Any:
    from jobs.enrichment.embed import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def tiny_summarizers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two distinct tiny models: one routed to English, one to Turkish."""
    root = tmp_path_factory.mktemp("tiny-seq2seq")
    return {"en": build_tiny_seq2seq(root / "en", seed=1), "tr": build_tiny_seq2seq(root / "tr", seed=2)}
