"""SQL for health checks."""

from __future__ import annotations

from cluster.store._conn import Conn


async def ping(conn: Conn) -> None:
    """One round trip to the database; raises whatever the connection raises."""
    await conn.fetchval("SELECT 1")
