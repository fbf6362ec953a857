"""Enrichment on Ray Data: language, sentiment, topics, summaries, embeddings and story clusters.

    python -m jobs.enrich [--all] [--since 24h] [--model-version LABEL] [--limit N]
    ray job submit --working-dir . -- python -m jobs.enrich

Pending articles (never enriched, enriched by another model version or an older pipeline, or
changed since) stream from PostgreSQL in chunks of ids through CPU stages and model stages
(actor pools; GPUs requested only when the cluster has them) into batch writes. Every write
batch commits on its own, and what is pending is read from the database, so a killed run
resumes where it stopped and a re-run finds nothing to do.

The crawl scheduler enriches new articles incrementally, in micro-batches on a long-lived worker
actor (jobs/enrichment/worker.py, which runs the same stages in one process; why not a Ray Data
run per micro-batch is explained there); `submit_micro_batch()` runs one through Ray Data.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from cluster.store import enrichment as store
from jobs.enrichment.config import EnrichConfig
from jobs.enrichment.stages import EmbedStage, SummarizeStage, WriteStage, load_and_prepare, run_sync

if TYPE_CHECKING:
    import ray
    from ray.data import Dataset

# The stages, in order; also the keys of EnrichStats.placement. "prepare" reads the articles too.
STAGES = ("prepare", "embed", "summarize", "write")


@dataclass(frozen=True)
class StagePlan:
    """Resources and batching of one stage on a given cluster."""

    num_cpus: float
    num_gpus: float
    batch_size: int | None  # None: a whole block at a time
    concurrency: int | tuple[int, int]  # workers: a fixed count, or (min, max) to autoscale
    actors: bool = True  # a callable class (actor pool) rather than a function (tasks)

    def at_most(self, workers: int) -> "StagePlan":
        if isinstance(self.concurrency, int):
            return replace(self, concurrency=min(self.concurrency, workers))
        low, high = self.concurrency
        return replace(self, concurrency=(min(low, workers), min(high, workers)))

    def ray_args(self) -> dict[str, Any]:
        from ray.data import ActorPoolStrategy, TaskPoolStrategy

        if self.actors:
            compute: Any = (ActorPoolStrategy(size=self.concurrency) if isinstance(self.concurrency, int)
                            else ActorPoolStrategy(min_size=self.concurrency[0], max_size=self.concurrency[1]))
        else:
            size = self.concurrency if isinstance(self.concurrency, int) else self.concurrency[1]
            compute = TaskPoolStrategy(size=size)
        args: dict[str, Any] = {"num_cpus": self.num_cpus, "batch_size": self.batch_size, "compute": compute}
        if self.num_gpus > 0:  # CPU-only clusters get no GPU request at all, not num_gpus=0
            args["num_gpus"] = self.num_gpus
        return args


def stage_resources(cluster_resources: Mapping[str, float], config: EnrichConfig) -> dict[str, StagePlan]:
    """Where each stage runs: model stages on GPUs (and with larger batches) when the cluster has
    any, on CPU actors otherwise. Pure, so placement is testable without a GPU cluster.

    With one GPU and two model stages each takes half of it: two actors asking for a whole GPU
    each could never both start on it, and the pipeline would wait forever.
    """
    cpus = max(1.0, float(cluster_resources.get("CPU", 1)))
    gpus = float(cluster_resources.get("GPU", 0))
    model_stages = ["embed"] + (["summarize"] if config.summarizer_routes else [])
    # Fractional CPU requests: on a 2-CPU machine Serve replicas, crawlers and the scheduler hold
    # some of the logical CPUs, and a stage that cannot reserve its share never starts. The
    # embedding actors set their torch threads themselves (stages._threads), so a small logical
    # share does not limit the cores they use.
    plans = {
        # Reading and preparing: tasks over whole blocks of `read_chunk` ids. (A batch size equal
        # to the block size made Ray Data join two blocks whenever the ids did not split evenly:
        # 4 units of work for 2,000 articles, and nothing written for the first half minute.)
        "prepare": StagePlan(0.25, 0, None, max(1, min(2, int(cpus))), actors=False),
        "write": StagePlan(0.1, 0, config.write_batch, 1),
    }
    if gpus > 0:
        share = min(1.0, gpus / len(model_stages))
        actors = max(1, int(gpus / len(model_stages) / share))
        # A core each to feed the GPU; on a node with fewer than 4 CPUs half of one, or two model
        # stages (2 CPUs) beside the CPU stages would not fit on 2 CPUs and never start.
        feed = 1.0 if cpus >= 4 else 0.5
        plans["embed"] = StagePlan(feed, share, config.gpu_batch_size, actors)
        if "summarize" in model_stages:
            plans["summarize"] = StagePlan(feed, share, config.summary_gpu_batch_size, actors)
    else:
        # The same CPU request as "prepare": Ray Data then fuses reading and preparing into the
        # embedding actors, and no article text crosses processes before it is embedded.
        # Small nodes: two embedding actors of one torch thread each, not one of two threads.
        # Measured on the 2-core machine: two one-thread processes embed 146-166 texts/s at ~12 ms
        # of CPU a text; one two-thread process 51-150/s and up to 20 ms a text, because its
        # threads wait for each other whenever the other core is busy (with the pipeline's other
        # stages, always). Larger nodes: an actor per 4 cores, threads = its share of them.
        actors = max(1, min(2, int(cpus))) if cpus < 8 else int(cpus) // 4
        plans["embed"] = StagePlan(0.25, 0, config.batch_size, actors)
        if "summarize" in model_stages:
            plans["summarize"] = StagePlan(0.5, 0, config.summary_batch_size, 1)
    return plans


@dataclass
class EnrichStats:
    pending: int = 0
    written: int = 0
    seconds: float = 0.0
    placement: dict[str, dict[str, float | None]] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    skipped: bool = False  # a micro-batch found another one running

    @property
    def per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def build_dataset(ids: list[str], config: EnrichConfig, selection: store.Selection,
                  plans: Mapping[str, StagePlan]) -> Dataset:
    """The pipeline as a lazy Dataset (nothing runs until it is consumed)."""
    import ray.data

    chunks = max(1, -(-len(ids) // config.read_chunk))
    ds = ray.data.from_items([{"id": value} for value in ids], override_num_blocks=chunks)
    # A small run starts no more workers than it has blocks (no idle model actor, and no warning
    # from Ray Data about task slots that can never be used).
    plans = {name: plan.at_most(chunks) for name, plan in plans.items()}
    ds = ds.map_batches(load_and_prepare, fn_kwargs={"config": config, "selection": selection},
                        batch_format="numpy", **plans["prepare"].ray_args())
    embed = plans["embed"]
    per_node = embed.concurrency if isinstance(embed.concurrency, int) else embed.concurrency[1]
    ds = ds.map_batches(EmbedStage, fn_constructor_kwargs={"config": config, "actors_per_node": per_node},
                        batch_format="numpy", **embed.ray_args())
    if "summarize" in plans:
        ds = ds.map_batches(SummarizeStage, fn_constructor_kwargs={"config": config}, batch_format="numpy",
                            **plans["summarize"].ray_args())
    return ds.map_batches(WriteStage, fn_constructor_kwargs={"config": config}, batch_format="numpy",
                          **plans["write"].ray_args())


def run(config: EnrichConfig, selection: store.Selection | None = None, *, limit: int | None = None,
        progress: bool = False, on_batch: Callable[[int], None] | None = None) -> EnrichStats:
    """Enrich what `selection` picks (default: pending for this config) on the connected cluster."""
    import ray

    selection = selection or pending_selection(config)
    started = time.perf_counter()
    ids = run_sync(_pending_ids(config.database_url, selection, limit))
    stats = EnrichStats(pending=len(ids))
    if not ids:  # the common micro-batch case: no Ray Data start-up at all
        return stats
    run_sync(_ensure_index(config))
    plans = stage_resources(ray.cluster_resources(), config)
    stats.placement = {name: {"num_cpus": plan.num_cpus, "num_gpus": plan.num_gpus, "batch_size": plan.batch_size}
                       for name, plan in plans.items()}
    _configure_ray_data(progress)
    dataset = build_dataset([str(i) for i in ids], config, selection, plans)
    reporter = _Progress(len(ids)) if progress else None
    devices: set[str] = set()
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        count = int(batch["written"].sum())
        stats.written += count
        devices.update(str(d) for d in batch["device"] if d)
        if reporter:
            reporter.update(stats.written)
        if on_batch:
            on_batch(stats.written)
    stats.devices = sorted(devices)
    stats.seconds = time.perf_counter() - started
    if reporter:
        reporter.done(stats)
    return stats


def pending_selection(config: EnrichConfig, *, force: bool = False, since: datetime | None = None) -> store.Selection:
    return store.Selection(config.model_version, config.pipeline_version,
                           force_before=datetime.now(timezone.utc) if force else None, since=since)


async def _pending_ids(database_url: str, selection: store.Selection, limit: int | None) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(database_url, timeout=30)
    try:
        return await store.pending_ids(conn, selection, limit)
    finally:
        await conn.close()


async def _ensure_index(config: EnrichConfig) -> None:
    """Another model's dimension gets its own partial HNSW index before rows arrive (the
    default model's 384-dim index comes with the migration)."""
    if not config.model:
        return
    import asyncpg

    from jobs.enrichment.embed import resolve_model

    dims = _model_dims(resolve_model(config.model)[0])
    if dims:
        conn = await asyncpg.connect(config.database_url, timeout=30)
        try:
            await store.ensure_vector_index(conn, dims)
        finally:
            await conn.close()


