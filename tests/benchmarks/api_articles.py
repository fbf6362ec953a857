"""Benchmark: GET /api/v1/articles through Ray Serve vs. the same FastAPI app under plain uvicorn.

    .venv/bin/python tests/benchmarks/api_articles.py [--duration 10] [--rounds 3] [--json out.json]

One run, same machine, same database: embedded PostgreSQL and Redis in a temporary data dir,
50 sources x 100 articles seeded deterministically, then both servers side by side:

  1. `uvicorn deployments.api:create_app --factory`, one worker, access log off;
  2. Ray Serve started the way `newsray up` starts it (cluster.ray_cluster.start_head with the
     HAProxy recipe, then deployments.app.deploy: 2 replicas, max_ongoing_requests=100).

Each is loaded at 1, 16 and 64 concurrent keep-alive connections on 127.0.0.1 for --duration
seconds, --rounds times, the two taking turns (the machine may be shared: interleaving makes
other work hit both alike); the table shows medians. While uvicorn is measured the idle Ray
head costs ~0.1 core; the uvicorn process idles at ~0 while Serve is measured.

Every run also records where the CPU went, in CPU milliseconds per request: the server's own
processes, PostgreSQL, the load generator, and other work on the machine ("others"). These
figures move far less with background noise than requests/s and explain the results.

The load generator is wrk when installed (`apt-get install -y wrk`); otherwise a Python
asyncio client in a separate process, which tops out far below wrk on the same cores and so
under-measures both servers (the ratio is still indicative, the absolute figures are not).

Targets (issue 2): no errors; Serve >= 0.8x uvicorn's requests/s at c=64; Serve's p99 at c=64
no worse than uvicorn's. Everything started here is stopped at the end, also on failure.
Exit status 0 when the targets are met, 1 when not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import bench_support  # noqa: E402 - a sibling script module
from bench_support import free_port, local_services, ray_head, stop_process  # noqa: E402

ENDPOINT = "/api/v1/articles"
CONCURRENCY = (1, 16, 64)
SOURCES = 50
ARTICLES_PER_SOURCE = 100
BASE_TIME = datetime(2025, 1, 1, tzinfo=timezone.utc)
WARMUP_S = 3.0
READY_TIMEOUT_S = 60.0
TARGET_RPS_RATIO = 0.8
DEFAULT_NUM_REPLICAS = 2  # deployments.app's default; not imported so that --help needs no Ray
# Caps the Python fallback generator whatever the duration: every load loop is bounded.
MAX_REQUESTS_PER_RUN = 2_000_000

WRK_SCRIPT = """
done = function(summary, latency, requests)
  io.write(string.format(
    '\\nRESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class RunResult:
    server: str
    concurrency: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    generator: str
    # CPU milliseconds per request by kind of process (see CpuMeter).
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def seed_items() -> list[tuple[int, list[Any]]]:
    """Deterministic articles: the same rows, ids aside, on every run."""
    from cluster.store.articles import ArticleInput

    batches = []
    for s in range(SOURCES):
        language = "tr" if s % 3 == 0 else "en"
        items = [
            ArticleInput(
                dedupe_key=f"bench-{s}-{n}", guid=f"bench-{s}-{n}", title=f"Source {s} reports story number {n}",
                url=f"https://source{s}.example.org/articles/{n}", author=f"Reporter {n % 7}",
                summary=("A short summary of what happened, as feeds usually carry it. " * 4).strip(),
                content=("Full article text paragraph. " * 80).strip(),
                published_at=BASE_TIME + timedelta(minutes=s + SOURCES * n), language=language,
                categories=("world", "business") if n % 2 else ("technology",),
            )
            for n in range(ARTICLES_PER_SOURCE)
        ]
        batches.append((s, items))
    return batches


async def prepare_database(database_url: str) -> int:
    from cluster.db import create_pool, migrate
    from cluster.store.articles import count_articles, upsert_articles
    from cluster.store.sources import NewSource, add_sources, list_sources

    await migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=4)
    try:
        await add_sources(pool, [NewSource(url=f"https://source{s}.example.org/feed.xml", title=f"Source {s}")
                                 for s in range(SOURCES)])
        ids = {source.url: source.id for source in await list_sources(pool)}
        for s, items in seed_items():
            await upsert_articles(pool, ids[f"https://source{s}.example.org/feed.xml"], items)
        return await count_articles(pool)
    finally:
        await pool.close()


# --------------------------------------------------------------------------- servers


def wait_ready(url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with httpx.Client(timeout=5, trust_env=False) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(url + "/health")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.2)
    raise TimeoutError(f"bench: {url} not ready within {timeout_s:.0f} s ({last})")


def check_endpoint(url: str) -> str:
    """One real request first: a benchmark of error pages would be worthless."""
    import httpx

    response = httpx.get(url + ENDPOINT, timeout=10, trust_env=False)
    response.raise_for_status()
    body = response.json()
    if len(body["items"]) != 20 or not body["next_cursor"]:
        raise RuntimeError(f"bench: unexpected answer from {url}{ENDPOINT}: {response.text[:300]}")
    return str(body["items"][0]["id"])


@contextmanager
def uvicorn_server(env: dict[str, str], log_path: Path) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "deployments.api:create_app", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
               "--no-access-log", "--log-level", "warning"]
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, **env}, stdout=log_file,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        yield url
    finally:
        stop_process(process)


