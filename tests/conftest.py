"""One set of real services per test session: PostgreSQL with pgvector, Redis, a local Ray cluster.

Embedded by default (in a throw-away data dir); external when NEWSRAY_DATABASE_URL /
NEWSRAY_REDIS_URL / NEWSRAY_RAY_ADDRESS are set. Nothing here is mocked.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

# Before anything imports ray: keep every Ray address on loopback (see cluster.ray_cluster).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "token")

import asyncpg
import pytest
import pytest_asyncio

from cluster.db import create_pool, migrate
from cluster.samplefeeds import SampleFeedServer, start_sample_server
from cluster.services import ServiceUrls, start_services, stop_services
from cluster.settings import Settings, load_settings

TEST_ALLOWED_NETWORKS = "127.0.0.0/8"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sample_server() -> Iterator[SampleFeedServer]:
    """The bundled sample feeds, served on 127.0.0.1 (one server per test module)."""
    with start_sample_server() as server:
        yield server


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return free_port()


@dataclass(frozen=True)
class SessionServices:
    settings: Settings
    urls: ServiceUrls
    data_dir: Path

    def env(self) -> dict[str, str]:
        """Variables every process of the test cluster gets (workers, actors, replicas)."""
        return {
            **self.urls.as_env(),
            "NEWSRAY_DATA_DIR": str(self.data_dir),
            "NEWSRAY_CRAWL_ALLOWED_NETWORKS": TEST_ALLOWED_NETWORKS,
            "NEWSRAY_LOAD_DEFAULT_SOURCES": "false",
            # Crawl tests' schedulers leave articles alone; the enrichment trigger's tests turn it on.
            "NEWSRAY_ENRICH_AUTO": "false",
            # Every test client is one address; the limit's own test sets a small one.
            "NEWSRAY_ANONYMOUS_SEARCH_LIMIT": "1000000",
        }


@pytest.fixture(scope="session")
def test_env() -> Iterator[SessionServices]:
    # A short path: Unix sockets for PostgreSQL, Redis and Ray live under it.
    data_dir = Path(tempfile.mkdtemp(prefix="nrt-", dir="/tmp"))
    settings = load_settings(data_dir=data_dir, crawl_allowed_networks=TEST_ALLOWED_NETWORKS)
    urls = start_services(settings)
    environment = SessionServices(settings, urls, data_dir)
    for key, value in environment.env().items():
        os.environ[key] = value
    yield environment
    stop_services(settings)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(test_env: SessionServices) -> str:
    return test_env.urls.database_url


@pytest.fixture(scope="session")
def redis_url(test_env: SessionServices) -> str:
    return test_env.urls.redis_url


@pytest_asyncio.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url)
    pool = await create_pool(database_url, min_size=1, max_size=10)
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def db(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Pool]:
    """The session pool over an empty schema (tables truncated before the test)."""
    await pool.execute("TRUNCATE sources, articles RESTART IDENTITY CASCADE")
    yield pool


@pytest.fixture(scope="session")
def ray_cluster(test_env: SessionServices) -> Iterator[str]:
    """One local Ray cluster for the whole session (started the way `newsray up` starts it)."""
    import ray

    from cluster.ray_cluster import RayPorts, connect, start_head, stop_head

    external = os.environ.get("NEWSRAY_RAY_ADDRESS")
    if external:
        connect(external, env=test_env.env())
        yield external
        ray.shutdown()
        return
    ports = RayPorts(gcs=free_port(), dashboard=free_port(), haproxy_stats=free_port(), haproxy_metrics=free_port())
    address = start_head(test_env.settings, ports, test_env.env())
    connect(address, env=test_env.env())
    yield address
    ray.shutdown()
    stop_head(test_env.settings)
