"""SQL for error_logs: unhandled server errors recorded by the API, for the admin page."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from cluster.store._conn import Conn

MAX_MESSAGE = 2000
MAX_PATH = 500
# The table is a recent-errors view, not an archive: older rows beyond this many are dropped.
KEEP_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class ErrorLog:
    id: int
    occurred_at: datetime
    method: str
    path: str
    status: int
    error_type: str
    message: str
    user_id: uuid.UUID | None
    request_id: str | None


async def record_error(conn: Conn, *, method: str, path: str, status: int, error_type: str, message: str,
                       user_id: uuid.UUID | None = None, request_id: str | None = None) -> int:
    # A user deleted meanwhile must not make the error itself fail to record.
    value = await conn.fetchval(
        """
        INSERT INTO error_logs (method, path, status, error_type, message, user_id, request_id)
        VALUES ($1, $2, $3, $4, $5, (SELECT id FROM users WHERE id = $6), $7) RETURNING id
        """,
        method[:16], path[:MAX_PATH], status, error_type[:200], message[:MAX_MESSAGE], user_id,
        request_id[:100] if request_id else None)
    if int(value) % 1000 == 0:
        await conn.execute("DELETE FROM error_logs WHERE id <= $1", int(value) - KEEP_ROWS)
    return int(value)


async def recent_errors(conn: Conn, limit: int = 50, before_id: int | None = None) -> list[ErrorLog]:
    rows = await conn.fetch(
        """
        SELECT id, occurred_at, method, path, status, error_type, message, user_id, request_id FROM error_logs
        WHERE ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $1
        """,
        limit, before_id)
    return [ErrorLog(**dict(row)) for row in rows]
