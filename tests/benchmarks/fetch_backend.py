"""Benchmark: CPU per fetch with the crawler's asyncio network backend vs httpcore's anyio one.

    .venv/bin/python tests/benchmarks/fetch_backend.py [--feeds 3000 --rounds 4 --concurrency 64]

The crawl benchmark's feed farm (tests/benchmarks/crawl_farm.py, its own process, gzip-encoded
RSS/Atom on 127.0.1.x) serves the healthy feeds; this process fetches all of them with
actors.fetch.fetch() through the guarded client, once per round with each backend in turn
(alternating, so drifts of the machine hit both), and prints the CPU time of this process per
fetch: the baseline is httpcore's AnyIOBackend under the same SSRF guard, the candidate
actors.asyncio_backend.AsyncioBackend (what the crawler uses).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import httpcore  # noqa: E402

import crawl_farm  # noqa: E402 - a sibling script module
from actors import fetch as fetch_module  # noqa: E402
from actors.asyncio_backend import AsyncioBackend  # noqa: E402


async def fetch_all(urls: list[str], concurrency: int, backend: httpcore.AsyncNetworkBackend) -> float:
    """CPU seconds of this process per fetch, for every URL fetched once."""
    policy = fetch_module.FetchPolicy(timeout_s=10.0, allowed_networks=("127.0.0.0/8",), max_retries=0)
    transport = fetch_module.make_transport(policy)
    # The crawler's transport with only the network backend swapped (the farm's hosts are IP
    # literals: the address guard around it does no DNS and costs both sides the same).
    transport._pool._settings["network_backend"] = backend  # type: ignore[attr-defined]
    client = fetch_module.make_client(policy, transport=transport)
    queue = list(reversed(urls))

    async def worker() -> None:
        while queue:
            result = await fetch_module.fetch(client, queue.pop(), policy)
            assert result.status == 200 and result.body, result.url

    started = time.process_time()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    cpu = time.process_time() - started
    await client.aclose()
    return cpu / len(urls)


async def run(spec: crawl_farm.FarmSpec, port: int, rounds: int, concurrency: int) -> dict[str, list[float]]:
    faults = spec.faults()
    urls = [spec.url(n, port) for n in range(spec.feeds) if n not in faults]
    results: dict[str, list[float]] = {"anyio (baseline)": [], "asyncio": []}
    for _ in range(rounds):
        results["anyio (baseline)"].append(await fetch_all(urls, concurrency, httpcore.AnyIOBackend()))
        results["asyncio"].append(await fetch_all(urls, concurrency, AsyncioBackend()))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=3000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    if not (100 <= args.feeds <= 20_000 and 1 <= args.rounds <= 20 and 1 <= args.concurrency <= 256):
        raise SystemExit("fetch-bench: --feeds 100..20000, --rounds 1..20, --concurrency 1..256")
    spec = crawl_farm.FarmSpec(feeds=args.feeds, items=20, hosts=args.hosts)
    scratch = Path(tempfile.mkdtemp(prefix="nrfb-", dir="/tmp"))
    try:
        with crawl_farm.farm_process(spec, scratch / "farm.log") as port:
            import uvloop  # the loop Ray runs async actors on

            results = uvloop.run(run(spec, port, args.rounds, args.concurrency))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    baseline = statistics.median(results["anyio (baseline)"])
    fetches = args.feeds - len(spec.faults())
    print(f"{fetches:,} fetches per round, {args.rounds} rounds each, concurrency {args.concurrency}, uvloop")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:18} median {median * 1e3:.3f} ms CPU/fetch  ({', '.join(f'{v * 1e3:.3f}' for v in values)})"
              f"  ratio to baseline {median / baseline:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
