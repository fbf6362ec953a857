"""The incremental enrichment worker: one long-lived actor that runs the crawl scheduler's
micro-batches in its own process, with the pipeline's stage objects built once.

Why an actor rather than a Ray Data run per micro-batch (`submit_micro_batch`): a Ray Data run
starts a task and an actor per stage, and the embedding actor imports torch and loads the model
again every time. For the steady trickle of a running instance (~20 new articles a minute) that
start-up is nearly all of the cost. Measured on the 2-core machine with
tests/benchmarks/enrich_micro.py, CPU seconds over all processes per micro-batch of 20 articles:
Ray Data run 11-15 s (about a fifth of a core at one batch a minute), this worker 0.36 s (its
first batch, with actor start and model load, 8 s). What the worker costs instead is memory:
torch and the model stay resident in its process (~0.8 GB) while the scheduler lives.

It runs the very same stage objects as the Ray Data pipeline (jobs/enrichment/stages.py), one
batch after the other, so its rows are the pipeline's rows. Large backlogs (`--all`, a new
model) are for the batch job, `python -m jobs.enrich`, which spreads the stages over the
cluster and its GPUs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import ray

from jobs.enrichment.config import EnrichConfig

# Like the crawlers: a small logical share, so the worker fits beside the Serve replicas, the
# crawlers and a running batch job on two CPUs. It embeds on one torch thread (below), so it
# never takes more than one core from crawling and serving.
WORKER_NUM_CPUS = 0.1
WORKER_TORCH_THREADS = 1


class LocalPipeline:
    """The pipeline's stages in this process: load and prepare → embed → (summarize) → write, one
    embedding batch at a time. The model stages are built on the first run that finds work, so
    an idle instance never imports torch."""

    def __init__(self, config: EnrichConfig) -> None:
        self.config = config
        self._stages: list[Any] = []

    def _build(self) -> list[Any]:
        from jobs.enrichment.stages import EmbedStage, SummarizeStage, WriteStage

        if not self._stages:
            summarize = [SummarizeStage(self.config)] if self.config.summarizer_routes else []
            self._stages = [EmbedStage(self.config), *summarize, WriteStage(self.config)]
        return self._stages

    def run(self, config: EnrichConfig, limit: int) -> Any:
        """Enrich up to `limit` pending articles, freshest first; returns an EnrichStats. (`config`
        is the one this pipeline was built with: the signature is enrich_pending's runner.)"""
        from jobs.enrich import EnrichStats, _pending_ids, pending_selection
        from jobs.enrichment.stages import load_and_prepare, run_sync

        started = time.perf_counter()
        selection = pending_selection(self.config)
        ids = [str(i) for i in run_sync(_pending_ids(self.config.database_url, selection, limit))]
        stats = EnrichStats(pending=len(ids))
        devices: set[str] = set()
        step = self.config.batch_size
        for start in range(0, len(ids), step):
            batch = load_and_prepare({"id": np.array(ids[start:start + step], dtype=object)}, self.config, selection)
            if not len(batch["id"]):
                continue  # another run enriched them meanwhile
            for stage in self._build():  # the last one, the writer, returns what it wrote
                batch = stage(batch)
            stats.written += int(batch["written"].sum())
            devices.update(str(d) for d in batch["device"] if d)
        stats.devices = sorted(devices)
        stats.seconds = time.perf_counter() - started
        return stats


@ray.remote(num_cpus=WORKER_NUM_CPUS, max_restarts=-1, max_task_retries=0)
class EnrichWorker:
    """Runs micro-batches one at a time (a synchronous actor). Created by the crawl scheduler's
    enrichment trigger and owned by it: it goes away with the scheduler."""

    def __init__(self, **overrides: Any) -> None:
        import os

        from jobs.enrich import default_config

        # On the CPU even on a GPU node (before torch is imported): Ray leaves the GPUs visible to
        # an actor that reserved none, and one used unreserved could run the batch job's GPU
        # stages out of memory. A trickle of new articles needs no GPU.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        config = default_config(**overrides)
        self._pipeline = LocalPipeline(config.with_changes(torch_threads=config.torch_threads or WORKER_TORCH_THREADS))

    def run_batch(self, limit: int | None = None) -> dict[str, Any]:
        """One micro-batch: EnrichStats as a dict (the scheduler does not import `jobs`);
        skipped while another micro-batch holds the lock."""
        from dataclasses import asdict

        from jobs.enrich import enrich_pending

        return asdict(enrich_pending(limit, self._pipeline.config, runner=self._pipeline.run))


def start_worker(**overrides: Any) -> Any:
    """A new worker, owned by the calling process (the crawl scheduler)."""
    return EnrichWorker.remote(**overrides)

