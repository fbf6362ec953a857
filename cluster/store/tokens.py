"""SQL for refresh tokens: families, rotation with reuse detection, revocation.

Only SHA-256 hashes are stored: a refresh token is 256 random bits, so a fast hash is enough,
and a database dump holds nothing that can be presented back.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from cluster.store._conn import Conn, transaction

MAX_USER_AGENT = 300


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    created_at: datetime
    expires_at: datetime


class Rotation(enum.Enum):
    ROTATED = "rotated"
    # A token that was already rotated came back: someone holds a copy. The family is revoked.
    REUSED = "reused"
    INVALID = "invalid"  # unknown, expired or revoked


_RETURNING = "RETURNING id, family_id, user_id, created_at, expires_at"


async def create_refresh_token(conn: Conn, user_id: uuid.UUID, token_hash: bytes, ttl_s: float,
                               family_id: uuid.UUID | None = None, user_agent: str | None = None) -> RefreshToken:
    """A new token; without `family_id` it starts a new family (a new sign-in)."""
    row = await conn.fetchrow(
        f"""
        INSERT INTO refresh_tokens (family_id, user_id, token_hash, expires_at, user_agent)
        VALUES (coalesce($1, gen_random_uuid()), $2, $3, now() + make_interval(secs => $4), $5)
        {_RETURNING}
        """,
        family_id, user_id, token_hash, float(ttl_s), (user_agent or None) and user_agent[:MAX_USER_AGENT],
    )
    assert row is not None
    return RefreshToken(**dict(row))


async def rotate_refresh_token(conn: Conn, token_hash: bytes, new_hash: bytes, ttl_s: float,
                               user_agent: str | None = None) -> tuple[Rotation, RefreshToken | None]:
    """Exchange a token for its successor in the same family.

    The row is locked, so of two requests presenting the same token one rotates it and the
    other sees a reuse (and revokes the family): a stolen copy can be used at most once, and
    using it logs the thief and the victim out alike.
    """
    async with transaction(conn) as c:
        row = await c.fetchrow(
            """
            SELECT id, family_id, user_id, rotated_at, revoked_at, expires_at <= now() AS expired
            FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE
            """,
            token_hash,
        )
        if row is None or row["revoked_at"] is not None:
            return Rotation.INVALID, None
        if row["rotated_at"] is not None:
            await c.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
                            row["family_id"])
            return Rotation.REUSED, None
        if row["expired"]:
            return Rotation.INVALID, None
        await c.execute("UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1", row["id"])
        successor = await create_refresh_token(c, row["user_id"], new_hash, ttl_s, row["family_id"], user_agent)
    return Rotation.ROTATED, successor


async def find_active(conn: Conn, token_hash: bytes) -> RefreshToken | None:
    """The token if it can still be used (not rotated, revoked or expired)."""
    row = await conn.fetchrow(
        """
        SELECT id, family_id, user_id, created_at, expires_at FROM refresh_tokens
        WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > now()
        """,
        token_hash,
    )
    return RefreshToken(**dict(row)) if row else None


async def revoke_family(conn: Conn, family_id: uuid.UUID, user_id: uuid.UUID) -> int:
    """Revoke one sign-in; `user_id` must own it (a user can only end their own sessions)."""
    result = await conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND user_id = $2 AND revoked_at IS NULL",
        family_id, user_id,
    )
    return int(result.split()[-1])


async def revoke_all(conn: Conn, user_id: uuid.UUID, except_family: uuid.UUID | None = None) -> int:
    result = await conn.execute(
        """
        UPDATE refresh_tokens SET revoked_at = now()
        WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR family_id <> $2)
        """,
        user_id, except_family,
    )
    return int(result.split()[-1])


async def family_is_active(conn: Conn, family_id: uuid.UUID) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE family_id = $1 AND revoked_at IS NULL "
        "AND rotated_at IS NULL AND expires_at > now())",
        family_id,
    ))


async def delete_expired(conn: Conn, older_than_s: float = 86400.0) -> int:
    """Housekeeping: drop tokens that expired (or were revoked) more than `older_than_s` ago."""
    result = await conn.execute(
        """
        DELETE FROM refresh_tokens
        WHERE expires_at < now() - make_interval(secs => $1) OR revoked_at < now() - make_interval(secs => $1)
        """,
        float(older_than_s),
    )
    return int(result.split()[-1])
