"""cluster.db: migrations (fresh, re-run, concurrent, edited, failing) and the pool's pgvector codec."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
import pytest
import pytest_asyncio

from cluster.db import Migration, StoreError, close_pool, create_pool, get_pool, load_migrations, migrate
from cluster.settings import get_settings

EXPECTED_TABLES = {"schema_migrations", "sources", "articles"}


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest_asyncio.fixture
async def fresh_url(database_url: str) -> AsyncIterator[str]:
    """An empty database of its own on the session server, dropped afterwards."""
    name = f"nr_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _with_database(database_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def _tables(url: str) -> set[str]:
    rows = await _fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


async def _recorded(url: str) -> list[int]:
    return [row["version"] for row in await _fetch(url, "SELECT version FROM schema_migrations ORDER BY version")]


def _floats(value: object) -> list[float]:
    """A decoded vector as a list: pgvector 0.3 decodes to numpy, 0.4+ to its own Vector."""
    to_list = getattr(value, "to_list", None) or getattr(value, "tolist")
    return [float(x) for x in to_list()]


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql)
    return folder


# --------------------------------------------------------------------------- load_migrations


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    migrations = load_migrations()
    assert len(migrations) >= 2
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "extensions"
    assert migrations[1].name == "sources_articles"
    assert all(m.sql.strip() for m in migrations)
    assert len({m.checksum for m in migrations}) == len(migrations)


def test_load_migrations_rejects_a_gap(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"0001_a.sql": "SELECT 1;", "0003_c.sql": "SELECT 3;"})
    with pytest.raises(StoreError, match="gaps") as info:
        load_migrations(folder)
    assert "0003" in str(info.value)


def test_load_migrations_rejects_a_duplicate_version(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 1;"})
    with pytest.raises(StoreError):
        load_migrations(folder)


def test_load_migrations_must_start_at_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        load_migrations(_write(tmp_path, {"0002_b.sql": "SELECT 2;"}))


def test_load_migrations_sorts_and_ignores_other_files(tmp_path: Path) -> None:
    folder = _write(tmp_path, {
        "0002_second.sql": "SELECT 2;", "0001_first.sql": "SELECT 1;", "README.md": "not sql",
        "__init__.py": "", "0003-bad-name.sql": "SELECT 3;", "0003_Upper.sql": "SELECT 3;",
    })
    migrations = load_migrations(folder)
    assert [(m.version, m.name, m.sql) for m in migrations] == [(1, "first", "SELECT 1;"), (2, "second", "SELECT 2;")]


# --------------------------------------------------------------------------- migrate


async def test_fresh_database_then_rerun_is_a_no_op(fresh_url: str) -> None:
    expected = [m.version for m in load_migrations()]
    assert await migrate(fresh_url) == expected
    assert EXPECTED_TABLES <= await _tables(fresh_url)
    assert await _recorded(fresh_url) == expected
    extensions = {row["extname"] for row in await _fetch(fresh_url, "SELECT extname FROM pg_extension")}
    assert "vector" in extensions
    rows = await _fetch(fresh_url, "SELECT version, name, checksum FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["name"], r["checksum"]) for r in rows] == [(m.version, m.name, m.checksum) for m in load_migrations()]

    assert await migrate(fresh_url) == []
    assert await migrate(fresh_url) == []
    assert await _recorded(fresh_url) == expected


async def test_schema_has_what_the_store_needs(fresh_url: str) -> None:
    await migrate(fresh_url)
    columns = {(r["table_name"], r["column_name"]) for r in await _fetch(
        fresh_url, "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'")}
    for column in ("url", "kind", "title", "site_url", "etag", "last_modified", "next_fetch_at", "interval_s",
                   "consecutive_errors", "last_error", "last_error_at", "enabled"):
        assert ("sources", column) in columns
    for column in ("id", "source_id", "guid", "url", "canonical_url", "title", "author", "summary", "content",
                   "published_at", "fetched_at", "updated_at", "language", "search"):
        assert ("articles", column) in columns
    indexes = {r["indexname"] for r in await _fetch(fresh_url, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"articles_newest_idx", "articles_source_newest_idx", "articles_search_idx", "sources_due_idx"} <= indexes


async def test_session_database_rerun_is_a_no_op(pool: asyncpg.Pool, database_url: str) -> None:
    assert await migrate(database_url) == []


async def test_two_concurrent_migrations_apply_each_once(fresh_url: str) -> None:
    expected = [m.version for m in load_migrations()]
    first, second = await asyncio.gather(migrate(fresh_url), migrate(fresh_url))
    assert sorted(first + second) == expected  # each version applied by exactly one caller
    assert await _recorded(fresh_url) == expected


async def test_two_processes_migrating_at_once(fresh_url: str) -> None:
    expected = [m.version for m in load_migrations()]
    code = "import asyncio, sys; from cluster.db import migrate; print(asyncio.run(migrate(sys.argv[1])))"
    processes = [subprocess.Popen([sys.executable, "-c", code, fresh_url], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]
    for process, (stdout, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr
    applied = [version for stdout, _ in outputs for version in ast.literal_eval(stdout.strip())]
    assert sorted(applied) == expected
    assert await _recorded(fresh_url) == expected


async def test_edited_applied_migration_is_refused(fresh_url: str) -> None:
    migrations = load_migrations()
    await migrate(fresh_url, migrations)
    edited = [*migrations[:-1], replace(migrations[-1], sql=migrations[-1].sql + "\n-- an innocent edit\n")]
    with pytest.raises(StoreError, match="changed") as info:
        await migrate(fresh_url, edited)
    assert f"{migrations[-1].version:04d}_{migrations[-1].name}" in str(info.value)
    # Refusing released the lock: an honest run still works.
    assert await migrate(fresh_url, migrations) == []


async def test_each_migration_in_its_own_transaction(fresh_url: str, tmp_path: Path) -> None:
    folder = _write(tmp_path, {
        "0001_one.sql": "CREATE TABLE one (id int PRIMARY KEY);",
        "0002_two.sql": "CREATE TABLE two (id int PRIMARY KEY); INSERT INTO two VALUES (2);",
        "0003_broken.sql": "CREATE TABLE three (id int PRIMARY KEY); INSERT INTO three VALUES (3); SELEC oops;",
    })
    with pytest.raises(StoreError, match="0003_broken") as info:
        await migrate(fresh_url, load_migrations(folder))
    assert str(info.value).startswith("store: ")
    assert await _recorded(fresh_url) == [1, 2]
    tables = await _tables(fresh_url)
    assert {"one", "two"} <= tables
    assert "three" not in tables  # nothing of the failed migration survives
    assert [r["id"] for r in await _fetch(fresh_url, "SELECT id FROM two")] == [2]

    # Fixed, it applies on the next run; the lock was released after the failure.
    (folder / "0003_broken.sql").write_text("CREATE TABLE three (id int PRIMARY KEY);")
    assert await migrate(fresh_url, load_migrations(folder)) == [3]
    assert "three" in await _tables(fresh_url)


async def test_migrate_unreachable_names_masked_url() -> None:
    url = "postgresql://news:Sup3r-Secret@127.0.0.1:1/news"
    with pytest.raises(StoreError) as info:
        await migrate(url)
    assert "postgresql://news:***@127.0.0.1:1/news" in str(info.value)
    assert "Sup3r-Secret" not in str(info.value)


# --------------------------------------------------------------------------- pool


async def test_pool_has_the_pgvector_codec(fresh_url: str) -> None:
    await migrate(fresh_url)
    pool = await create_pool(fresh_url, min_size=1, max_size=2)
    try:
        value = await pool.fetchval("SELECT '[1,2,3]'::vector")
        assert not isinstance(value, str)  # decoded, not the text form
        assert _floats(value) == [1.0, 2.0, 3.0]
        assert np.array_equal(np.asarray(_floats(value)), np.array([1, 2, 3]))
        # And the other way: Python values go in as vectors.
        assert await pool.fetchval("SELECT $1::vector <-> '[0,0,0]'::vector", np.array([3.0, 4.0, 0.0])) == 5.0
        assert await pool.fetchval("SELECT vector_dims($1::vector)", [0.5] * 384) == 384
        # Every connection of the pool has it, not only the first.
        async with pool.acquire() as one, pool.acquire() as two:
            for conn in (one, two):
                assert _floats(await conn.fetchval("SELECT '[4,5]'::vector")) == [4.0, 5.0]
    finally:
        await pool.close()


async def test_create_pool_unreachable_names_masked_url() -> None:
    with pytest.raises(StoreError) as info:
        await create_pool("postgresql://news:Sup3r-Secret@127.0.0.1:1/news")
    assert "***" in str(info.value) and "Sup3r-Secret" not in str(info.value)


async def test_get_pool_is_one_per_loop(pool: asyncpg.Pool, database_url: str) -> None:
    get_settings.cache_clear()  # read the session's NEWSRAY_DATABASE_URL
    assert get_settings().database_url == database_url
    try:
        first, second = await asyncio.gather(get_pool(), get_pool())
        assert first is second
        assert await get_pool() is first
        assert _floats(await first.fetchval("SELECT '[7]'::vector")) == [7.0]
    finally:
        await close_pool()
