"""What every benchmark needs around its measurement: free loopback ports, stopping a child
process, PostgreSQL and Redis in a data dir of its own, and a local Ray head of its own (never
`ray stop`, which would kill other clusters)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout_s`."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


@contextmanager
def local_services(prefix: str, log: Callable[[str], None],
                   keep_data: bool = False) -> Iterator[tuple[Path, Any, Any]]:
    """Embedded PostgreSQL and Redis under a fresh data dir in /tmp (short: Unix sockets live under
    it); yields (data dir, settings, service URLs), and stops them and removes the dir at the end.

    The data dir is also this process's NEWSRAY_DATA_DIR, inherited by whatever it starts
    (services, Ray): how a benchmark finds its own processes again, to meter them and to clean up."""
    from cluster.ray_cluster import client_environment
    from cluster.services import start_services, stop_services
    from cluster.settings import load_settings

    for key, value in client_environment().items():
        os.environ.setdefault(key, value)
    data_dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.environ["NEWSRAY_DATA_DIR"] = str(data_dir)
    settings = load_settings(data_dir=data_dir, load_default_sources=False)
    try:
        log(f"starting PostgreSQL and Redis under {data_dir}")
        yield data_dir, settings, start_services(settings)
    finally:
        stop_services(settings)
        if not keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)


@contextmanager
def ray_head(settings: Any, env: Mapping[str, str], *, head_env: Mapping[str, str] | None = None,
             num_cpus: int | None = None, include_dashboard: bool = False) -> Iterator[str]:
    """A Ray head on loopback for this benchmark's data dir, this process connected to it; yields
    its address. `env` reaches the head and the driver, `head_env` only the head (Ray flags)."""
    import ray

    from cluster.ray_cluster import RayPorts, connect, start_head, stop_head

    ports = RayPorts(gcs=free_port(), dashboard=free_port(), haproxy_stats=free_port(), haproxy_metrics=free_port())
    try:
        address = start_head(settings, ports, {**env, **(head_env or {})}, num_cpus=num_cpus,
                             include_dashboard=include_dashboard)
        connect(address, env=dict(env))
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        # Also stops Ray's self-renamed agents (matched by environment, see stop_head).
        stop_head(settings)


def wait_for_quiet(max_wait_s: float, busy_percent: float, on_busy: Callable[[float], None]) -> float:
    """Wait (bounded) until other work on the machine calms down; return the last CPU %.
    `on_busy` is told the figure when the machine is still busy at the deadline."""
    import psutil

    deadline = time.monotonic() + max_wait_s
    busy = psutil.cpu_percent(interval=2)
    while busy > busy_percent and time.monotonic() < deadline:
        busy = psutil.cpu_percent(interval=2)
    if busy > busy_percent:
        on_busy(busy)
    return busy
