"""Benchmark: what authentication costs. GET /api/v1/articles through Ray Serve, anonymous and
with a Bearer access token, in one run, at 16 concurrent clients; plus login latency.

    .venv/bin/python tests/benchmarks/auth_overhead.py [--duration 10] [--rounds 3] [--json out.json]

Set-up is tests/benchmarks/api_articles.py's (its helpers are reused): embedded PostgreSQL and
Redis in a temporary data dir, 50 sources x 100 articles, a local Ray head with the HAProxy
recipe and the Serve app as `newsray up` deploys it (2 replicas). The authenticated run goes
through everything a real one does: the auth middleware verifies the JWT (cached after the
first time), counts the request against the user's API limit (synced with Redis every 25
requests) and checks early revocation. The per-user limit is raised for the run
(NEWSRAY_API_RATE_LIMIT) so that it counts without refusing: 16 connections of one user are
far beyond a human's rate.

Login latency: sequential POST /api/v1/auth/login through Serve (the argon2id verification
dominates), and the bare argon2id verification in this process, with the parameters in force.

Load generator: wrk (apt-get install -y wrk); the two variants take turns, medians reported.
Target (issue 5): authenticated requests/s >= 0.9 x anonymous at c=16, no errors.
Exit status 0 when met, 1 when not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")

from tests.benchmarks.api_articles import (  # noqa: E402 - after the path set-up above
    ENDPOINT, WRK_SCRIPT, CpuMeter, check_endpoint, log, postmaster_pid, prepare_database, serve_server,
    wait_for_quiet,
)
from tests.benchmarks.bench_support import local_services  # noqa: E402

CONCURRENCY = 16
TARGET_RATIO = 0.9
# The login limit allows 10 attempts per account in 10 minutes.
LOGINS = 10
PASSWORD = "benchmark passphrase 2025"
# Counting stays on, refusing does not: 16 busy connections of one user for the whole run.
API_RATE_LIMIT = "1000000000"


def run_wrk(url: str, duration_s: float, script: Path, headers: dict[str, str]) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{CONCURRENCY}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
               "-s", str(script)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    result = subprocess.run([*command, url + ENDPOINT], capture_output=True, text=True, timeout=duration_s + 60,
                            check=False)
    line = next((out for out in result.stdout.splitlines() if out.startswith("RESULT ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"bench: wrk failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    raw = json.loads(line.removeprefix("RESULT "))
    return {
        "requests": raw["requests"], "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "errors": raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"],
        "p50_ms": raw["p50_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
    }


def sign_up(url: str) -> tuple[str, list[float]]:
    """Register one user through Serve, then time sequential logins; return a token and the
    latencies in ms."""
    import httpx

    email = "bench@example.org"
    with httpx.Client(base_url=url, timeout=30, trust_env=False) as http:
        created = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        created.raise_for_status()
        latencies = []
        token = created.json()["access_token"]
        for _ in range(LOGINS):
            started = time.perf_counter()
            response = http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            latencies.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            token = response.json()["access_token"]
        check = http.get(ENDPOINT, headers={"Authorization": f"Bearer {token}"})
        if check.status_code != 200 or len(check.json()["items"]) != 20:
            raise RuntimeError(f"bench: authenticated request failed: {check.status_code} {check.text[:300]}")
    return token, latencies


def local_argon2_ms(rounds: int = 10) -> float:
    from deployments.auth.passwords import hash_password_sync, verify_password_sync

    stored = hash_password_sync(PASSWORD)
    started = time.perf_counter()
    for _ in range(rounds):
        assert verify_password_sync(stored, PASSWORD)
    return (time.perf_counter() - started) * 1000 / rounds


def verify_cost_us(rounds: int = 20000) -> dict[str, float]:
    """Microseconds per access-token verification in this process: the first sight of a token
    (signature, claims) and every later one (the verified-token cache)."""
    import uuid

    from deployments.auth.keys import derive
    from deployments.auth.tokens import AccessTokens

    tokens = AccessTokens(derive("bench" * 10, "jwt-access"), 900)
    fresh = [tokens.issue(uuid.uuid4(), "reader", uuid.uuid4()) for _ in range(2000)]
    started = time.perf_counter()
    for token in fresh:
        tokens.verify(token)
    first = (time.perf_counter() - started) * 1e6 / len(fresh)
    started = time.perf_counter()
    for n in range(rounds):
        tokens.verify(fresh[n % len(fresh)])
    cached = (time.perf_counter() - started) * 1e6 / rounds
    return {"first_verify_us": round(first, 1), "cached_verify_us": round(cached, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per variant; medians reported")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="wait up to this long for other work on the machine to calm down")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("bench: wrk is not installed (apt-get install -y wrk)")
    if not 1 <= args.duration <= 600 or not 1 <= args.rounds <= 20:
        raise SystemExit("bench: --duration must be 1-600 seconds and --rounds 1-20")

    from deployments.auth.passwords import parameters

    runs: dict[str, list[dict[str, float]]] = {"anonymous": [], "authenticated": []}
    with local_services("nra-", log) as (data_dir, settings, urls):
        env = {**urls.as_env(), "NEWSRAY_DATA_DIR": str(data_dir), "NEWSRAY_LOAD_DEFAULT_SOURCES": "false",
               "NEWSRAY_API_RATE_LIMIT": API_RATE_LIMIT}
        log(f"seeded {asyncio.run(prepare_database(urls.database_url))} articles")
        script = data_dir / "report.lua"
        script.write_text(WRK_SCRIPT)
        meter = CpuMeter(data_dir, postmaster_pid(data_dir))
        with serve_server(settings, env, False, {}, None) as url:
            check_endpoint(url)
            log(f"Serve ready at {url}")
            token, logins = sign_up(url)
            argon2_ms = local_argon2_ms()
            log(f"login through Serve: p50 {statistics.median(logins):.0f} ms over {len(logins)}; "
                f"argon2id verify here: {argon2_ms:.0f} ms")
            variants = {"anonymous": {}, "authenticated": {"Authorization": f"Bearer {token}"}}
            for headers in variants.values():  # warm-up: pools full, token verified once per replica
                run_wrk(url, 3, script, headers)
            wait_for_quiet(args.quiet_wait)
            for round_number in range(args.rounds):
                order = list(variants) if round_number % 2 == 0 else list(reversed(variants))
                for name in order:
                    cpu: dict[str, float] = {}
                    with meter.measure(cpu):
                        result = run_wrk(url, args.duration, script, variants[name])
                    requests = max(1, int(result["requests"]))
                    # The replicas' own CPU per request: far steadier than req/s on a shared machine.
                    result["replica_cpu_ms"] = cpu.get("ServeReplica", 0.0) * 1000 / requests
                    runs[name].append(result)
                    log(f"round {round_number + 1}/{args.rounds} {name:13s} c={CONCURRENCY} {result['rps']:8.1f} req/s "
                        f"p50 {result['p50_ms']:6.2f} ms p99 {result['p99_ms']:7.2f} ms errors {result['errors']} "
                        f"replica CPU {result['replica_cpu_ms']:.3f} ms/req")
    summary = {name: {"rps": round(statistics.median(r["rps"] for r in results), 1),
                      "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 2),
                      "p99_ms": round(statistics.median(r["p99_ms"] for r in results), 2),
                      "replica_cpu_ms": round(statistics.median(r["replica_cpu_ms"] for r in results), 3),
                      "errors": int(sum(r["errors"] for r in results))}
               for name, results in runs.items()}
    ratio = summary["authenticated"]["rps"] / summary["anonymous"]["rps"] if summary["anonymous"]["rps"] else 0.0
    met = ratio >= TARGET_RATIO and all(s["errors"] == 0 for s in summary.values())
    login = {"through_serve_p50_ms": round(statistics.median(logins), 1),
             "through_serve_max_ms": round(max(logins), 1), "samples": len(logins),
             "argon2id_verify_local_ms": round(argon2_ms, 1), "parameters": parameters()}
    tokens = verify_cost_us()
    print("| variant | c | req/s | p50 ms | p99 ms | errors | replica CPU ms/req |\n|---|---|---|---|---|---|---|")
    for name, s in summary.items():
        print(f"| {name} | {CONCURRENCY} | {s['rps']:,.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.1f} | {s['errors']} "
              f"| {s['replica_cpu_ms']:.3f} |")
    print(f"\nauthenticated/anonymous: {ratio:.3f} (target >= {TARGET_RATIO}) -> {'met' if met else 'NOT met'}")
    print(f"login: {json.dumps(login)}")
    print(f"access-token verification in-process: {json.dumps(tokens)}")
    if args.json:
        args.json.write_text(json.dumps({"concurrency": CONCURRENCY, "duration_s": args.duration, "rounds": args.rounds,
                                         "cpus": os.cpu_count(), "summary": summary, "runs": runs, "ratio": ratio,
                                         "target_met": met, "login": login,
                                         "token_verification": tokens}, indent=2) + "\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
