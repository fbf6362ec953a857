"""`newsray up`, `down` and `status`: bring every part of the app up in order, or report on it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster import components
from cluster.db import create_pool, migrate
from cluster.opml import default_sources
from cluster.ray_cluster import RayPorts, connect, head_address, is_head_running, ray_temp_dir, start_head, stop_head
from cluster.services import EmbeddedPostgres, EmbeddedRedis, ServiceUrls, check_services, start_services, stop_services
from cluster.settings import Settings
from cluster.store import sources as source_store

DEMO_NETWORKS = "127.0.0.0/8"


@dataclass
class UpReport:
    urls: ServiceUrls
    migrations_applied: list[int]
    default_sources_added: int
    ray_address: str
    reader_url: str
    dashboard_url: str | None
    demo_feeds: list[str] = field(default_factory=list)


def cluster_env(settings: Settings, urls: ServiceUrls, extra: dict[str, str] | None = None) -> dict[str, str]:
    """What every Ray worker of the app gets: the same settings as this process."""
    env = {key: value for key, value in os.environ.items() if key.startswith("NEWSRAY_")}
    env.update(urls.as_env())
    env["NEWSRAY_DATA_DIR"] = str(settings.resolved_data_dir)
    env.update(extra or {})
    return env


def ray_ports(settings: Settings) -> RayPorts:
    return RayPorts(gcs=settings.ray_port, dashboard=settings.dashboard_port,
                    haproxy_stats=settings.haproxy_stats_port)


async def prepare_database(database_url: str, load_defaults: bool, extra_sources: list[source_store.NewSource]) -> tuple[list[int], int]:
    applied = await migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        added = 0
        # Defaults only on a first start: an operator who deleted some must not see them return.
        if load_defaults and await source_store.count_sources(pool) == 0:
            added = await source_store.add_sources(pool, default_sources())
        if extra_sources:
            await source_store.add_sources(pool, extra_sources, interval_s=300)
    finally:
        await pool.close()
    return applied, added


def up(settings: Settings, *, demo: bool = False, log: Any = print) -> UpReport:
    data_dir = settings.resolved_data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    settings.secret()  # generated once in development; production refused a bad one already
    log("starting services (PostgreSQL, Redis)…")
    urls = start_services(settings)
    extra_env: dict[str, str] = {}
    demo_sources: list[source_store.NewSource] = []
    if demo:
        base = start_demo_server(data_dir, settings.demo_port)
        demo_sources = demo_feed_sources(base)
        # The sample server is on loopback, which the crawler refuses unless told otherwise.
        extra_env["NEWSRAY_CRAWL_ALLOWED_NETWORKS"] = ",".join(
            filter(None, [settings.crawl_allowed_networks, DEMO_NETWORKS]))
    log("applying migrations…")
    applied, added = asyncio.run(prepare_database(urls.database_url, settings.load_default_sources and not demo,
                                                  demo_sources))
    env = cluster_env(settings, urls, extra_env)
    if settings.ray_address:
        address = settings.ray_address
        dashboard_url = None
    else:
        log("starting Ray…")
        address = start_head(settings, ray_ports(settings), env)
        dashboard_url = f"http://{settings.dashboard_host}:{settings.dashboard_port}"
    connect(address, env=env)
    log("deploying the Serve app…")
    deploy = components.load(components.SERVE_DEPLOY)
    reader_url = deploy(http_host=settings.http_host, http_port=settings.http_port, env=env)
    log("starting the crawl scheduler…")
    import ray

    scheduler = components.load(components.SCHEDULER_FACTORY)()
    ray.get(scheduler.start.remote())
    return UpReport(urls, applied, added, address, reader_url, dashboard_url,
                    [s.url for s in demo_sources])


def down(settings: Settings, log: Any = print) -> None:
    stop_demo_server(settings.resolved_data_dir)
    if settings.ray_address:
        # Not our cluster: remove only what `up` put on it.
        import ray
        from ray import serve

        connect(settings.ray_address)
        serve.delete(components.SERVE_APP_NAME)
        try:
            ray.kill(ray.get_actor(components.SCHEDULER_NAME, namespace="newsray"))
        except ValueError:
            pass
        ray.shutdown()
        log("removed the Serve app and the scheduler from the external Ray cluster")
    else:
        count = stop_head(settings)
        log(f"stopped Ray ({count} processes)" if count else "Ray was not running")
    stopped = stop_services(settings)
    log(f"stopped {', '.join(stopped)}" if stopped else "no embedded service was running")


def status(settings: Settings) -> dict[str, dict[str, Any]]:
    """Each part with ok/detail; never starts anything."""
    data_dir = settings.resolved_data_dir
    report: dict[str, dict[str, Any]] = {}
    pg_url = settings.database_url or EmbeddedPostgres(data_dir).url
    redis_url = settings.redis_url or EmbeddedRedis(data_dir).url
    pg_up = settings.database_url is not None or EmbeddedPostgres(data_dir).is_running()
    redis_up = settings.redis_url is not None or EmbeddedRedis(data_dir).is_running()
    try:
        if not (pg_up and redis_up):
            raise RuntimeError("embedded service not running")
        asyncio.run(check_services(pg_url, redis_url, timeout_s=3))
        report["postgres"] = {"ok": True, "detail": "embedded" if settings.database_url is None else "external"}
        report["redis"] = {"ok": True, "detail": "embedded" if settings.redis_url is None else "external"}
    except Exception as exc:  # noqa: BLE001 - status reports, it does not fail
        report["postgres"] = {"ok": pg_up, "detail": str(exc) if not pg_up else "running"}
        report["redis"] = {"ok": redis_up, "detail": str(exc) if not redis_up else "running"}
    ray_up = bool(settings.ray_address) or is_head_running(ray_temp_dir(settings))
    report["ray"] = {"ok": ray_up, "detail": settings.ray_address or ("local head" if ray_up else "not running")}
    report["api"] = _http_status(f"http://{settings.http_host}:{settings.http_port}/health")
    report["dashboard"] = _http_status(f"http://{settings.dashboard_host}:{settings.dashboard_port}/", ok_codes=(200, 401))
    demo_pid = _demo_pid(data_dir)
    report["demo_feeds"] = {"ok": demo_pid is not None, "detail": f"pid {demo_pid}" if demo_pid else "not running"}
    if ray_up:
        report["scheduler"] = _scheduler_status(settings)
    return report


def _http_status(url: str, ok_codes: tuple[int, ...] = (200,)) -> dict[str, Any]:
    import httpx

    try:
        response = httpx.get(url, timeout=3, trust_env=False)
        return {"ok": response.status_code in ok_codes, "detail": f"{url} → {response.status_code}"}
    except httpx.HTTPError as exc:
        return {"ok": False, "detail": f"{url}: {exc.__class__.__name__}"}


def _scheduler_status(settings: Settings) -> dict[str, Any]:
    import ray

    try:
        connect(settings.ray_address or head_address(ray_ports(settings)))
        scheduler = ray.get_actor(components.SCHEDULER_NAME, namespace="newsray")
        info = ray.get(scheduler.info.remote(), timeout=10)
        return {"ok": bool(info["loop_running"]), "detail": f"{info['crawlers']} crawlers, tick {info['tick_s']} s"}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "detail": f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}"}


# ------------------------------------------------------------------ demo feed server


def _demo_pid_file(data_dir: Path) -> Path:
    return data_dir / "samplefeeds.pid"


def _demo_pid(data_dir: Path) -> int | None:
    try:
        pid = int(_demo_pid_file(data_dir).read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def start_demo_server(data_dir: Path, port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    if _demo_pid(data_dir) is None:
        log_file = open(data_dir / "samplefeeds.log", "ab")  # noqa: SIM115 - handed to the daemon
        process = subprocess.Popen(
            [sys.executable, "-m", "cluster.samplefeeds", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        _demo_pid_file(data_dir).write_text(f"{process.pid}\n")
        _wait_for_http(f"{base}/feeds/index.opml", 20)
    return base


def _wait_for_http(url: str, timeout_s: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"demo: the sample feed server did not answer at {url}")


def demo_feed_sources(base: str) -> list[source_store.NewSource]:
    from cluster.opml import parse_opml
    from cluster.samplefeeds import FEEDS_DIR

    text = (FEEDS_DIR / "index.opml").read_text().replace("{base}", base)
    return parse_opml(text).sources


def stop_demo_server(data_dir: Path) -> None:
    pid = _demo_pid(data_dir)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
    _demo_pid_file(data_dir).unlink(missing_ok=True)
