"""SQL for reading preferences: one row per user, defaults until the user changes something."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from cluster.store._conn import Conn


@dataclass(frozen=True, slots=True)
class Preferences:
    topics_followed: list[str]
    topics_muted: list[str]
    languages: list[str]
    time_zone: str
    digest_enabled: bool
    digest_hour: int
    offline_reading: bool
    updated_at: datetime | None


# The column defaults of migration 0006, for users who never saved preferences.
DEFAULTS: dict[str, Any] = {
    "topics_followed": [], "topics_muted": [], "languages": [], "time_zone": "UTC",
    "digest_enabled": False, "digest_hour": 7, "offline_reading": False, "updated_at": None,
}
UPDATABLE = tuple(f.name for f in fields(Preferences) if f.name != "updated_at")
_COLUMNS = ", ".join(f.name for f in fields(Preferences))


async def get_preferences(conn: Conn, user_id: uuid.UUID) -> Preferences:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM preferences WHERE user_id = $1", user_id)
    return Preferences(**(dict(row) if row else DEFAULTS))


async def update_preferences(conn: Conn, user_id: uuid.UUID, changes: dict[str, Any]) -> Preferences:
    """Set the given fields (others keep their value or default) in one upsert."""
    unknown = set(changes) - set(UPDATABLE)
    if unknown:
        raise ValueError(f"store: unknown preference fields {sorted(unknown)}")
    if not changes:
        return await get_preferences(conn, user_id)
    names = list(changes)
    # Column names come from the dataclass (checked above), values are parameters.
    placeholders = ", ".join(f"${i + 2}" for i in range(len(names)))
    updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in names)
    row = await conn.fetchrow(
        f"""
        INSERT INTO preferences (user_id, {", ".join(names)}) VALUES ($1, {placeholders})
        ON CONFLICT (user_id) DO UPDATE SET {updates}, updated_at = now()
        RETURNING {_COLUMNS}
        """,
        user_id, *(changes[name] for name in names))
    assert row is not None
    return Preferences(**dict(row))
