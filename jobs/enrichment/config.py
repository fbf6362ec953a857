"""Everything a pipeline run needs, in one picklable object handed to every stage.

Stages get their configuration from the driver rather than from each worker's environment, so
a test or `--model-version` changes one run without touching the cluster's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from cluster.settings import Settings
from jobs.enrichment.embed import DEFAULT_MAX_TOKENS, Dtype, model_version
from jobs.enrichment.stories import StoryParams
from jobs.enrichment.summarize import parse_routes

# Bump when a stage's logic changes in a way stored rows should be recomputed for.
PIPELINE_VERSION = 1


@dataclass(frozen=True)
class EnrichConfig:
    database_url: str
    model: str = ""
    model_version: str = ""
    pipeline_version: int = PIPELINE_VERSION
    batch_size: int = 64
    gpu_batch_size: int = 512
    max_tokens: int = DEFAULT_MAX_TOKENS
    dtype: Dtype = "auto"
    torch_threads: int = 0
    topics_file: Path | None = None
    topic_threshold: float = 0.78
    story: StoryParams = field(default_factory=StoryParams)
    summarizer_routes: Mapping[str, str] = field(default_factory=dict)
    summary_max_tokens: int = 96
    summary_batch_size: int = 8
    summary_gpu_batch_size: int = 32
    # Ids per block, the unit Ray Data hands a stage: nothing is written before the first block is
    # embedded (~1.5 s for 128 on one core), and the last blocks leave an embedding actor idle.
    read_chunk: int = 128
    write_batch: int = 128
    micro_batch: int = 256

    def __post_init__(self) -> None:
        if not self.model_version:
            object.__setattr__(self, "model_version", model_version(self.model))

    @classmethod
    def from_settings(cls, settings: Settings, database_url: str, **overrides: Any) -> "EnrichConfig":
        values: dict[str, Any] = dict(
            database_url=database_url,
            model=settings.enrich_model,
            model_version=settings.enrich_model_version,
            batch_size=settings.enrich_batch_size,
            gpu_batch_size=settings.enrich_gpu_batch_size,
            max_tokens=settings.enrich_max_tokens,
            dtype=settings.enrich_dtype,
            torch_threads=settings.enrich_torch_threads,
            topics_file=settings.enrich_topics_file,
            topic_threshold=settings.enrich_topic_threshold,
            story=StoryParams(timedelta(hours=settings.enrich_story_window_h), settings.enrich_story_cosine,
                              settings.enrich_story_jaccard),
            summarizer_routes=parse_routes(settings.enrich_summarizer),
            summary_max_tokens=settings.enrich_summary_max_tokens,
            micro_batch=settings.enrich_micro_batch,
        )
        values.update(overrides)
        return cls(**values)

    def with_changes(self, **changes: Any) -> "EnrichConfig":
        config = replace(self, **changes)
        if "model" in changes and "model_version" not in changes:
            object.__setattr__(config, "model_version", model_version(config.model))
        return config
