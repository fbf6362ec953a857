"""The asyncpg pool (one per process and event loop) and the migration runner."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import asyncpg

from cluster.services import mask_url

T = TypeVar("T")
MIGRATIONS_PACKAGE = "cluster.migrations"
MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same in every process that migrates.
MIGRATION_LOCK_KEY = 0x6E657773726179  # "newsray"


class StoreError(RuntimeError):
    """A database problem, with the layer's name in front."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path | None = None) -> list[Migration]:
    """Migrations in version order; a gap or a duplicate version is a programming error."""
    if folder is None:
        files = [(entry.name, entry.read_text()) for entry in resources.files(MIGRATIONS_PACKAGE).iterdir()]
    else:
        files = [(path.name, path.read_text()) for path in folder.iterdir()]
    migrations = []
    for name, sql in files:
        match = MIGRATION_NAME.match(name)
        if match:
            migrations.append(Migration(int(match.group(1)), match.group(2), sql))
    migrations.sort(key=lambda m: m.version)
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise StoreError(f"store: migrations must be numbered 0001, 0002, … without gaps (found {migration.version:04d})")
    return migrations


async def migrate(database_url: str, migrations: list[Migration] | None = None) -> list[int]:
    """Apply pending migrations, each in its own transaction; return the versions applied.

    A session advisory lock serializes concurrent callers: the second waits, then finds
    nothing left to do.
    """
    migrations = load_migrations() if migrations is None else migrations
    conn = await _connect(database_url)
    applied: list[int] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            await conn.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            done = {row["version"]: row["checksum"] for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")}
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise StoreError(
                            f"store: migration {migration.version:04d}_{migration.name} changed after it was applied; "
                            "add a new migration instead of editing an old one"
                        )
                    continue
                try:
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                            migration.version, migration.name, migration.checksum,
                        )
                except asyncpg.PostgresError as exc:
                    # Rolled back; the ones before it stay applied. Name the file an operator must fix.
                    raise StoreError(
                        f"store: migration {migration.version:04d}_{migration.name} failed and was rolled back: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                applied.append(migration.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()
    return applied


async def _connect(database_url: str) -> asyncpg.Connection:
    try:
        return await asyncpg.connect(database_url, timeout=10)
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        raise StoreError(f"store: cannot connect to {mask_url(database_url)}: {exc}") from None


async def _init_connection(conn: asyncpg.Connection) -> None:
    from pgvector.asyncpg import register_vector

    await register_vector(conn)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo: the users of a stateless pool never change session state."""


async def create_pool(database_url: str, min_size: int = 1, max_size: int = 10, *,
                      stateless: bool = False) -> asyncpg.Pool:
    """A pool whose connections know the pgvector type (migrations must have run).

    `stateless` skips asyncpg's reset on release (`pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL`, a second round trip for a one-query request). Only for code that
    leaves no session state behind (no SET, LISTEN or session advisory lock; its transactions
    closed): the API's hot read paths and the crawler's writes. asyncpg still rolls back an open
    transaction first. Measured on 2 cores: Serve went from 0.77x to 0.81-0.90x uvicorn's req/s
    at c=64 (tests/benchmarks/README.md); a stored feed costs the crawler about 0.06 ms and
    PostgreSQL about 0.1 ms less.
    """
    options: dict[str, object] = {"reset": _keep_session} if stateless else {}
    try:
        pool = await asyncpg.create_pool(
            database_url, min_size=min_size, max_size=max_size, init=_init_connection,
            command_timeout=60, max_inactive_connection_lifetime=300, **options,
        )
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        raise StoreError(f"store: cannot connect to {mask_url(database_url)}: {exc}") from None
    assert pool is not None
    return pool


# One pool per kind, process and event loop: asyncpg pools are bound to the loop that made them,
# and Ray actors, Serve replicas and the CLI each run their own.
_pools: dict[tuple[bool, int], asyncpg.Pool] = {}
_pool_locks: dict[tuple[bool, int], asyncio.Lock] = {}


async def _process_pool(stateless: bool, max_size: int | None = None) -> asyncpg.Pool:
    from cluster.settings import get_settings

    key = (stateless, id(asyncio.get_running_loop()))
    pool = _pools.get(key)
    if pool is not None:
        return pool
    async with _pool_locks.setdefault(key, asyncio.Lock()):
        pool = _pools.get(key)
        if pool is None:
            settings = get_settings()
            if not settings.database_url:
                raise StoreError("store: NEWSRAY_DATABASE_URL is not set in this process (start with `newsray up`)")
            size = max_size or settings.db_pool_max
            pool = await create_pool(settings.database_url, min(settings.db_pool_min, size), size, stateless=stateless)
            _pools[key] = pool
    return pool


async def get_pool() -> asyncpg.Pool:
    """The process-wide pool for the running loop, created on first use from settings."""
    return await _process_pool(False)


async def get_stateless_pool(max_size: int | None = None) -> asyncpg.Pool:
    """The process-wide pool for code that leaves no session state (see `create_pool`).
    `max_size` (else the settings' db_pool_max) counts when this call creates the pool."""
    return await _process_pool(True, max_size)


async def _close(stateless: bool) -> None:
    pool = _pools.pop((stateless, id(asyncio.get_running_loop())), None)
    if pool is not None:
        await pool.close()


async def close_pool() -> None:
    await _close(False)


async def close_stateless_pool() -> None:
    await _close(True)


# Errors that mean "the server went away", not "the query is wrong": worth retrying.
DISCONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)


async def retry_on_disconnect(
    work: Callable[[], Awaitable[T]], *, deadline_s: float = 60.0, first_delay_s: float = 0.2
) -> T:
    """Run `work`, retrying while the database restarts, for up to `deadline_s`.

    Whatever the caller holds in memory (a fetched feed) survives the restart, so a crawl that
    meets a restarting database finishes late instead of losing its articles.
    """
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + deadline_s
    delay = first_delay_s
    while True:
        try:
            return await work()
        except DISCONNECT_ERRORS:
            if loop.time() + delay > give_up_at:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
