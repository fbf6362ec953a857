"""Enrichment throughput: the Ray Data pipeline against a plain single-process loop.

    .venv/bin/python tests/benchmarks/enrich.py [--articles 5000] [--batch-size 64]

Starts its own embedded PostgreSQL and a local Ray head (in a temporary data dir), stores N
deterministic articles of realistic length (English, Turkish, German; events reported by several
outlets), then measures, in one run:

- the baseline: the same stage objects (same model, same batch size) called in a loop in this
  process: load → prepare → embed → write;
- each CPU/model stage through Ray Data on its own (steady state: first batch start to last
  batch end, measured inside the workers; and wall time including actor start-up);
- the whole pipeline (`jobs.enrich.run`) end to end from the database and back, with the CPU
  seconds per article of each kind of process (each stage's workers, Ray's daemons, PostgreSQL,
  the driver): unlike articles/s, barely skewed by other work on the machine;
- peak memory: this process during the baseline, and the sum over the driver and Ray's worker
  processes during the Ray Data runs.

`--pipeline-only` runs the end-to-end part alone (quicker while tuning).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import psutil

from cluster.db import create_pool, migrate
from cluster.services import EmbeddedPostgres, start_services, stop_services
from cluster.settings import load_settings
from cluster.store import articles as article_store
from cluster.store import sources as source_store
from jobs import enrich
from jobs.enrichment.config import EnrichConfig
from jobs.enrichment.stages import EmbedStage, PrepareStage, load_batch, run_sync, write_batch
from bench_support import ray_head  # noqa: E402 - a sibling script module

# --- deterministic articles --------------------------------------------------------------------

OUTLETS = {
    "en": ["Daily Ledger", "World Report", "Global Herald", "Capital Wire", "Metro Daily", "Harbour Herald",
           "Continental Times", "Evening Standard Post", "Tech Observer", "Sports Line", "Planet Desk", "Health Post"],
    "tr": ["Haber Merkezi", "Ekonomi Gazetesi", "Spor Haber", "Ege Gazetesi", "Finans Haber", "Gündem Postası"],
    "de": ["Tagesblatt", "Morgenpost Nord", "Wirtschaftsdienst", "Süddeutsche Rundschau"],
}
EN_SUBJECTS = {
    "economy": ("the central bank", ["raised its main interest rate by {n} basis points to {p} percent",
                                     "kept borrowing costs unchanged at {p} percent",
                                     "warned that inflation could stay above {p} percent until next year"]),
    "disaster": ("the earthquake", ["struck {place} with a magnitude of {m}", "destroyed hundreds of homes in {place}",
                                    "forced {n} families to leave their homes near {place}"]),
    "football": ("{club}", ["beat {club2} {s1}-{s2} in a tense match", "signed a new striker for {n} million euros",
                                  "reached the final after a late goal against {club2}"]),
    "tech": ("{company}", ["unveiled a new smartphone with a faster chip", "reported a quarterly profit of {n} billion dollars",
                                 "announced {n} job cuts in its software division"]),
    "politics": ("the government of {country}", ["survived a confidence vote by {n} votes",
                                                 "announced early elections for {month}",
                                                 "presented a budget with new spending on schools"]),
    "climate": ("negotiators at the climate summit", ["agreed a fund of {n} billion dollars for poor countries",
                                                      "failed to agree on phasing out coal",
                                                      "set a target to cut emissions by {p} percent"]),
}
EN_FILLER = [
    "Officials said more details would be published in the coming days.",
    "The decision was welcomed by business groups but criticised by unions.",
    "Analysts said the move had been widely expected after weeks of speculation.",
    "Local residents told reporters they were worried about what would happen next.",
    "The opposition called for an independent inquiry into the events.",
    "Experts warned that the situation could change quickly.",
    "A spokesperson declined to comment on the reports when contacted on {weekday}.",
    "Figures released on {weekday} showed a sharp change compared with the same period last year.",
    "The minister is expected to address parliament later this week.",
    "Markets reacted calmly, with the main index closing {p} percent higher.",
    "It was the {ordinal} time this year that the issue had made headlines.",
    "Observers said the next few weeks would be decisive.",
    "Several international organisations have offered assistance.",
    "Critics argue that the measures do not go far enough.",
    "Supporters say the plan will create thousands of new jobs by {year}.",
]
TR_SENTENCES = [
    "Merkez Bankası politika faizini yüzde {p} seviyesinde sabit tuttu.",
    "{place} ilçesinde {m} büyüklüğünde deprem meydana geldi.",
    "Galatasaray sahasında rakibini {s1}-{s2} mağlup etti.",
    "Yetkililer konuyla ilgili açıklamanın önümüzdeki günlerde yapılacağını söyledi.",
    "Uzmanlar gelişmelerin yakından takip edilmesi gerektiğini vurguladı.",
    "Vatandaşlar yaşananlardan endişe duyduklarını dile getirdi.",
    "Bakan, konuyla ilgili yeni düzenlemelerin yolda olduğunu açıkladı.",
    "Borsa İstanbul günü yüzde {p} yükselişle tamamladı.",
    "Ekonomistler enflasyonun yılın ikinci yarısında düşmesini bekliyor.",
    "Muhalefet partileri bağımsız bir soruşturma yapılmasını talep etti.",
]
DE_SENTENCES = [
    "Die Bundesregierung hat am {weekday} ein neues Gesetz beschlossen.",
    "Die Europäische Zentralbank hat den Leitzins um {n} Basispunkte angehoben.",
    "Experten rechnen mit weiteren Veränderungen in den kommenden Wochen.",
    "Die Opposition kritisierte die Pläne als unzureichend.",
    "Nach Angaben der Polizei wurden {n} Menschen verletzt.",
    "Der Deutsche Aktienindex schloss {p} Prozent höher.",
    "Ein Sprecher wollte sich zu den Berichten nicht äußern.",
    "Die Gewerkschaften kündigten Widerstand gegen die Pläne an.",
]
PLACES = ["Marrakech", "Izmir", "Naples", "Valparaíso", "Sendai", "Kathmandu", "Antakya", "Lisbon"]
COUNTRIES = ["Italy", "Chile", "Poland", "Kenya", "Canada", "Japan", "Brazil", "Sweden"]
CLUBS = ["Arsenal", "Inter Milan", "Bayern Munich", "Porto", "Ajax", "Celtic", "Benfica", "Lyon"]
COMPANIES = ["Northwind", "Contoso", "Globex", "Initech", "Umbrella Systems", "Stark Devices"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        n=rng.randint(2, 900), p=round(rng.uniform(0.5, 45), 1), m=round(rng.uniform(4.5, 7.9), 1),
        place=rng.choice(PLACES), country=rng.choice(COUNTRIES), club=rng.choice(CLUBS), club2=rng.choice(CLUBS),
        company=rng.choice(COMPANIES), s1=rng.randint(0, 4), s2=rng.randint(0, 3), weekday=rng.choice(WEEKDAYS),
        month=rng.choice(["March", "June", "October"]), year=rng.randint(2026, 2032),
        ordinal=rng.choice(["second", "third", "fourth"]),
    )


def generate_articles(count: int, seed: int = 42) -> list[tuple[str, str, article_store.ArticleInput]]:
    """(language, outlet, article): ~70% English, 20% Turkish, 10% German; 300–600 words each;
    events covered by 1–4 outlets within a day, in their own words."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=timezone.utc)
    out: list[tuple[str, str, article_store.ArticleInput]] = []
    event = 0
    while len(out) < count:
        event += 1
        language = rng.choices(["en", "tr", "de"], weights=[7, 2, 1])[0]
        when = start + timedelta(minutes=rng.randint(0, 60 * 24 * 10))
        kind = rng.choice(list(EN_SUBJECTS))
        subject, actions = EN_SUBJECTS[kind]
        facts = [_fill(f"{subject} {a}.".capitalize(), rng) for a in actions]
        for outlet in rng.sample(OUTLETS[language], k=min(len(OUTLETS[language]), rng.randint(1, 4))):
            if len(out) >= count:
                break
            if language == "en":
                lead = facts[:]
                rng.shuffle(lead)
                title = lead[0].rstrip(".")
                pool = EN_FILLER
            else:
                pool = TR_SENTENCES if language == "tr" else DE_SENTENCES
                title = _fill(rng.choice(pool), rng).rstrip(".")
                lead = [_fill(rng.choice(pool), rng)]
            body = lead + [_fill(rng.choice(pool), rng) for _ in range(rng.randint(24, 44))]
            paragraphs = "".join(f"<p>{' '.join(body[i:i + 4])}</p>" for i in range(0, len(body), 4))
            key = f"e{event}-{outlet}"
            out.append((language, outlet, article_store.ArticleInput(
                dedupe_key=key, guid=key, url=f"https://news.example/{event}/{abs(hash(outlet)) % 997}",
                title=title, summary=body[0], content=paragraphs,
                published_at=when + timedelta(minutes=rng.randint(0, 600)))))
    return out


