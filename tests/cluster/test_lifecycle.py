"""`newsray up --demo`, `status`, `crawl`, `down`, `up` end to end, as an operator runs them.

Its own data dir and ports, its own embedded services and its own Ray cluster, started by the
real CLI in subprocesses: this is what `make demo` does on a fresh machine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import free_port
from tests.polling import poll

NEWSRAY = str(Path(sys.executable).with_name("newsray"))


class Operator:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.http_port = free_port()
        # Everything NEWSRAY_* of the test session (its service URLs) is dropped: the CLI must
        # start its own embedded services, as on a fresh machine.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSRAY_")}
        self.env.update({
            "NEWSRAY_DATA_DIR": str(data_dir),
            "NEWSRAY_HTTP_PORT": str(self.http_port),
            "NEWSRAY_DASHBOARD_PORT": str(free_port()),
            "NEWSRAY_RAY_PORT": str(free_port()),
            "NEWSRAY_HAPROXY_STATS_PORT": str(free_port()),
            "NEWSRAY_DEMO_PORT": str(free_port()),
            # The sample server is ours: a short politeness pause keeps the full-content pass quick.
            "NEWSRAY_HOST_DELAY_S": "0.02",
        })
        self.base = f"http://127.0.0.1:{self.http_port}"

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([NEWSRAY, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def leftover_processes(self) -> list[str]:
        """Processes started for this data dir still alive: they name it in their environment
        (NEWSRAY_DATA_DIR and Ray's paths) or hold files under it (Ray's renamed agents, whose
        rename overwrites part of what /proc shows of their environment, keep their logs open)."""
        marker = str(self.data_dir)
        found = []
        for proc in psutil.process_iter(attrs=["cmdline"]):
            try:
                ours = (marker.encode() in Path(f"/proc/{proc.pid}/environ").read_bytes()
                        or any(f.path.startswith(marker) for f in proc.open_files()))
                alive = proc.status() != psutil.STATUS_ZOMBIE
            except (OSError, psutil.Error):  # gone meanwhile
                continue
            if ours and alive and proc.pid != os.getpid():
                found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])[:120]}")
        return found

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=10, trust_env=False)

    def all_article_ids(self) -> list[str]:
        ids: list[str] = []
        cursor: str | None = None
        for _ in range(100):  # bounded: 100 pages of 100
            params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
            body = httpx.get(self.base + "/api/v1/articles", params=params, timeout=10, trust_env=False).json()
            ids.extend(item["id"] for item in body["items"])
            cursor = body["next_cursor"]
            if not cursor:
                break
        return ids


@pytest.fixture(scope="module")
def operator() -> Iterator[Operator]:
    data_dir = Path(tempfile.mkdtemp(prefix="nrl-", dir="/tmp"))
    op = Operator(data_dir)
    try:
        yield op
    finally:
        op.run("down", timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)


def article_count_reaches(operator: Operator, count: int, timeout_s: float) -> None:
    """Poll /api/v1/articles until it lists `count` articles (the Api may still be starting)."""
    def enough() -> bool:
        try:
            return len(operator.all_article_ids()) >= count
        except httpx.HTTPError:
            return False

    asyncio.run(poll(enough, f"{count} articles on /api/v1/articles", timeout_s=timeout_s, interval_s=0.5))


def test_demo_up_crawl_down_up_keeps_every_article(operator: Operator) -> None:
    started = operator.run("up", "--demo")
    assert started.returncode == 0, started.stdout + started.stderr
    assert operator.base in started.stdout and "dashboard" in started.stdout

    health = operator.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    # The scheduler crawls the sample feeds by itself: articles appear within 60 s.
    article_count_reaches(operator, 120, timeout_s=60)
    page = operator.get("/")
    assert page.status_code == 200 and "Boğaziçi Postası" in page.text

    status = operator.run("status", timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr

    listed = operator.run("sources", "list")
    assert listed.returncode == 0 and "9 sources" in listed.stdout

    # A forced round waits for the scheduler's own round, so afterwards every feed is in.
    first = operator.run("crawl", "--all")
    assert first.returncode == 0, first.stdout + first.stderr
    ids = operator.all_article_ids()
    assert len(ids) == len(set(ids)) == 137
    for _ in range(2):
        crawled = operator.run("crawl", "--all")
        assert crawled.returncode == 0, crawled.stdout + crawled.stderr
        assert "9 sources, 0 new articles" in crawled.stdout
    assert sorted(operator.all_article_ids()) == sorted(ids)

    stopped = operator.run("down", timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    with pytest.raises(httpx.HTTPError):
        operator.get("/health")
    assert operator.run("status", timeout=120).returncode == 1
    # Nothing `up` started outlives `down`, including Ray's agents that rename themselves.
    assert operator.leftover_processes() == []

    restarted = operator.run("up", "--demo")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert sorted(operator.all_article_ids()) == sorted(ids)
