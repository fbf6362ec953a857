"""Starting, joining and stopping the Ray cluster that runs newsray.

The Serve recipe measured in DESIGN.md ("Serving fast") only works when its variables are in
the environment of `ray start`, so the head is started here, as a subprocess, with them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cluster.settings import Settings

if TYPE_CHECKING:
    import psutil

NAMESPACE = "newsray"
# Ray's session folders hold Unix sockets; a deep temp dir would overflow their 107-byte limit.
MAX_TEMP_DIR = 60


@dataclass(frozen=True)
class RayPorts:
    gcs: int = 6380
    dashboard: int = 8265
    haproxy_stats: int = 8404
    haproxy_metrics: int = 9101


def _haproxy_dir(temp_dir: Path) -> Path:
    return temp_dir / "haproxy"


def ray_environment(temp_dir: Path, ports: RayPorts) -> dict[str, str]:
    """Variables for `ray start` and every process that talks to the cluster."""
    haproxy_dir = _haproxy_dir(temp_dir)
    return {
        "RAY_USAGE_STATS_ENABLED": "0",
        # Keeps every Ray listener on loopback when the node address is 127.0.0.1.
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        # Token auth, with the token in ~/.ray/auth_token: the CLI, `ray job submit` and the
        # dashboard all need it; an explicit mode avoids Ray's start-up guesswork.
        "RAY_AUTH_MODE": "token",
        # HAProxy ingress instead of the Python proxy (see DESIGN.md for the figures).
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_HAPROXY_METRICS_ENABLED": "0",
        # Ray's default of 4 HAProxy threads fights the replicas for 2 cores; one thread cost
        # 0.080 instead of 0.093 ms of CPU per request (tests/benchmarks/README.md).
        "RAY_SERVE_HAPROXY_NBTHREAD": "1",
        "RAY_SERVE_HAPROXY_STATS_PORT": str(ports.haproxy_stats),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(ports.haproxy_metrics),
        # Per-cluster HAProxy files, so two clusters on one machine (tests beside `make run`)
        # never share a config or admin socket.
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(haproxy_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(haproxy_dir / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(haproxy_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(haproxy_dir / "server-state"),
        "RAY_SERVE_HAPROXY_LOG_TARGET": "/dev/null",
    }


def ray_temp_dir(settings: Settings) -> Path:
    candidate = settings.resolved_data_dir / "ray"
    if len(str(candidate)) <= MAX_TEMP_DIR:
        return candidate
    digest = hashlib.sha256(str(candidate).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"newsray-ray-{digest}"


def ensure_auth_token() -> None:
    """Create ~/.ray/auth_token once, so the head starts with token auth on."""
    token = Path.home() / ".ray" / "auth_token"
    if token.exists():
        return
    from ray._private.authentication.authentication_token_setup import generate_and_save_token

    generate_and_save_token()
    token.chmod(0o600)


def _ray_cli() -> str:
    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.exists() else (shutil.which("ray") or "ray")


def head_address(ports: RayPorts) -> str:
    return f"127.0.0.1:{ports.gcs}"


def is_head_running(temp_dir: Path) -> bool:
    return (temp_dir / "session_latest").exists() and _gcs_alive(temp_dir)


def _gcs_alive(temp_dir: Path) -> bool:
    import psutil

    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "gcs_server" and any(str(temp_dir) in part for part in cmdline):
            return True
    return False


def start_head(
    settings: Settings,
    ports: RayPorts,
    env: dict[str, str],
    num_cpus: int | None = None,
    include_dashboard: bool = True,
    num_gpus: int | None = None,
) -> str:
    """Start a local Ray head on loopback (idempotent) and return its address."""
    temp_dir = ray_temp_dir(settings)
    if is_head_running(temp_dir):
        return head_address(ports)
    temp_dir.mkdir(parents=True, exist_ok=True)
    ensure_auth_token()
    command = [
        _ray_cli(), "start", "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={ports.gcs}",
        f"--temp-dir={temp_dir}",
        f"--dashboard-host={settings.dashboard_host}",
        f"--dashboard-port={ports.dashboard}",
        f"--include-dashboard={'true' if include_dashboard else 'false'}",
        "--disable-usage-stats",
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    if num_gpus is not None:  # logical GPUs (tests of GPU placement on a machine without one)
        command.append(f"--num-gpus={num_gpus}")
    full_env = {**os.environ, **ray_environment(temp_dir, ports), **env}
    # Output goes to a file, not a pipe: the daemons `ray start` leaves behind inherit its
    # descriptors, and a pipe would never reach end-of-file.
    log_path = temp_dir / "ray-start.log"
    with open(log_path, "w") as log:
        result = subprocess.run(command, env=full_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=180, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ray: `ray start` failed: {log_path.read_text(errors='replace').strip()[-1500:]}")
    return head_address(ports)


def stop_head(settings: Settings, timeout_s: float = 5.0) -> int:
    """Stop the Ray processes of this data dir's head, and only those: `ray stop` would also
    kill any other cluster on the machine, such as a test run's.

    Ray's agents rename themselves (ray::DashboardAgent, ray::RuntimeEnvAgent): their command
    lines then name nothing of ours, and the rename overwrites part of what /proc shows of
    their environment. So a process is ours when its command line, what is left of its
    environment (`start_head` puts our temp dir in several variables) or one of its open files
    (the session's logs) names our temp dir. Ray's daemons take many seconds over a graceful
    exit and hold nothing durable (PostgreSQL does), so after a short grace period they are
    killed.
    """
    import psutil

    temp_dir = str(ray_temp_dir(settings))
    victims = [proc for proc in psutil.process_iter(attrs=["cmdline"])
               if proc.pid != os.getpid() and _belongs_to_head(proc, temp_dir)]
    terminate(victims, timeout_s)
    return len(victims)


def _belongs_to_head(proc: psutil.Process, temp_dir: str) -> bool:
    import psutil

    if any(temp_dir in part for part in (proc.info.get("cmdline") or [])):
        return True
    try:  # another user's process, or one that just exited: not ours to stop
        if temp_dir.encode() in Path(f"/proc/{proc.pid}/environ").read_bytes():
            return True
        return any(f.path.startswith(temp_dir) for f in proc.open_files())
    except (OSError, psutil.Error):
        return False


def terminate(processes: list[psutil.Process], timeout_s: float) -> None:
    """SIGTERM, a grace period, then SIGKILL for whatever is left; gone processes are fine."""
    import psutil

    for proc in processes:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


def client_environment() -> dict[str, str]:
    """What a driver process needs before it imports ray: without the cluster flag off, Ray
    rewrites 127.0.0.1 to the machine's public address and the driver cannot find the head."""
    return {"RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def connect(address: str, env: dict[str, str] | None = None) -> None:
    """ray.init() against a running cluster, in the newsray namespace.

    `env` becomes the job's runtime_env variables, so every actor and task it starts sees the
    same service URLs as the driver.
    """
    for key, value in client_environment().items():
        os.environ.setdefault(key, value)
    import ray
    from ray._private import ray_constants

    # Read by Ray at import time; a driver that imported ray first still gets loopback.
    ray_constants.ENABLE_RAY_CLUSTER = os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "1"
    if ray.is_initialized():
        return
    runtime_env = {"env_vars": env} if env else None
    ray.init(address=address, namespace=NAMESPACE, runtime_env=runtime_env, log_to_driver=False,
             logging_level="WARNING")