async def store_articles(database_url: str, items: list[tuple[str, str, article_store.ArticleInput]]) -> None:
    pool = await create_pool(database_url)
    try:
        by_outlet: dict[str, list[article_store.ArticleInput]] = {}
        for _, outlet, article in items:
            by_outlet.setdefault(outlet, []).append(article)
        for outlet, articles in by_outlet.items():
            slug = "".join(ch for ch in outlet.lower() if ch.isalnum())
            source, _ = await source_store.add_source(pool, source_store.NewSource(
                url=f"https://{slug}.example/feed", title=outlet))
            for i in range(0, len(articles), 500):
                await article_store.upsert_articles(pool, source.id, articles[i:i + 500])
    finally:
        await pool.close()


# --- measuring ---------------------------------------------------------------------------------

class MemorySampler:
    """Peak summed RSS of this process and, optionally, Ray's worker processes."""

    def __init__(self, include_ray: bool) -> None:
        self.include_ray = include_ray
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = psutil.Process().memory_info().rss
        if self.include_ray:
            for proc in psutil.process_iter(attrs=["name", "memory_info"]):
                name = proc.info.get("name") or ""
                if name.startswith("ray::") and proc.info.get("memory_info"):
                    total += proc.info["memory_info"].rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.25)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


class ClusterCpu:
    """CPU seconds and peak memory of this run's processes while a block runs, CPU by kind: each
    pipeline stage (Ray Data names its workers after the stage), the micro-batch task or worker,
    Ray's daemons and idle workers, PostgreSQL and this driver (less this meter's own sampling).
    Sampled every 0.2 s, because Ray Data's actors exit when a run ends (their last sample stands
    for them). Ours = the database URL in the process environment (every Ray process inherits it
    from `ray start`), or PostgreSQL's postmaster and its backends; the postmaster's children
    time accounts for the backends that exited."""

    # Most telling first: Ray reuses a worker process that ran tasks of one stage for an actor of
    # another, and then the actor's stage is what used its CPU.
    STAGES = ("EnrichWorker", "EmbedStage", "SummarizeStage", "WriteStage", "PrepareStage", "Timed",
              "load_and_prepare", "load_batch", "enrich_pending")

    def __init__(self, database_url: str, postmaster_pid: int | None) -> None:
        self.marker = f"NEWSRAY_DATABASE_URL={database_url}".encode()
        self.postmaster_pid = postmaster_pid
        self.by_kind: dict[str, float] = {}
        self.peak_rss = 0
        self._procs: dict[int, psutil.Process | None] = {}  # None: not ours
        self._names: dict[int, str] = {}  # every title a process had, joined
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._alive: set[int] = set()
        self._own_cpu = 0.0  # this meter's sampling, done in the driver process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _ours(self, pid: int) -> psutil.Process | None:
        if pid not in self._procs:
            try:
                proc = psutil.Process(pid)
                ours = (pid == os.getpid() or proc.ppid() == self.postmaster_pid
                        or self.marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"))
            except (OSError, psutil.Error):
                proc, ours = None, False
            self._procs[pid] = proc if ours else None
        return self._procs[pid]

    def _kind(self, pid: int) -> str:
        name = self._names.get(pid, "")
        if pid == os.getpid():
            return "driver"
        if pid == self.postmaster_pid or "postgres" in name:
            return "postgres"
        stage = next((stage for stage in self.STAGES if stage in name), None)
        return stage or ("ray workers (idle, other)" if "ray::" in name else "ray daemons")

    def _postmaster(self) -> float:
        try:
            times = psutil.Process(self.postmaster_pid).cpu_times()
        except (psutil.Error, ValueError):
            return 0.0
        return times.user + times.system + times.children_user + times.children_system

    def _sample(self, first: bool = False) -> None:
        started = time.thread_time()
        alive, rss = set(), 0
        for pid in psutil.pids():
            proc = self._ours(pid)
            if proc is None:
                continue
            try:
                with proc.oneshot():
                    title = " ".join(proc.cmdline())[:200]  # Ray retitles its workers
                    if title not in self._names.get(pid, ""):
                        self._names[pid] = f"{self._names.get(pid, '')} | {title}"
                    times = proc.cpu_times()
                    rss += proc.memory_info().rss
            except psutil.Error:
                continue
            cpu = times.user + times.system
            if first:
                self._first[pid] = cpu
            self._last[pid] = cpu
            alive.add(pid)
        self._alive = alive
        self.peak_rss = max(self.peak_rss, rss)
        if first:
            self._first[-1] = self._postmaster()
        self._last[-1] = self._postmaster()
        self._own_cpu += time.thread_time() - started

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self._sample()

    def __enter__(self) -> "ClusterCpu":
        self._sample(first=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        # PostgreSQL: the postmaster with every backend it reaped, plus the live backends, less
        # what the backends that exited meanwhile had used before the block.
        totals: dict[str, float] = {"postgres": self._last[-1] - self._first[-1], "driver": -self._own_cpu}
        for pid, cpu in self._last.items():
            kind = self._kind(pid)
            if pid < 0 or pid == self.postmaster_pid:
                continue
            if kind == "postgres":
                change = cpu - self._first.get(pid, 0.0) if pid in self._alive else -self._first.get(pid, 0.0)
            else:
                change = cpu - self._first.get(pid, 0.0)
            totals[kind] = totals.get(kind, 0.0) + change
        self.by_kind = {kind: cpu for kind, cpu in sorted(totals.items(), key=lambda item: -item[1]) if cpu > 0.005}

    @property
    def total(self) -> float:
        return sum(self.by_kind.values())


class Timed:
    """Wraps a stage: adds the wall-clock start/end of each batch as columns (for steady-state
    throughput measured where the work happens)."""

    def __init__(self, stage_cls: type, **kwargs: Any) -> None:
        self.stage = stage_cls(**kwargs)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.time()
        n = len(self.stage(batch)["id"])
        return {"t0": np.full(n, start), "t1": np.full(n, time.time())}


def steady_rate(rows: int, t0: np.ndarray, t1: np.ndarray) -> float:
    return rows / max(float(t1.max() - t0.min()), 1e-9)


def baseline(config: EnrichConfig, ids: list[str], selection: Any) -> dict[str, Any]:
    """The same stage objects in one process, batch by batch."""
    figures: dict[str, Any] = {}
    with MemorySampler(include_ray=False) as memory:
        t = time.perf_counter()
        loaded = [load_batch({"id": np.array(ids[i:i + config.read_chunk], dtype=object)}, config, selection)
                  for i in range(0, len(ids), config.read_chunk)]
        merged = {key: np.concatenate([b[key] for b in loaded]) for key in loaded[0]}
        figures["load"] = len(ids) / (time.perf_counter() - t)
        prepare = PrepareStage(config)
        t = time.perf_counter()
        prepared = [prepare({k: v[i:i + config.batch_size] for k, v in merged.items()})
                    for i in range(0, len(ids), config.batch_size)]
        figures["prepare"] = len(ids) / (time.perf_counter() - t)
        embed = EmbedStage(config)  # threads = all cores, like the Ray actor on a 2-core node
        t = time.perf_counter()
        embedded = [embed(batch) for batch in prepared]
        figures["embed"] = len(ids) / (time.perf_counter() - t)

        async def write_all() -> None:
            pool = await create_pool(config.database_url, max_size=2)
            try:
                for batch in embedded:
                    await write_batch(pool, batch, config)
            finally:
                await pool.close()

        t = time.perf_counter()
        asyncio.run(write_all())
        figures["write"] = len(ids) / (time.perf_counter() - t)
    figures["end_to_end"] = 1 / sum(1 / figures[k] for k in ("load", "prepare", "embed", "write"))
    figures["peak_rss_mb"] = memory.peak / 2**20
    figures["loaded"] = [{k: v[i:i + config.batch_size] for k, v in merged.items()}
                         for i in range(0, len(ids), config.batch_size)]
    figures["prepared"] = prepared
    return figures


def ray_stage(stage: type, batches: list[dict[str, np.ndarray]], config: EnrichConfig, concurrency: int | tuple[int, int],
              num_cpus: float, batch_size: int, **kwargs: Any) -> tuple[float, float]:
    """(steady-state rows/s, wall rows/s incl. start-up) of one stage through Ray Data."""
    import ray.data

    rows = [{key: values[i] for key, values in batch.items()} for batch in batches for i in range(len(batch["id"]))]
    items = ray.data.from_items(rows, override_num_blocks=len(batches))
    started = time.perf_counter()
    plan = enrich.StagePlan(num_cpus, 0, batch_size, concurrency)
    out = items.map_batches(Timed, fn_constructor_kwargs={"stage_cls": stage, "config": config, **kwargs},
                            batch_format="numpy", **plan.ray_args()).materialize()
    wall = time.perf_counter() - started
    times = out.to_pandas()
    return steady_rate(len(rows), times["t0"].to_numpy(), times["t1"].to_numpy()), len(rows) / wall


def end_to_end(config: EnrichConfig, database_url: str, postmaster: int) -> tuple[enrich.EnrichStats, float, int]:
    """The whole pipeline from the database and back; prints its rate and CPU per article by
    stage. Returns (stats, steady rows/s from the first written batch to the last, peak bytes
    resident of the run's processes: driver, Ray workers and daemons, PostgreSQL)."""
    stamps: list[tuple[float, int]] = []
    with ClusterCpu(database_url, postmaster) as cpu:
        stats = enrich.run(config, on_batch=lambda n: stamps.append((time.perf_counter(), n)))
    (first_t, first_n), (last_t, last_n) = stamps[0], stamps[-1]
    steady = (last_n - first_n) / (last_t - first_t) if last_t - first_t > 1.0 else float("nan")
    print(f"end to end: {stats.written} articles in {stats.seconds:.1f} s ({stats.per_second:.1f}/s with start-up, "
          f"{steady:.1f}/s from the first written batch to the last, {len(stamps)} batches); "
          f"peak memory {cpu.peak_rss / 2**20:.0f} MiB")
    written = max(1, stats.written)
    print(f"CPU ms per article: {1000 * cpu.total / written:.1f} in all ({cpu.total:.1f} s; "
          f"{cpu.total / 2 / max(stats.seconds, 1e-9):.0%} of 2 cores during the run); by kind: "
          + ", ".join(f"{kind} {1000 * seconds / written:.1f}" for kind, seconds in cpu.by_kind.items()))
    print(f"load average (1/5/15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    return stats, steady, cpu.peak_rss


@contextmanager
def bench_cluster(prefix: str) -> Iterator[tuple[str, int]]:
    """(database URL, postmaster pid): embedded PostgreSQL, migrated, and a local Ray head without
    dashboard, in a temporary data dir; everything is stopped and removed at the end."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    settings = load_settings(data_dir=data_dir, load_default_sources=False)
    urls = start_services(settings)
    try:
        asyncio.run(migrate(urls.database_url))
        with ray_head(settings, urls.as_env()):
            yield urls.database_url, int((EmbeddedPostgres(data_dir).pgdata / "postmaster.pid").read_text().split()[0])
    finally:
        stop_services(settings)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pipeline-only", action="store_true",
                        help="only the end-to-end run (no baseline, no single stages): quicker when tuning")
    args = parser.parse_args()

    import ray

    with bench_cluster("nrb-") as (database_url, postmaster):
        t = time.perf_counter()
        items = generate_articles(args.articles)
        asyncio.run(store_articles(database_url, items))
        words = np.mean([len(a.content.split()) for _, _, a in items])
        print(f"{len(items)} articles stored ({words:.0f} words on average) in {time.perf_counter() - t:.1f} s")
        resources = ray.cluster_resources()
        print(f"Ray: {resources.get('CPU', 0):.0f} CPUs, {resources.get('GPU', 0):.0f} GPUs; "
              f"batch size {args.batch_size}")

        config = EnrichConfig(database_url=database_url, batch_size=args.batch_size)
        selection = enrich.pending_selection(config)
        ids = [str(i) for i in run_sync(enrich._pending_ids(config.database_url, selection, None))]
        if args.pipeline_only:
            end_to_end(config, database_url, postmaster)
            return 0

        base = baseline(config, ids, selection)
        prepared = base.pop("prepared")
        loaded = base.pop("loaded")
        asyncio.run(_reset(database_url))

        plans = enrich.stage_resources(resources, config)
        prep_rate, prep_wall = ray_stage(PrepareStage, loaded, config,
                                         plans["prepare"].concurrency, plans["prepare"].num_cpus, config.batch_size)
        embed_actors = plans["embed"].concurrency
        with MemorySampler(include_ray=True) as stage_memory:
            embed_rate, embed_wall = ray_stage(EmbedStage, prepared, config, embed_actors, plans["embed"].num_cpus,
                                               config.batch_size, actors_per_node=embed_actors)
        # The machine may be shared: measure the baseline embedding again right after the Ray
        # Data one and compare with the mean of the two runs that bracket it.
        embed_stage = EmbedStage(config)
        t = time.perf_counter()
        for batch in prepared:
            embed_stage(batch)
        base_embed_again = len(ids) / (time.perf_counter() - t)
        base_embed = (base["embed"] + base_embed_again) / 2

        stats, steady, peak_rss = end_to_end(config, database_url, postmaster)

        print()
        print(f"{'stage':<12}{'baseline/s':>12}{'Ray Data/s':>12}{'ratio':>8}{'Ray wall/s':>12}")
        print(f"{'load':<12}{base['load']:>12.1f}{'':>12}{'':>8}{'':>12}")
        print(f"{'prepare':<12}{base['prepare']:>12.1f}{prep_rate:>12.1f}{prep_rate / base['prepare']:>8.2f}"
              f"{prep_wall:>12.1f}")
        print(f"{'embed':<12}{base_embed:>12.1f}{embed_rate:>12.1f}{embed_rate / base_embed:>8.2f}"
              f"{embed_wall:>12.1f}   (baseline runs before/after: {base['embed']:.1f}, {base_embed_again:.1f})")
        print(f"{'write':<12}{base['write']:>12.1f}{'':>12}{'':>8}{'':>12}")
        print(f"{'end to end':<12}{base['end_to_end']:>12.1f}{steady:>12.1f}{steady / base['end_to_end']:>8.2f}"
              f"{stats.per_second:>12.1f}")
        print()
        print(f"end to end through Ray Data: {stats.written} articles in {stats.seconds:.1f} s "
              f"({stats.per_second:.1f}/s with start-up, {steady:.1f}/s steady) on {', '.join(stats.devices)}")
        print(f"peak memory: baseline process {base['peak_rss_mb']:.0f} MiB; Ray Data embed stage (driver + workers) "
              f"{stage_memory.peak / 2**20:.0f} MiB; Ray Data pipeline (driver, Ray, PostgreSQL) {peak_rss / 2**20:.0f} MiB")
        ok_embed = embed_rate >= 0.9 * base_embed
        ok_e2e = stats.per_second >= 70
        print(f"load average during the run (1/5/15 min, {psutil.cpu_count()} cores): "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print(f"targets: embed >= 0.9x baseline: {'yes' if ok_embed else 'NO'}; "
              f">= 70 articles/s end to end: {'yes' if ok_e2e else 'NO'}")
        return 0


async def _reset(database_url: str) -> None:
    pool = await create_pool(database_url)
    try:
        await pool.execute("TRUNCATE article_enrichment")
        await pool.execute("UPDATE articles SET language = NULL")
    finally:
        await pool.close()


if __name__ == "__main__":
    sys.exit(main())
