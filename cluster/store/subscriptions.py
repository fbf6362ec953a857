"""SQL for what each user follows: folders and subscriptions to sources of the shared catalog.

Every statement is scoped by user_id, and a subscription's folder is tied to the same user by a
composite foreign key, so one user's id values can never reach another user's rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from cluster.store._conn import Conn, transaction
from cluster.store.sources import NewSource, SourceKind


class FolderExistsError(ValueError):
    """The user already has a folder with this name (case-insensitive)."""


class FolderNotFoundError(LookupError):
    """No such folder among the user's own."""


class SourceNotFoundError(LookupError):
    """No source with this id in the catalog."""


@dataclass(frozen=True, slots=True)
class Folder:
    id: int
    name: str
    created_at: datetime
    subscriptions: int


@dataclass(frozen=True, slots=True)
class Subscription:
    source_id: int
    folder_id: int | None
    folder_name: str | None
    title: str | None
    created_at: datetime
    url: str
    kind: SourceKind
    source_title: str | None
    site_url: str | None
    language: str | None
    enabled: bool
    last_success_at: datetime | None
    last_error: str | None
    consecutive_errors: int


_SUBSCRIPTION_SELECT = """
    SELECT s.source_id, s.folder_id, f.name AS folder_name, s.title, s.created_at, src.url, src.kind,
           src.title AS source_title, src.site_url, src.language, src.enabled, src.last_success_at,
           src.last_error, src.consecutive_errors
    FROM subscriptions s
    JOIN sources src ON src.id = s.source_id
    LEFT JOIN folders f ON f.id = s.folder_id
"""


# --------------------------------------------------------------------------- folders


async def list_folders(conn: Conn, user_id: uuid.UUID) -> list[Folder]:
    rows = await conn.fetch(
        """
        SELECT f.id, f.name, f.created_at, count(s.source_id)::int AS subscriptions
        FROM folders f LEFT JOIN subscriptions s ON s.folder_id = f.id AND s.user_id = f.user_id
        WHERE f.user_id = $1 GROUP BY f.id ORDER BY lower(f.name), f.id
        """,
        user_id,
    )
    return [Folder(**dict(row)) for row in rows]


async def create_folder(conn: Conn, user_id: uuid.UUID, name: str) -> Folder:
    try:
        row = await conn.fetchrow(
            "INSERT INTO folders (user_id, name) VALUES ($1, $2) RETURNING id, name, created_at, 0 AS subscriptions",
            user_id, name)
    except asyncpg.UniqueViolationError:
        raise FolderExistsError(name) from None
    assert row is not None
    return Folder(**dict(row))


async def rename_folder(conn: Conn, user_id: uuid.UUID, folder_id: int, name: str) -> Folder | None:
    try:
        row = await conn.fetchrow(
            """
            UPDATE folders SET name = $3 WHERE id = $2 AND user_id = $1
            RETURNING id, name, created_at,
                      (SELECT count(*)::int FROM subscriptions s WHERE s.folder_id = $2 AND s.user_id = $1) AS subscriptions
            """,
            user_id, folder_id, name)
    except asyncpg.UniqueViolationError:
        raise FolderExistsError(name) from None
    return Folder(**dict(row)) if row else None


async def delete_folder(conn: Conn, user_id: uuid.UUID, folder_id: int) -> bool:
    """Delete the folder; its subscriptions stay, unfiled."""
    return (await conn.execute("DELETE FROM folders WHERE id = $2 AND user_id = $1", user_id, folder_id)) == "DELETE 1"


# --------------------------------------------------------------------------- subscriptions


async def list_subscriptions(conn: Conn, user_id: uuid.UUID) -> list[Subscription]:
    rows = await conn.fetch(
        f"{_SUBSCRIPTION_SELECT} WHERE s.user_id = $1 ORDER BY lower(coalesce(f.name, '')), "
        "lower(coalesce(s.title, src.title, src.url)), s.source_id",
        user_id)
    return [Subscription(**dict(row)) for row in rows]


async def get_subscription(conn: Conn, user_id: uuid.UUID, source_id: int) -> Subscription | None:
    row = await conn.fetchrow(f"{_SUBSCRIPTION_SELECT} WHERE s.user_id = $1 AND s.source_id = $2", user_id, source_id)
    return Subscription(**dict(row)) if row else None