def _model_dims(path: str) -> int | None:
    """The embedding size from the model's config files, without loading the weights."""
    import json
    from pathlib import Path

    root = Path(path)
    for name, key in (("1_Pooling/config.json", "word_embedding_dimension"), ("config.json", "hidden_size")):
        try:
            return int(json.loads((root / name).read_text())[key])
        except (OSError, KeyError, ValueError, TypeError):
            continue
    return None


def _configure_ray_data(progress: bool) -> None:
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = progress
    # Batches stream to the writer as they finish; order does not matter for enrichment.
    context.execution_options.preserve_order = False


class _Progress:
    """One line per few seconds: Ray Data's own bars show the stages, this shows the total."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.started = time.perf_counter()
        self.last = 0.0

    def update(self, written: int) -> None:
        now = time.perf_counter()
        if now - self.last >= 2.0 or written >= self.total:
            self.last = now
            rate = written / max(now - self.started, 1e-9)
            print(f"enrich: {written}/{self.total} articles ({100 * written // max(self.total, 1)}%), "
                  f"{rate:.1f}/s", file=sys.stderr, flush=True)

    def done(self, stats: EnrichStats) -> None:
        print(f"enrich: done, {stats.written} articles in {stats.seconds:.1f} s ({stats.per_second:.1f}/s) "
              f"on {', '.join(stats.devices) or 'no device'}", file=sys.stderr, flush=True)


# --- the scheduler's entry points --------------------------------------------------------------

# Runs one micro-batch of at most `limit` articles: Ray Data (`_ray_data_micro_batch`) or the
# incremental worker's in-process stages (jobs/enrichment/worker.py).
MicroBatchRunner = Callable[[EnrichConfig, int], EnrichStats]


def enrich_pending(limit: int | None = None, config: EnrichConfig | None = None,
                   runner: MicroBatchRunner | None = None) -> EnrichStats:
    """One incremental micro-batch: at most `limit` (default NEWSRAY_ENRICH_MICRO_BATCH) pending
    articles, freshest first. Returns at once, skipped, while another micro-batch runs.

    Without a `runner` it runs the Ray Data pipeline and needs a connected Ray driver (a Ray task
    or actor is one); from async code use `submit_micro_batch`, which runs this as a Ray task and
    returns an awaitable ObjectRef. The crawl scheduler uses the incremental worker instead.
    """
    config = config or default_config()
    return run_sync(_locked_micro_batch(config, limit or config.micro_batch, runner or _ray_data_micro_batch))


def _ray_data_micro_batch(config: EnrichConfig, limit: int) -> EnrichStats:
    return run(config, None, limit=limit)


async def _locked_micro_batch(config: EnrichConfig, limit: int, runner: MicroBatchRunner) -> EnrichStats:
    import asyncio

    import asyncpg

    conn = await asyncpg.connect(config.database_url, timeout=30)
    try:
        if not await store.try_lock_micro_batch(conn):
            return EnrichStats(skipped=True)
        try:
            # The pipeline blocks; a thread keeps this loop (and the lock's connection) alive.
            return await asyncio.to_thread(runner, config, limit)
        finally:
            await store.unlock_micro_batch(conn)
    finally:
        await conn.close()


_micro_batch_task: Any = None


def submit_micro_batch(limit: int | None = None) -> ray.ObjectRef:
    """Start `enrich_pending(limit)` as a Ray task; `await` the returned ref for its EnrichStats."""
    global _micro_batch_task
    import ray

    if _micro_batch_task is None:
        # No CPU reserved: the task only drives the pipeline, whose stages reserve their own.
        _micro_batch_task = ray.remote(num_cpus=0, max_retries=0)(enrich_pending)
    return _micro_batch_task.remote(limit)


def default_config(**overrides: Any) -> EnrichConfig:
    from cluster.services import EmbeddedPostgres
    from cluster.settings import get_settings

    settings = get_settings()
    database_url = settings.database_url or EmbeddedPostgres(settings.resolved_data_dir).url
    return EnrichConfig.from_settings(settings, database_url, **overrides)


# --- command line ------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: str) -> timedelta:
    match = _DURATION.match(value)
    if not match:
        raise argparse.ArgumentTypeError(f"enrich: {value!r} is not a duration like 90m, 24h or 7d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.enrich", description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", dest="force", action="store_true",
                        help="enrich every selected article again, even those already up to date "
                             "(rows enriched before the run started; re-running --all starts over)")
    parser.add_argument("--since", type=parse_duration, metavar="DURATION",
                        help="only articles published in the last DURATION (e.g. 24h, 7d)")
    parser.add_argument("--model-version", default="",
                        help="version label stored with the rows; rows with another label are re-embedded")
    parser.add_argument("--limit", type=int, default=None, help="at most this many articles")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="articles per CPU model batch and per database write (default NEWSRAY_ENRICH_BATCH_SIZE)")
    parser.add_argument("--address", default=None, help="Ray address (default: the job's, or the local head)")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    return parser.parse_args(argv)


def _connect_ray(address: str | None) -> None:
    import os

    import ray

    from cluster.ray_cluster import connect

    if ray.is_initialized():
        return
    if address or os.environ.get("RAY_ADDRESS"):  # `ray job submit` sets RAY_ADDRESS for its driver
        connect(address or os.environ["RAY_ADDRESS"])
        return
    from cluster.lifecycle import ray_ports
    from cluster.ray_cluster import head_address
    from cluster.settings import get_settings

    settings = get_settings()
    connect(settings.ray_address or head_address(ray_ports(settings)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides: dict[str, Any] = {"model_version": args.model_version} if args.model_version else {}
    if args.batch_size:
        overrides.update(batch_size=args.batch_size, write_batch=args.batch_size, read_chunk=args.batch_size)
    config = default_config(**overrides)
    since = datetime.now(timezone.utc) - args.since if args.since else None
    selection = pending_selection(config, force=args.force, since=since)
    _connect_ray(args.address)
    print(f"enrich: model {config.model_version}, pipeline v{config.pipeline_version}", file=sys.stderr)
    stats = run(config, selection, limit=args.limit, progress=not args.quiet)
    if stats.pending == 0:
        print("enrich: nothing to do", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
