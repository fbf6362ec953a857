"""What the workers of each pipeline stage asked Ray for: the state API's required resources of
the tasks and actors that ran.

test_enrich_pipeline.py inspects its runs on the CPU-only session cluster with it;
test_enrich_placement.py runs this as a script, which starts a short-lived cluster of its own
with logical GPUs (no real one is needed: a GPU request is bookkeeping for Ray, and the stages
use CUDA only where torch finds it) and runs the pipeline there:

    python tests/jobs/enrich_placement.py --database-url URL --data-dir DIR --summarizer PATH --gpus 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
# Ray Data's names for the operators, which name the workers (actors' class, tasks' name). A
# fused operator names all of its stages: MapBatches(load_and_prepare)->MapBatches(EmbedStage).
STAGE_OF = {"load_and_prepare": "prepare", "EmbedStage": "embed", "SummarizeStage": "summarize", "WriteStage": "write"}
# The one stage that runs as tasks where it is not fused; the filter keeps a long test session's
# other tasks out.
LOAD_TASKS = [("name", "=", "MapBatches(load_and_prepare)")]


def _stages(name: str) -> list[str]:
    return [stage for marker, stage in STAGE_OF.items() if f"MapBatches({marker})" in name]


def stage_workers(exclude: set[str] | frozenset[str] = frozenset()) -> dict[str, list[dict[str, float]]]:
    """Stage → the required resources of each of its actors and tasks (other than `exclude`:
    ids of workers from earlier runs on the same cluster)."""
    from ray.util.state import list_actors, list_tasks

    found: dict[str, list[dict[str, float]]] = {}
    workers = [(actor.actor_id, actor.class_name, actor.required_resources)  # class: MapWorker(MapBatches(...))
               for actor in list_actors(_address(), detail=True, limit=10_000, raise_on_missing_output=False)]
    workers += [(task.task_id, task.name, task.required_resources)
                for task in list_tasks(_address(), filters=LOAD_TASKS, detail=True, limit=10_000,
                                       raise_on_missing_output=False)]
    for worker_id, name, resources in workers:
        if worker_id not in exclude:
            for stage in _stages(name or ""):
                found.setdefault(stage, []).append(dict(resources or {}))
    return found


def worker_ids() -> set[str]:
    from ray.util.state import list_actors, list_tasks

    actors = list_actors(_address(), limit=10_000, raise_on_missing_output=False)
    tasks = list_tasks(_address(), filters=LOAD_TASKS, limit=10_000, raise_on_missing_output=False)
    return {a.actor_id for a in actors} | {t.task_id for t in tasks}


def _address() -> str:
    """The connected cluster's (other Ray clusters may run on this machine)."""
    import ray

    return str(ray.get_runtime_context().gcs_address)


def run_and_inspect(database_url: str, summarizer: str, model_version: str) -> dict[str, Any]:
    """One pipeline run (every article: a model version of its own) on the connected cluster."""
    from jobs import enrich
    from jobs.enrichment.config import EnrichConfig

    config = EnrichConfig(database_url=database_url, model_version=model_version, summarizer_routes={"en": summarizer},
                          summary_max_tokens=8, batch_size=16, write_batch=16, read_chunk=16)
    before = worker_ids()
    stats = enrich.run(config)
    return {"written": stats.written, "devices": stats.devices, "planned": stats.placement,
            "workers": stage_workers(exclude=before)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--summarizer", required=True)
    parser.add_argument("--gpus", type=int, default=1)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from cluster.ray_cluster import RayPorts, connect, start_head, stop_head
    from cluster.settings import load_settings

    settings = load_settings(data_dir=args.data_dir)
    env = {"NEWSRAY_DATABASE_URL": args.database_url, "NEWSRAY_DATA_DIR": str(args.data_dir)}
    ports = RayPorts(gcs=_free_port(), dashboard=_free_port(), haproxy_stats=_free_port(), haproxy_metrics=_free_port())
    try:
        # Two CPUs, like the development machine: the plan must fit them beside a GPU too.
        connect(start_head(settings, ports, env, num_cpus=2, num_gpus=args.gpus), env=env)
        result = run_and_inspect(args.database_url, args.summarizer, f"placement-{args.gpus}-gpu")
        result["cluster"] = {key: float(value) for key, value in ray.cluster_resources().items()
                             if key in ("CPU", "GPU")}
        print(json.dumps(result))
    finally:
        ray.shutdown()
        stop_head(settings)
        shutil.rmtree(args.data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
