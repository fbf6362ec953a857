"""SQL for MFA: single-use backup codes and the short-lived challenges of two-step logins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cluster.store._conn import Conn, transaction


async def replace_backup_codes(conn: Conn, user_id: uuid.UUID, code_hashes: list[bytes]) -> None:
    """The new set replaces every earlier code, used or not."""
    async with transaction(conn) as c:
        await c.execute("DELETE FROM mfa_backup_codes WHERE user_id = $1", user_id)
        await c.execute(
            "INSERT INTO mfa_backup_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])", user_id, code_hashes)


async def use_backup_code(conn: Conn, user_id: uuid.UUID, code_hash: bytes) -> bool:
    """Spend a code; False when it is unknown or already spent (one UPDATE: no double spend)."""
    result = await conn.execute(
        "UPDATE mfa_backup_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        user_id, code_hash,
    )
    return result == "UPDATE 1"


async def count_backup_codes(conn: Conn, user_id: uuid.UUID) -> int:
    return int(await conn.fetchval(
        "SELECT count(*) FROM mfa_backup_codes WHERE user_id = $1 AND used_at IS NULL", user_id))


@dataclass(frozen=True, slots=True)
class Challenge:
    user_id: uuid.UUID
    failed_attempts: int


async def create_challenge(conn: Conn, user_id: uuid.UUID, token_hash: bytes, ttl_s: float) -> None:
    await conn.execute(
        "INSERT INTO mfa_challenges (token_hash, user_id, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))",
        token_hash, user_id, float(ttl_s),
    )
    # Expired challenges are worthless; sweeping the user's own keeps the table small.
    await conn.execute("DELETE FROM mfa_challenges WHERE user_id = $1 AND expires_at < now() - interval '1 day'",
                       user_id)


async def get_challenge(conn: Conn, token_hash: bytes) -> Challenge | None:
    """The challenge if it is still open (not consumed, not expired)."""
    row = await conn.fetchrow(
        "SELECT user_id, failed_attempts FROM mfa_challenges "
        "WHERE token_hash = $1 AND consumed_at IS NULL AND expires_at > now()",
        token_hash,
    )
    return Challenge(**dict(row)) if row else None


async def record_failed_attempt(conn: Conn, token_hash: bytes) -> int:
    """Count a wrong code against the challenge; return the count so far."""
    value = await conn.fetchval(
        "UPDATE mfa_challenges SET failed_attempts = failed_attempts + 1 WHERE token_hash = $1 RETURNING failed_attempts",
        token_hash,
    )
    return int(value or 0)


async def consume_challenge(conn: Conn, token_hash: bytes) -> bool:
    """Close the challenge; False when another request closed it first."""
    result = await conn.execute(
        "UPDATE mfa_challenges SET consumed_at = now() WHERE token_hash = $1 AND consumed_at IS NULL", token_hash)
    return result == "UPDATE 1"