async def subscribe(conn: Conn, user_id: uuid.UUID, source_id: int, folder_id: int | None = None,
                    title: str | None = None) -> tuple[Subscription, bool]:
    """Follow a source; return the subscription and whether it is new (an existing one is
    left as it was)."""
    try:
        async with transaction(conn) as c:
            inserted = await c.fetchval(
                """
                INSERT INTO subscriptions (user_id, source_id, folder_id, title) VALUES ($1, $2, $3, $4)
                ON CONFLICT (user_id, source_id) DO NOTHING RETURNING true
                """,
                user_id, source_id, folder_id, title)
            found = await get_subscription(c, user_id, source_id)
    except asyncpg.ForeignKeyViolationError as exc:
        raise _missing(exc, source_id, folder_id) from None
    assert found is not None
    return found, bool(inserted)


async def update_subscription(conn: Conn, user_id: uuid.UUID, source_id: int, *, set_folder: bool = False,
                              folder_id: int | None = None, set_title: bool = False,
                              title: str | None = None) -> Subscription | None:
    try:
        async with transaction(conn) as c:
            updated = await c.fetchval(
                """
                UPDATE subscriptions SET folder_id = CASE WHEN $3 THEN $4 ELSE folder_id END,
                                         title = CASE WHEN $5 THEN $6 ELSE title END
                WHERE user_id = $1 AND source_id = $2 RETURNING true
                """,
                user_id, source_id, set_folder, folder_id, set_title, title)
            return await get_subscription(c, user_id, source_id) if updated else None
    except asyncpg.ForeignKeyViolationError as exc:
        raise _missing(exc, source_id, folder_id) from None


async def unsubscribe(conn: Conn, user_id: uuid.UUID, source_id: int) -> bool:
    """Stop following; the source stays in the catalog (others may follow it)."""
    result = await conn.execute("DELETE FROM subscriptions WHERE user_id = $1 AND source_id = $2", user_id, source_id)
    return result == "DELETE 1"


@dataclass(frozen=True, slots=True)
class ImportResult:
    subscribed: int  # new subscriptions
    already: int  # already followed
    sources_added: int  # new to the catalog


async def import_subscriptions(conn: Conn, user_id: uuid.UUID, sources: list[NewSource]) -> ImportResult:
    """Follow every source of an OPML file, adding unknown ones to the catalog; each source's
    category becomes the user's folder of that name (created when missing)."""
    if not sources:
        return ImportResult(0, 0, 0)
    async with transaction(conn) as c:
        added = await c.fetch(
            """
            INSERT INTO sources (url, kind, title, site_url, language, category)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
            ON CONFLICT (url) DO NOTHING RETURNING id
            """,
            [s.url for s in sources], [s.kind for s in sources], [s.title for s in sources],
            [s.site_url for s in sources], [s.language for s in sources], [s.category for s in sources])
        names = sorted({s.category for s in sources if s.category})
        await c.execute(
            """
            INSERT INTO folders (user_id, name) SELECT $1, n FROM unnest($2::text[]) AS n
            ON CONFLICT (user_id, lower(name)) DO NOTHING
            """,
            user_id, [name[:100] for name in names])
        inserted = await c.fetch(
            """
            INSERT INTO subscriptions (user_id, source_id, folder_id)
            SELECT $1, src.id, f.id
            FROM unnest($2::text[], $3::text[]) AS item(url, folder)
            JOIN sources src ON src.url = item.url
            LEFT JOIN folders f ON f.user_id = $1 AND lower(f.name) = lower(left(item.folder, 100))
            ON CONFLICT (user_id, source_id) DO NOTHING
            RETURNING source_id
            """,
            user_id, [s.url for s in sources], [s.category for s in sources])
    return ImportResult(subscribed=len(inserted), already=len(sources) - len(inserted), sources_added=len(added))


async def follower_counts(conn: Conn) -> dict[int, int]:
    """How many users follow each followed source (for admins)."""
    rows = await conn.fetch("SELECT source_id, count(*)::int AS n FROM subscriptions GROUP BY source_id")
    return {row["source_id"]: row["n"] for row in rows}


def _missing(exc: asyncpg.ForeignKeyViolationError, source_id: int, folder_id: int | None) -> LookupError:
    constraint = getattr(exc, "constraint_name", "") or ""
    if "source" in constraint:
        return SourceNotFoundError(source_id)
    return FolderNotFoundError(folder_id)


async def find_source_id(conn: Conn, url: str) -> int | None:
    """The catalog's source with this normalized URL, if any."""
    value = await conn.fetchval("SELECT id FROM sources WHERE url = $1", url)
    return int(value) if value is not None else None
