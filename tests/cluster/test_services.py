"""cluster.services: masked URLs, service checks, embedded PostgreSQL and Redis that keep their data."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from cluster.services import (
    MAX_SOCKET_PATH,
    EmbeddedPostgres,
    EmbeddedRedis,
    ServiceError,
    _process_alive,
    _socket_dir,
    check_services,
    mask_url,
)

PASSWORD = "hunter2-Very-Secret"


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it), never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def own_data_dir() -> Iterator[Path]:
    # Short, under /tmp: the services' Unix sockets live below it.
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="nrs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- mask_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://news:{PASSWORD}@127.0.0.1:5432/news", "postgresql://news:***@127.0.0.1:5432/news"),
        (f"postgres://news:{PASSWORD}@db.internal/news?sslmode=require", "postgres://news:***@db.internal/news?sslmode=require"),
        (f"redis://:{PASSWORD}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        (f"rediss://default:{PASSWORD}@cache:6380", "rediss://default:***@cache:6380"),
        ("postgresql://news:p@ss@127.0.0.1/news", "postgresql://news:***@127.0.0.1/news"),  # '@' in the password
        (f"postgresql://news@127.0.0.1/news?password={PASSWORD}&sslmode=disable",
         "postgresql://news@127.0.0.1/news?password=***&sslmode=disable"),
        (f"postgresql://news:{PASSWORD}@[::1]:5432/news", "postgresql://news:***@[::1]:5432/news"),
        # Nothing secret: unchanged, byte for byte.
        ("postgresql://postgres@/newsray?host=%2Ftmp%2Fnrt-x%2Frun", "postgresql://postgres@/newsray?host=%2Ftmp%2Fnrt-x%2Frun"),
        ("unix:///tmp/nrt-x/run/redis.sock", "unix:///tmp/nrt-x/run/redis.sock"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    masked = mask_url(url)
    assert masked == expected
    assert PASSWORD not in masked
    assert mask_url(masked) == masked


# --------------------------------------------------------------------------- check_services


async def test_unreachable_postgres_is_named_with_masked_password(refusing_port: int, redis_url: str) -> None:
    url = f"postgresql://news:{PASSWORD}@127.0.0.1:{refusing_port}/news"
    with pytest.raises(ServiceError) as info:
        await check_services(url, redis_url, timeout_s=5)
    message = str(info.value)
    assert message.startswith("services: PostgreSQL")
    assert f"postgresql://news:***@127.0.0.1:{refusing_port}/news" in message
    assert "unreachable" in message
    assert PASSWORD not in message


async def test_unreachable_postgres_socket_is_named(own_data_dir: Path, redis_url: str) -> None:
    url = f"postgresql://postgres@/newsray?host={own_data_dir}/nothing-here"
    with pytest.raises(ServiceError, match="PostgreSQL") as info:
        await check_services(url, redis_url, timeout_s=5)
    assert url in str(info.value)


async def test_unreachable_redis_is_named_with_masked_password(refusing_port: int, database_url: str) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{refusing_port}/0"
    with pytest.raises(ServiceError) as info:
        await check_services(database_url, url, timeout_s=5)
    message = str(info.value)
    assert message.startswith("services: Redis")
    assert f"redis://:***@127.0.0.1:{refusing_port}/0" in message
    assert PASSWORD not in message


async def test_unreachable_redis_socket_is_named(own_data_dir: Path, database_url: str) -> None:
    url = f"unix://{own_data_dir}/missing.sock"
    with pytest.raises(ServiceError, match="Redis") as info:
        await check_services(database_url, url, timeout_s=5)
    assert url in str(info.value)


async def test_check_passes_on_the_session_services(database_url: str, redis_url: str) -> None:
    await check_services(database_url, redis_url)
    conn = await asyncpg.connect(database_url)
    try:  # the check's premise: pgvector is available on the embedded server
        assert await conn.fetchval("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'") == 1
    finally:
        await conn.close()


# --------------------------------------------------------------------------- socket directory


def test_socket_dir_short_path_stays_in_data_dir(own_data_dir: Path) -> None:
    assert _socket_dir(own_data_dir, "pg") == own_data_dir / "run"
    assert EmbeddedPostgres(own_data_dir).socket_dir == own_data_dir / "run"
    assert EmbeddedRedis(own_data_dir).socket_path == own_data_dir / "run" / "redis.sock"


def test_socket_dir_long_path_falls_back_to_short_dir(own_data_dir: Path) -> None:
    deep = own_data_dir / ("d" * 60) / ("e" * 60)
    assert len(str(deep)) > 100
    chosen = _socket_dir(deep, "pg")
    assert chosen != deep / "run"
    assert chosen.is_relative_to(tempfile.gettempdir())
    assert len(str(chosen / ".s.PGSQL.5432")) <= MAX_SOCKET_PATH
    assert len(str(EmbeddedRedis(deep).socket_path)) <= MAX_SOCKET_PATH
    # Stable for one data dir (every process finds the same socket), distinct for another.
    assert _socket_dir(deep, "pg") == chosen
    assert _socket_dir(Path(str(deep) + "2"), "pg") != chosen


# --------------------------------------------------------------------------- embedded PostgreSQL


async def test_embedded_postgres_keeps_data_across_restart(own_data_dir: Path) -> None:
    server = EmbeddedPostgres(own_data_dir)
    assert server.is_running() is False
    try:
        url = server.start()
        assert server.is_running() is True
        assert url == server.url
        pid_file = server.pgdata / "postmaster.pid"
        first_pid = pid_file.read_text().split()[0]
        assert server.start() == url  # idempotent: the running server is reused
        assert pid_file.read_text().split()[0] == first_pid

        conn = await asyncpg.connect(url)
        try:
            # Sockets only: nothing embedded listens on the network.
            assert await conn.fetchval("SHOW listen_addresses") == ""
            assert await conn.fetchval("SELECT current_database()") == "newsray"
            await conn.execute("CREATE TABLE survivor (id int PRIMARY KEY, word text)")
            await conn.execute("INSERT INTO survivor VALUES (1, 'güneş')")
        finally:
            await conn.close()

        server.stop()
        assert server.is_running() is False
        server.stop()  # stopping a stopped server is a no-op

        assert server.start() == url
        assert server.is_running() is True
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT word FROM survivor WHERE id = 1") == "güneş"
        finally:
            await conn.close()
    finally:
        server.stop()
    assert server.is_running() is False


# --------------------------------------------------------------------------- embedded Redis


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, decode_responses=True)


def test_embedded_redis_keeps_data_across_restart(own_data_dir: Path) -> None:
    server = EmbeddedRedis(own_data_dir)
    assert server.is_running() is False
    try:
        url = server.start()
        assert url == f"unix://{server.socket_path}"
        assert server.is_running() is True
        pid = server.pid_file.read_text().strip()
        assert server.start() == url  # idempotent
        assert server.pid_file.read_text().strip() == pid

        client = _client(url)
        try:
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("port") == {"port": "0"}  # no TCP listener
            client.set("newsray:test:survivor", "çalışkan")
            client.hset("newsray:test:hash", mapping={"a": "1", "b": "2"})
        finally:
            client.close()

        server.stop()
        assert server.is_running() is False
        server.stop()  # no-op

        assert server.start() == url
        assert server.is_running() is True
        assert server.pid_file.read_text().strip() != pid
        client = _client(url)
        try:
            assert client.get("newsray:test:survivor") == "çalışkan"
            assert client.hgetall("newsray:test:hash") == {"a": "1", "b": "2"}
        finally:
            client.close()
    finally:
        server.stop()
    assert server.is_running() is False


def test_embedded_redis_in_a_deep_data_dir(own_data_dir: Path) -> None:
    deep = own_data_dir / ("r" * 60) / ("s" * 60)
    server = EmbeddedRedis(deep)
    socket_dir = server.socket_path.parent
    try:
        url = server.start()
        client = _client(url)
        try:
            assert client.ping() is True
        finally:
            client.close()
        assert (deep / "redis" / "redis.conf").is_file()  # data stays in the data dir
    finally:
        server.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)
    assert server.is_running() is False


def test_stale_pid_file_never_names_another_process(own_data_dir: Path) -> None:
    # After a crash the pid file and socket stay behind, and the pid may belong to anyone by now.
    server = EmbeddedRedis(own_data_dir)
    bystander = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        server.redis_dir.mkdir(parents=True)
        server.socket_path.parent.mkdir(parents=True)
        server.pid_file.write_text(f"{bystander.pid}\n")
        server.socket_path.touch()
        assert server.is_running() is False
        server.stop()
        assert bystander.poll() is None  # not signalled
    finally:
        bystander.stdin.close()  # type: ignore[union-attr]
        assert bystander.wait(timeout=30) == 0


def test_exited_unreaped_process_counts_as_gone() -> None:
    # A daemonized redis is nobody's child; where PID 1 does not reap, it stays a zombie.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    try:
        assert _process_alive(child.pid) is False
    finally:
        assert child.wait(timeout=30) == 0
    assert _process_alive(os.getpid()) is True
