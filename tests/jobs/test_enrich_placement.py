"""Where the stages run, shown by running them on a Ray cluster started with a logical GPU: the
embedding and summary stages' actors ask Ray for a share of it, the other stages for none. There
is no real GPU here: the stages still work, on the CPU (they use CUDA only where torch finds it).
The CPU-only counterpart (no worker asks for a GPU) is checked on the session's cluster, in
test_enrich_pipeline.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
from enrich_helpers import Seeder, event_articles
from enrich_placement import REPO

MODEL_STAGES = ("embed", "summarize")
CPU_STAGES = ("prepare", "write")


async def test_model_stages_request_the_gpu_of_a_gpu_cluster(
        db: asyncpg.Pool, seed: Seeder, story_events: list[dict[str, Any]], database_url: str,
        tiny_summarizers: dict[str, Path]) -> None:
    ids = await seed(db, event_articles(story_events[:3]))
    # A cluster of its own with one logical GPU and 2 CPUs, like this machine, in a subprocess:
    # a driver joins one cluster at a time, and this one must not outlive the test.
    data_dir = Path(os.path.realpath("/tmp")) / f"nrg-{os.getpid()}"
    command = [sys.executable, str(REPO / "tests" / "jobs" / "enrich_placement.py"), "--database-url", database_url,
               "--data-dir", str(data_dir), "--summarizer", str(tiny_summarizers["en"]), "--gpus", "1"]
    process = await asyncio.to_thread(subprocess.run, command, cwd=REPO, capture_output=True, text=True, timeout=300,
                                      stdin=subprocess.DEVNULL)
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["cluster"] == {"CPU": 2.0, "GPU": 1.0}
    assert result["written"] == len(ids) and result["devices"] == ["cpu"]  # requested, not used: no CUDA here
    workers = result["workers"]
    assert set(workers) == set(MODEL_STAGES + CPU_STAGES), workers
    # The two model stages share the one GPU, half each (and half a CPU each: the plan fits 2
    # CPUs); the CPU stages ask for none.
    assert workers["embed"] == workers["summarize"] == [{"CPU": 0.5, "GPU": 0.5}], workers
    assert not any("GPU" in resources for stage in CPU_STAGES for resources in workers[stage]), workers
    rows = await db.fetch("SELECT model_version, summary_kind, language FROM article_enrichment")
    assert len(rows) == len(ids) and {row["model_version"] for row in rows} == {"placement-1-gpu"}
    assert all(row["summary_kind"] == ("abstractive" if row["language"] == "en" else "extractive") for row in rows)