@contextmanager
def serve_server(settings: Any, env: dict[str, str], dashboard: bool, head_env: dict[str, str],
                 replicas: int | None) -> Iterator[str]:
    with ray_head(settings, env, head_env=head_env, include_dashboard=dashboard):
        from deployments.app import deploy

        yield deploy(http_host="127.0.0.1", http_port=free_port(), env=env, num_replicas=replicas)


def _environ_has(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def wait_for_quiet(max_wait_s: float, busy_percent: float = 35.0) -> float:
    """The default threshold leaves room for the idle Ray head (~0.1 core with the dashboard)."""
    return bench_support.wait_for_quiet(
        max_wait_s, busy_percent, lambda busy: log(f"machine still {busy:.0f}% busy with other work: figures will be skewed"))


# --------------------------------------------------------------------------- CPU accounting


class CpuMeter:
    """CPU time by kind of process over one run: ours (found by the data dir in their
    environment, PostgreSQL by parentage), the load generator (a waited-for child), and
    everything else on the machine."""

    KINDS = ("ServeReplica", "haproxy", "uvicorn", "postgres")

    def __init__(self, data_dir: Path, postmaster_pid: int | None) -> None:
        self.marker = f"NEWSRAY_DATA_DIR={data_dir}".encode()
        self.postmaster_pid = postmaster_pid
        self._ours: dict[int, str] = {}  # pid -> kind, cached: a process keeps its environment

    def _kind(self, proc: Any) -> str | None:
        if proc.pid in self._ours:
            return self._ours[proc.pid]
        if proc.pid == self.postmaster_pid or proc.info.get("ppid") == self.postmaster_pid:
            kind: str | None = "postgres"
        elif _environ_has(proc.pid, self.marker):
            name = proc.info.get("name") or ""
            cmdline = " ".join(proc.info.get("cmdline") or [])
            kind = next((k for k in self.KINDS if k in name or k in cmdline[:200]), "ray (other)")
        else:
            kind = None
        if kind is not None:
            self._ours[proc.pid] = kind
        return kind

    def snapshot(self) -> tuple[dict[int, tuple[str, float]], float, float]:
        import psutil

        ours: dict[int, tuple[str, float]] = {}
        for proc in psutil.process_iter(attrs=["name", "cmdline", "ppid", "cpu_times"]):
            times = proc.info.get("cpu_times")
            kind = self._kind(proc) if times is not None else None
            if kind is not None:
                ours[proc.pid] = (kind, times.user + times.system)
        machine = psutil.cpu_times()
        busy = machine.user + machine.nice + machine.system + machine.irq + machine.softirq + machine.steal
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ours, busy, children.ru_utime + children.ru_stime

    @contextmanager
    def measure(self, sink: dict[str, float]) -> Iterator[None]:
        """Fill `sink` with CPU seconds by kind (load generator, others included)."""
        before, busy_before, children_before = self.snapshot()
        yield
        after, busy_after, children_after = self.snapshot()
        for pid, (kind, cpu) in after.items():
            sink[kind] = sink.get(kind, 0.0) + cpu - before.get(pid, (kind, 0.0))[1]
        sink["load generator"] = children_after - children_before
        ours = sum(sink.values())
        sink["others"] = max(0.0, (busy_after - busy_before) - ours)


def postmaster_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # an external PostgreSQL: its CPU shows up under "others"


# --------------------------------------------------------------------------- load


def run_wrk(url: str, concurrency: int, duration_s: float, script: Path) -> dict[str, float]:
    threads = min(2, concurrency)
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
               "-s", str(script), url + ENDPOINT]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    line = next((out for out in result.stdout.splitlines() if out.startswith("RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"bench: wrk failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    raw = json.loads(line.removeprefix("RESULT "))
    return {
        "requests": raw["requests"], "duration_s": raw["duration_us"] / 1e6,
        "errors": raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"],
        "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
    }


async def _python_load(host: str, port: int, path: str, concurrency: int, duration_s: float) -> dict[str, float]:
    """Keep-alive HTTP/1.1 GETs on `concurrency` connections until the time or count is up."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n\r\n".encode()
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    deadline = started + duration_s
    per_connection_cap = MAX_REQUESTS_PER_RUN // concurrency

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for _ in range(per_connection_cap):
                if time.perf_counter() >= deadline:
                    break
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - sent)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(fraction: float) -> float:
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] * 1000 if latencies else 0.0

    return {"requests": len(latencies), "duration_s": elapsed, "errors": errors, "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99), "max_ms": latencies[-1] * 1000 if latencies else 0.0}


def run_python_generator(url: str, concurrency: int, duration_s: float) -> dict[str, float]:
    # A separate process, so the generator's own CPU is not charged to this orchestrator.
    command = [sys.executable, __file__, "--load-generator", json.dumps([url, concurrency, duration_s])]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"bench: load generator failed: {result.stderr.strip()[-500:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def load_generator_main(spec: str) -> None:
    from urllib.parse import urlsplit

    url, concurrency, duration_s = json.loads(spec)
    parts = urlsplit(url)
    result = asyncio.run(_python_load(parts.hostname or "127.0.0.1", parts.port or 80, ENDPOINT,
                                      int(concurrency), float(duration_s)))
    print(json.dumps(result))


def run_once(url: str, concurrency: int, duration_s: float, script: Path | None) -> dict[str, float]:
    if script is not None:
        return run_wrk(url, concurrency, duration_s, script)
    return run_python_generator(url, concurrency, duration_s)


def measure(targets: list[tuple[str, str]], duration_s: float, rounds: int, script: Path | None,
            meter: CpuMeter, verbose: bool) -> list[RunResult]:
    """Every (server, concurrency) run `rounds` times, the servers taking turns, so that other
    work on the machine hits both alike instead of whichever ran at the time."""
    generator = "wrk" if script else "python"
    for _, url in targets:
        # At the highest concurrency, so every replica's connection pool is full before the
        # first measured run: a pool that grows mid-run adds connection set-ups to its tail.
        run_once(url, max(CONCURRENCY), WARMUP_S, script)
    runs = []
    for round_number in range(rounds):
        order = targets if round_number % 2 == 0 else list(reversed(targets))
        for concurrency in CONCURRENCY:
            for server, url in order:
                cpu_s: dict[str, float] = {}
                with meter.measure(cpu_s):
                    raw = run_once(url, concurrency, duration_s, script)
                requests = max(1, int(raw["requests"]))
                result = RunResult(
                    server=server, concurrency=concurrency, requests=int(raw["requests"]),
                    duration_s=round(raw["duration_s"], 3), rps=round(raw["requests"] / raw["duration_s"], 1),
                    p50_ms=round(raw["p50_ms"], 2), p99_ms=round(raw["p99_ms"], 2),
                    max_ms=round(raw["max_ms"], 2), errors=int(raw["errors"]), generator=generator,
                    cpu_ms_per_request={kind: round(seconds * 1000 / requests, 3)
                                        for kind, seconds in sorted(cpu_s.items(), key=lambda item: -item[1])},
                )
                log(f"round {round_number + 1}/{rounds} {server:8s} c={concurrency:<3d} {result.rps:8.1f} req/s  "
                    f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  errors {result.errors}")
                if verbose:
                    log("    CPU ms/request: " + ", ".join(f"{kind} {ms:.3f}"
                                                           for kind, ms in result.cpu_ms_per_request.items()))
                runs.append(result)
    return runs


def summarize(runs: list[RunResult]) -> list[RunResult]:
    """The median of each figure over the rounds; requests and errors are totals."""
    groups: dict[tuple[str, int], list[RunResult]] = {}
    for run in runs:
        groups.setdefault((run.server, run.concurrency), []).append(run)
    summary = []
    for (server, concurrency), group in groups.items():
        kinds = {kind for run in group for kind in run.cpu_ms_per_request}
        summary.append(RunResult(
            server=server, concurrency=concurrency, requests=sum(r.requests for r in group),
            duration_s=round(sum(r.duration_s for r in group), 3),
            rps=round(statistics.median(r.rps for r in group), 1),
            p50_ms=round(statistics.median(r.p50_ms for r in group), 2),
            p99_ms=round(statistics.median(r.p99_ms for r in group), 2),
            max_ms=max(r.max_ms for r in group), errors=sum(r.errors for r in group), generator=group[0].generator,
            cpu_ms_per_request={kind: round(statistics.median(r.cpu_ms_per_request.get(kind, 0.0) for r in group), 3)
                                for kind in sorted(kinds)},
        ))
    return summary


# --------------------------------------------------------------------------- report


# Other work using more than this many cores during the runs makes the comparison unfair:
# it takes the spare core that Serve's second replica needs and uvicorn's one worker does not.
QUIET_OTHERS_CORES = 0.15


def others_cores(runs: list[RunResult]) -> float:
    """The median number of cores other work on the machine kept busy during the runs."""
    return round(statistics.median(r.cpu_ms_per_request.get("others", 0.0) * r.rps / 1000 for r in runs), 3)


def verdict(results: list[RunResult], runs: list[RunResult]) -> dict[str, Any]:
    by_key = {(r.server, r.concurrency): r for r in results}
    uvicorn, serve = by_key[("uvicorn", 64)], by_key[("serve", 64)]
    ratio = serve.rps / uvicorn.rps if uvicorn.rps else 0.0
    checks = {
        "no_errors": all(r.errors == 0 for r in results),
        "serve_rps_ratio_c64": round(ratio, 3),
        "serve_rps_at_least_0.8x_c64": ratio >= TARGET_RPS_RATIO,
        "serve_p99_not_worse_c64": serve.p99_ms <= uvicorn.p99_ms,
    }
    checks["all_targets_met"] = bool(checks["no_errors"] and checks["serve_rps_at_least_0.8x_c64"]
                                     and checks["serve_p99_not_worse_c64"])
    checks["others_cores_median"] = others_cores(runs)
    checks["machine_quiet"] = checks["others_cores_median"] <= QUIET_OTHERS_CORES
    return checks


def table(results: list[RunResult], replicas: int) -> str:
    by_key = {(r.server, r.concurrency): r for r in results}
    lines = ["| path | c | req/s | p50 ms | p99 ms | errors | Serve/uvicorn req/s | server CPU ms/req | others CPU ms/req |",
             "|---|---|---|---|---|---|---|---|---|"]
    labels = (("uvicorn", "plain uvicorn, 1 worker"),
              ("serve", f"Ray Serve, HAProxy, {replicas} replica{'s' if replicas > 1 else ''}"))
    for server, label in labels:
        for c in CONCURRENCY:
            r = by_key[(server, c)]
            ratio = ""
            if server == "serve" and by_key[("uvicorn", c)].rps:
                ratio = f"{r.rps / by_key[('uvicorn', c)].rps:.2f}x"
            cpu = r.cpu_ms_per_request
            own = sum(cpu.get(kind, 0.0) for kind in (("uvicorn",) if server == "uvicorn" else
                                                       ("ServeReplica", "haproxy", "ray (other)")))
            lines.append(f"| {label} | {c} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.1f} | {r.errors} | {ratio} "
                         f"| {own:.2f} | {cpu.get('others', 0.0):.2f} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server and concurrency; medians reported")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--no-dashboard", action="store_true", help="start the Ray head without its dashboard")
    parser.add_argument("--replicas", type=int, help=f"Api replicas (default: the deployment's, {DEFAULT_NUM_REPLICAS})")
    parser.add_argument("--ray-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra variable for `ray start` (tuning experiments, e.g. RAY_SERVE_HAPROXY_NBTHREAD=1)")
    parser.add_argument("--serve-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra variable for the Serve replicas only (tuning experiments, e.g. NEWSRAY_DB_POOL_MAX=5)")
    parser.add_argument("--verbose", action="store_true", help="log the CPU breakdown of every run")
    parser.add_argument("--quiet-wait", type=float, default=120.0,
                        help="wait up to this many seconds for other work on the machine to calm down (default 120)")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data dir (for debugging)")
    parser.add_argument("--load-generator", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _stop_on_sigterm() -> None:
    # SIGTERM (a CI timeout) becomes an exception, so the cleanup below still runs.
    def handler(signum: int, frame: object) -> None:
        raise SystemExit(f"bench: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load_generator:
        load_generator_main(args.load_generator)
        return 0
    if not 1 <= args.duration <= 600 or not 1 <= args.rounds <= 20:
        raise SystemExit("bench: --duration must be 1-600 seconds and --rounds 1-20")
    wrk = shutil.which("wrk")
    if args.generator == "wrk" and not wrk:
        raise SystemExit("bench: wrk is not installed (apt-get install -y wrk)")
    use_wrk = bool(wrk) and args.generator != "python"
    if not use_wrk:
        log("wrk not found: using the Python load generator, which under-measures both servers")
    head_env = dict(item.split("=", 1) for item in args.ray_env)
    serve_env = dict(item.split("=", 1) for item in args.serve_env)
    _stop_on_sigterm()
    load_at_start = os.getloadavg()
    log(f"load average at start: {load_at_start[0]:.2f} {load_at_start[1]:.2f} {load_at_start[2]:.2f} "
        f"on {os.cpu_count()} CPUs")

    with local_services("nrb-", log, keep_data=args.keep_data) as (data_dir, settings, urls):
        env = {**urls.as_env(), "NEWSRAY_DATA_DIR": str(data_dir), "NEWSRAY_LOAD_DEFAULT_SOURCES": "false"}
        count = asyncio.run(prepare_database(urls.database_url))
        log(f"seeded {count} articles from {SOURCES} sources")
        script: Path | None = None
        if use_wrk:
            script = data_dir / "report.lua"
            script.write_text(WRK_SCRIPT)
        meter = CpuMeter(data_dir, postmaster_pid(data_dir))

        with uvicorn_server(env, data_dir / "uvicorn.log") as uvicorn_url:
            first_id = check_endpoint(uvicorn_url)
            log(f"uvicorn ready at {uvicorn_url}; starting the Ray head (HAProxy recipe) and deploying the Serve app")
            started = time.monotonic()
            with serve_server(settings, {**env, **serve_env}, not args.no_dashboard, head_env,
                              args.replicas) as serve_url:
                if check_endpoint(serve_url) != first_id:
                    raise RuntimeError("bench: Serve and uvicorn disagree on the newest article")
                log(f"Serve ready at {serve_url} after {time.monotonic() - started:.0f} s")
                busy_before = wait_for_quiet(args.quiet_wait)
                runs = measure([("uvicorn", uvicorn_url), ("serve", serve_url)], args.duration, args.rounds, script,
                               meter, args.verbose)
    results = summarize(runs)
    checks = verdict(results, runs)
    replicas = args.replicas or DEFAULT_NUM_REPLICAS
    print(table(results, replicas))
    print()
    for name, value in checks.items():
        print(f"{name}: {value}")
    if not checks["machine_quiet"]:
        print(f"note: other work kept {checks['others_cores_median']} cores busy during the runs; rerun on a quiet "
              "machine before trusting the comparison")
    if args.json:
        report = {
            "endpoint": ENDPOINT, "articles": SOURCES * ARTICLES_PER_SOURCE, "duration_s": args.duration,
            "rounds": args.rounds, "cpus": os.cpu_count(), "python": platform.python_version(),
            "generator": "wrk" if use_wrk else "python", "dashboard": not args.no_dashboard, "replicas": replicas,
            "ray_env": head_env, "serve_env": serve_env, "load_average_at_start": load_at_start, "cpu_busy_percent_before": busy_before,
            "results": [asdict(r) for r in results], "runs": [asdict(r) for r in runs], "checks": checks,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log(f"results written to {args.json}")
    return 0 if checks["all_targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
