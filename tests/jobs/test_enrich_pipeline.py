"""The Ray Data pipeline end to end against the real database on the session's Ray cluster:
incremental, idempotent, resumable after a killed run, re-embedding on a model-version change,
the scheduler's incremental worker, and where the model stages are placed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from enrich_helpers import Seeder, event_articles
from enrich_placement import stage_workers, worker_ids

from cluster.store import enrichment as store
from jobs import enrich
from jobs.enrichment.config import EnrichConfig
from jobs.enrichment.embed import DEFAULT_MODEL_LABEL
from jobs.enrichment.worker import start_worker
from tests.polling import poll

REPO = Path(__file__).resolve().parents[2]


def small_config(database_url: str, **changes: Any) -> EnrichConfig:
    # Small batches: several write batches even for a few dozen articles.
    return EnrichConfig(database_url=database_url, batch_size=16, write_batch=16, read_chunk=16, **changes)


async def enrichment_rows(db: asyncpg.Pool) -> dict[uuid.UUID, asyncpg.Record]:
    rows = await db.fetch("SELECT * FROM article_enrichment")
    return {row["article_id"]: row for row in rows}


def plan_remote_args(dataset: Any) -> dict[str, dict[str, Any]]:
    """Operator name → the Ray remote args Ray Data will schedule it with."""
    found: dict[str, dict[str, Any]] = {}
    pending = [dataset._logical_plan.dag]
    while pending:
        op = pending.pop()
        found[op.name] = dict(getattr(op, "ray_remote_args", None) or {})
        pending.extend(op.input_dependencies)
    return found


async def test_pipeline_incremental_idempotent_and_model_version(
        db: asyncpg.Pool, seed: Seeder, story_events: list[dict[str, Any]], ray_cluster: str, database_url: str,
        tiny_summarizers: dict[str, Path]) -> None:
    first = await seed(db, event_articles(story_events, sides="a"))
    config = small_config(database_url)

    stats = await asyncio.to_thread(enrich.run, config)
    assert (stats.pending, stats.written) == (len(first), len(first))
    assert stats.devices == ["cpu"]
    # CPU-only cluster: no stage asks for a GPU.
    assert all(plan["num_gpus"] == 0 for plan in stats.placement.values()), stats.placement
    rows = await enrichment_rows(db)
    assert set(rows) == set(first.values())
    languages = {row["language"] for row in rows.values()}
    assert languages == {"en", "tr"}
    for article_id in first.values():
        row = rows[article_id]
        assert row["model_version"] == DEFAULT_MODEL_LABEL and row["pipeline_version"] == config.pipeline_version
        assert len(row["embedding"].to_numpy()) == 384
        assert row["story_id"] == article_id  # events 4 days apart, one outlet each: no story yet
        assert row["summary"] and row["summary_kind"] == "extractive"
        assert (row["sentiment"] is None) == (row["language"] != "en")
    assert sum(bool(row["topics"]) for row in rows.values()) >= len(rows) * 0.7
    # Feeds that declared no language get the detected one.
    assert await db.fetchval("SELECT count(*) FROM articles WHERE language IS NULL") == 0

    # Idempotent: nothing pending, nothing rewritten.
    again = await asyncio.to_thread(enrich.run, config)
    assert (again.pending, again.written) == (0, 0)
    assert {k: r["enriched_at"] for k, r in (await enrichment_rows(db)).items()} == \
        {k: r["enriched_at"] for k, r in rows.items()}

    # Incremental, on the crawl scheduler's enrichment worker (the same stages in one process):
    # only the new articles, and each joins the story of the same event from the other outlet.
    second = await seed(db, event_articles(story_events, sides="b"))
    worker = start_worker(batch_size=16, write_batch=16, read_chunk=16)
    micro = await worker.run_batch.remote(100)
    assert (micro["pending"], micro["written"], micro["skipped"]) == (len(second), len(second), False)
    assert micro["devices"] == ["cpu"]
    after = await enrichment_rows(db)
    assert all(after[i]["enriched_at"] == rows[i]["enriched_at"] for i in first.values())
    joined = sum(after[second[f"{e['id']}-b"]]["story_id"] == first[f"{e['id']}-a"] for e in story_events)
    assert joined >= 0.9 * len(story_events)
    valid_stories = set(first.values()) | set(second.values())
    assert all(row["story_id"] in valid_stories for row in after.values())
    sizes: dict[uuid.UUID, int] = {}
    for row in after.values():
        sizes[row["story_id"]] = sizes.get(row["story_id"], 0) + 1
    assert max(sizes.values()) == 2  # pairs only: different events never merge

    # A new model version re-embeds everything; story ids stay. With a summarizer configured,
    # English gets abstractive summaries from the tiny local model, Turkish keeps extractive.
    changed = config.with_changes(model_version="minilm-v2", summarizer_routes={"en": str(tiny_summarizers["en"])},
                                  summary_max_tokens=8)
    earlier = await asyncio.to_thread(worker_ids)
    redo = await asyncio.to_thread(enrich.run, changed)
    assert redo.written == len(first) + len(second)
    assert redo.placement["summarize"]["num_gpus"] == 0 and redo.placement["embed"]["num_gpus"] == 0
    # What the workers that ran asked Ray for: every stage ran, none asked for a GPU (the GPU
    # cluster's counterpart is test_enrich_placement.py).
    workers = await asyncio.to_thread(stage_workers, earlier)
    assert set(workers) == {"prepare", "embed", "summarize", "write"}, workers
    assert not any("GPU" in resources for found in workers.values() for resources in found), workers
    final = await enrichment_rows(db)
    assert {row["model_version"] for row in final.values()} == {"minilm-v2"}
    assert all(final[i]["story_id"] == after[i]["story_id"] for i in final)
    for row in final.values():
        expected = "abstractive" if row["language"] == "en" else "extractive"
        assert row["summary_kind"] == expected and row["summary"]


async def test_micro_batch_is_skipped_while_another_runs(db: asyncpg.Pool, ray_cluster: str, database_url: str) -> None:
    async with db.acquire() as conn:
        assert await store.try_lock_micro_batch(conn)
        try:
            stats = await asyncio.to_thread(enrich.enrich_pending, 10, small_config(database_url))
        finally:
            await store.unlock_micro_batch(conn)
    assert stats.skipped and stats.written == 0


async def test_resume_after_a_killed_run(db: asyncpg.Pool, seed: Seeder, story_events: list[dict[str, Any]],
                                         ray_cluster: str, database_url: str, tmp_path: Path) -> None:
    """`python -m jobs.enrich` is killed after its first write batch; the next run finishes the
    rest without redoing the finished rows and without losing any.

    The test holds the writers' story lock to stop the job between batches deterministically:
    it lets exactly one batch through, then kills the driver while the next waits.
    """
    ids = await seed(db, event_articles(story_events))
    batch = 8
    lock_conn = await asyncpg.connect(database_url)
    process: subprocess.Popen[bytes] | None = None
    log = tmp_path / "enrich.log"
    try:
        await lock_conn.execute("SELECT pg_advisory_lock($1)", store.STORY_LOCK_KEY)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "jobs.enrich", "--address", ray_cluster, "--batch-size", str(batch), "--quiet"],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True)
        await wait_for_lock_waiter(lock_conn, process, log)
        # Let one batch through: unlocking hands the lock to the waiting writer; our new request
        # queues behind it and is granted when that batch commits, before the next can ask.
        await lock_conn.execute("SELECT pg_advisory_unlock($1)", store.STORY_LOCK_KEY)
        await lock_conn.execute("SELECT pg_advisory_lock($1)", store.STORY_LOCK_KEY)
        await wait_for_lock_waiter(lock_conn, process, log)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        # The writer's connection may outlive the driver for a moment; end its waiting
        # transaction as the kill would have, so it cannot commit anything afterwards.
        await lock_conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    finally:
        await lock_conn.execute("SELECT pg_advisory_unlock_all()")
        await lock_conn.close()
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    done = await enrichment_rows(db)
    assert len(done) == batch  # exactly the one committed batch, nothing half-written
    resumed = await asyncio.to_thread(enrich.run, small_config(database_url))
    assert (resumed.pending, resumed.written) == (len(ids) - batch, len(ids) - batch)
    final = await enrichment_rows(db)
    assert set(final) == set(ids.values())  # nothing lost
    assert all(final[i]["enriched_at"] == row["enriched_at"] for i, row in done.items())  # nothing redone


async def wait_for_lock_waiter(conn: asyncpg.Connection, process: subprocess.Popen[bytes], log: Path,
                               timeout_s: float = 150) -> None:
    """Poll until a writer is queued on the story lock (the job reached a batch write)."""
    async def queued() -> bool:
        if await conn.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"):
            return True
        if process.poll() is not None:
            output = log.read_text(errors="replace")
            pytest.fail(f"the enrich job exited early ({process.returncode}): {output[-2000:]}")
        return False

    await poll(queued, "the enrich job to reach its first write", timeout_s=timeout_s)


def test_stage_resources_request_gpus_only_when_the_cluster_has_them() -> None:
    config = EnrichConfig(database_url="postgresql://unused")
    cpu = enrich.stage_resources({"CPU": 2.0}, config)
    assert all(plan.num_gpus == 0 and "num_gpus" not in plan.ray_args() for plan in cpu.values())
    # Two one-thread embedding actors on two cores, asking for the CPU share of "prepare" (so that
    # Ray Data runs reading and preparing inside them).
    assert cpu["embed"].batch_size == config.batch_size and cpu["embed"].concurrency == 2
    assert cpu["embed"].num_cpus == cpu["prepare"].num_cpus
    assert "summarize" not in cpu

    gpu = enrich.stage_resources({"CPU": 8.0, "GPU": 1.0}, config)
    assert gpu["embed"].ray_args()["num_gpus"] == 1.0 and gpu["embed"].batch_size == config.gpu_batch_size
    assert all(gpu[name].num_gpus == 0 for name in ("prepare", "write"))

    both = config.with_changes(summarizer_routes={"en": "/models/bart"})
    shared = enrich.stage_resources({"CPU": 8.0, "GPU": 1.0}, both)
    # Two model stages on one GPU share it; asking for a whole GPU each would never schedule.
    assert shared["embed"].num_gpus == shared["summarize"].num_gpus == 0.5
    assert shared["summarize"].batch_size == both.summary_gpu_batch_size
    many = enrich.stage_resources({"CPU": 32.0, "GPU": 4.0}, both)
    assert (many["embed"].num_gpus, many["embed"].concurrency) == (1.0, 2)
    cpu_both = enrich.stage_resources({"CPU": 2.0}, both)
    assert cpu_both["summarize"].num_gpus == 0 and "num_gpus" not in cpu_both["summarize"].ray_args()


def test_the_dataset_carries_the_gpu_request_to_ray_data(ray_cluster: str) -> None:
    """The plan Ray Data would schedule: GPU requests on the model stages for a GPU cluster, none
    at all for a CPU-only one (built, not run: this cluster has no GPU)."""
    config = EnrichConfig(database_url="postgresql://unused", summarizer_routes={"en": "/models/bart"})
    selection = enrich.pending_selection(config)
    gpu_plan = plan_remote_args(enrich.build_dataset(
        ["00000000-0000-0000-0000-000000000001"], config, selection,
        enrich.stage_resources({"CPU": 8.0, "GPU": 1.0}, config)))
    assert gpu_plan["MapBatches(EmbedStage)"]["num_gpus"] == 0.5
    assert gpu_plan["MapBatches(SummarizeStage)"]["num_gpus"] == 0.5
    assert "num_gpus" not in gpu_plan["MapBatches(load_and_prepare)"]
    cpu_plan = plan_remote_args(enrich.build_dataset(
        ["00000000-0000-0000-0000-000000000001"], config, selection, enrich.stage_resources({"CPU": 2.0}, config)))
    assert not any(args.get("num_gpus") for args in cpu_plan.values()), cpu_plan


def test_command_line() -> None:
    from datetime import timedelta

    args = enrich.parse_args(["--all", "--since", "24h", "--model-version", "v2", "--batch-size", "32"])
    assert (args.force, args.since, args.model_version, args.batch_size) == (True, timedelta(hours=24), "v2", 32)
    assert enrich.parse_duration("90m") == timedelta(minutes=90) and enrich.parse_duration("7d") == timedelta(days=7)
    with pytest.raises(SystemExit):
        enrich.parse_args(["--since", "yesterday"])
