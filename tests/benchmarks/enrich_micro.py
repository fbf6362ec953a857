"""Incremental enrichment: what one micro-batch of a few new articles costs, as a Ray Data run
started per batch (a Ray task: `jobs.enrich.submit_micro_batch`) against the long-lived worker
actor the crawl scheduler uses (`jobs.enrichment.worker.EnrichWorker`).

    .venv/bin/python tests/benchmarks/enrich_micro.py [--articles 20] [--batches 3]

Starts its own embedded PostgreSQL and a local Ray head (no dashboard) in a temporary data dir.
For each way, `--batches` times: store `--articles` new articles, run one micro-batch and wait
for it. Reports CPU seconds per batch over every process of this run (Ray workers and daemons,
PostgreSQL, this driver; see enrich.ClusterCpu), wall seconds, and the worker's memory. The
worker's first batch (actor start, torch import, model load) is shown apart from the rest; so
is an idle tick (nothing pending), which the scheduler asks for every tick.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")

import psutil
from enrich import ClusterCpu, bench_cluster, generate_articles, store_articles


def measure(label: str, run: Any, database_url: str, postmaster: int | None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of `run()` over this run's processes; prints one line."""
    with ClusterCpu(database_url, postmaster) as cpu:
        started = time.perf_counter()
        stats = run()
        wall = time.perf_counter() - started
    kinds = ", ".join(f"{kind} {seconds:.2f}" for kind, seconds in list(cpu.by_kind.items())[:5])
    written = stats["written"] if isinstance(stats, dict) else stats.written  # the worker answers a dict
    print(f"{label:<28}{written:>5} written{cpu.total:>9.2f} CPU s{wall:>8.1f} s wall   ({kinds})", flush=True)
    return cpu.total, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20, help="new articles per micro-batch")
    parser.add_argument("--batches", type=int, default=3, help="micro-batches per way")
    args = parser.parse_args()

    import ray

    from jobs import enrich
    from jobs.enrichment.worker import start_worker

    with bench_cluster("nrm-") as (database_url, postmaster):
        items = generate_articles(args.articles * (2 * args.batches + 1))
        chunks = [items[i:i + args.articles] for i in range(0, len(items), args.articles)]
        print(f"Ray: {ray.cluster_resources().get('CPU', 0):.0f} CPUs; {args.articles} new articles per micro-batch")

        figures: dict[str, list[tuple[float, float]]] = {"task": [], "worker": [], "worker first": []}
        for number in range(args.batches):
            asyncio.run(store_articles(database_url, chunks.pop()))
            figures["task"].append(measure(f"Ray Data task, batch {number + 1}",
                                           lambda: ray.get(enrich.submit_micro_batch()), database_url, postmaster))
        idle_task = measure("Ray Data task, idle tick", lambda: ray.get(enrich.submit_micro_batch()),
                            database_url, postmaster)
        worker = None
        for number in range(args.batches + 1):
            asyncio.run(store_articles(database_url, chunks.pop()))

            def in_worker() -> Any:
                nonlocal worker
                worker = worker or start_worker()
                return ray.get(worker.run_batch.remote())

            figures["worker first" if number == 0 else "worker"].append(
                measure(f"worker actor, batch {number + 1}", in_worker, database_url, postmaster))
        idle_worker = measure("worker actor, idle tick", lambda: ray.get(worker.run_batch.remote()),
                              database_url, postmaster)
        worker_pid = ray.get(worker.__ray_call__.remote(lambda self: os.getpid()))
        worker_rss = psutil.Process(worker_pid).memory_info().rss / 2**20

        def mean(values: list[tuple[float, float]], index: int) -> float:
            return sum(v[index] for v in values) / max(1, len(values))

        print()
        print(f"per micro-batch of {args.articles} articles (mean of {args.batches}):")
        print(f"  Ray Data task:  {mean(figures['task'], 0):.2f} CPU s, {mean(figures['task'], 1):.1f} s wall; "
              f"idle tick {idle_task[0]:.2f} CPU s")
        print(f"  worker actor:   {mean(figures['worker'], 0):.2f} CPU s, {mean(figures['worker'], 1):.1f} s wall; "
              f"idle tick {idle_worker[0]:.2f} CPU s; first batch (start, model load) "
              f"{figures['worker first'][0][0]:.2f} CPU s, {figures['worker first'][0][1]:.1f} s wall")
        print(f"  worker memory:  {worker_rss:.0f} MiB resident")
        print(f"load average (1/5/15 min, {psutil.cpu_count()} cores): "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
