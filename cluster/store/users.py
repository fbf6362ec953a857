"""SQL for users: accounts, roles, passwords, TOTP state and linked OpenID Connect identities.

Hashing, encryption and policy live with the callers (deployments.auth); this module stores
what it is given and answers questions atomically (a TOTP step is claimed in one UPDATE so two
requests can never both use it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from cluster.store._conn import Conn, connection, transaction

Role = Literal["reader", "admin"]

_COLUMNS = """
    id, email, email_verified, password_hash, role, disabled_at, created_at, updated_at, last_login_at,
    password_changed_at, totp_secret, totp_pending_secret, totp_enabled_at, totp_last_step, mfa_locked_until
"""


class EmailTakenError(ValueError):
    """Another account already uses this (normalized) email."""


@dataclass(frozen=True, slots=True)
class User:
    id: uuid.UUID
    email: str
    email_verified: bool
    password_hash: str | None
    role: Role
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    password_changed_at: datetime | None
    totp_secret: bytes | None
    totp_pending_secret: bytes | None
    totp_enabled_at: datetime | None
    totp_last_step: int | None
    mfa_locked_until: datetime | None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def mfa_enabled(self) -> bool:
        return self.totp_enabled_at is not None and self.totp_secret is not None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> "User":
        return cls(**dict(row))


async def create_user(conn: Conn, email: str, password_hash: str | None, role: Role = "reader",
                      email_verified: bool = False) -> User:
    """Insert a user; raise EmailTakenError when the email is in use."""
    try:
        row = await conn.fetchrow(
            f"""
            INSERT INTO users (email, password_hash, role, email_verified, password_changed_at)
            VALUES ($1, $2, $3, $4, CASE WHEN $2::text IS NULL THEN NULL ELSE now() END)
            RETURNING {_COLUMNS}
            """,
            email, password_hash, role, email_verified,
        )
    except asyncpg.UniqueViolationError:
        raise EmailTakenError(email) from None
    assert row is not None
    return User.from_row(row)


async def get_user(conn: Conn, user_id: uuid.UUID) -> User | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE id = $1", user_id)
    return User.from_row(row) if row else None


async def get_user_by_email(conn: Conn, email: str) -> User | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM users WHERE email = $1", email)
    return User.from_row(row) if row else None


async def list_users(conn: Conn, limit: int, offset: int) -> tuple[list[User], int]:
    """A page of users, oldest first, and the total count."""
    async with connection(conn) as c:
        rows = await c.fetch(f"SELECT {_COLUMNS} FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2", limit, offset)
        total = await c.fetchval("SELECT count(*) FROM users")
    return [User.from_row(row) for row in rows], int(total)


async def count_admins(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL"))


async def set_disabled(conn: Conn, user_id: uuid.UUID, disabled: bool) -> User | None:
    row = await conn.fetchrow(
        f"""
        UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END, updated_at = now()
        WHERE id = $1 RETURNING {_COLUMNS}
        """,
        user_id, disabled,
    )
    return User.from_row(row) if row else None


async def set_role(conn: Conn, user_id: uuid.UUID, role: Role) -> User | None:
    row = await conn.fetchrow(
        f"UPDATE users SET role = $2, updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}", user_id, role)
    return User.from_row(row) if row else None


async def set_password_hash(conn: Conn, user_id: uuid.UUID, password_hash: str, *, changed: bool = True) -> None:
    """Store a new hash. `changed=False` is a rehash of the same password (new parameters)."""
    await conn.execute(
        """
        UPDATE users SET password_hash = $2, updated_at = now(),
               password_changed_at = CASE WHEN $3 THEN now() ELSE password_changed_at END
        WHERE id = $1
        """,
        user_id, password_hash, changed,
    )


async def record_login(conn: Conn, user_id: uuid.UUID) -> None:
    await conn.execute("UPDATE users SET last_login_at = now() WHERE id = $1", user_id)


async def delete_user(conn: Conn, user_id: uuid.UUID) -> bool:
    """Delete the user and, by cascade, everything that is theirs."""
    return (await conn.execute("DELETE FROM users WHERE id = $1", user_id)) == "DELETE 1"


# --------------------------------------------------------------------------- TOTP


async def set_pending_totp(conn: Conn, user_id: uuid.UUID, encrypted_secret: bytes) -> None:
    await conn.execute("UPDATE users SET totp_pending_secret = $2, updated_at = now() WHERE id = $1",
                       user_id, encrypted_secret)


async def enable_totp(conn: Conn, user_id: uuid.UUID, pending: bytes, step: int) -> bool:
    """Promote the pending secret, if it is still the one that was verified (a second enrol
    in between replaced it)."""
    result = await conn.execute(
        """
        UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, totp_enabled_at = now(),
               totp_last_step = $3, mfa_locked_until = NULL, updated_at = now()
        WHERE id = $1 AND totp_pending_secret = $2
        """,
        user_id, pending, step,
    )
    return result == "UPDATE 1"


async def disable_totp(conn: Conn, user_id: uuid.UUID) -> None:
    """Turn MFA off: the secret, pending enrolment, lock, challenges and backup codes go."""
    async with transaction(conn) as c:
        await c.execute(
            """
            UPDATE users SET totp_secret = NULL, totp_pending_secret = NULL, totp_enabled_at = NULL,
                   totp_last_step = NULL, mfa_locked_until = NULL, updated_at = now()
            WHERE id = $1
            """,
            user_id,
        )
        await c.execute("DELETE FROM mfa_backup_codes WHERE user_id = $1", user_id)
        await c.execute("DELETE FROM mfa_challenges WHERE user_id = $1", user_id)


async def claim_totp_step(conn: Conn, user_id: uuid.UUID, step: int) -> bool:
    """Accept a code's time step only if it is later than the last one used: a code can never
    be replayed, even by two requests racing with the same code."""
    result = await conn.execute(
        "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND coalesce(totp_last_step, -1) < $2",
        user_id, step,
    )
    return result == "UPDATE 1"


async def lock_mfa(conn: Conn, user_id: uuid.UUID, seconds: float) -> datetime:
    value = await conn.fetchval(
        "UPDATE users SET mfa_locked_until = now() + make_interval(secs => $2) WHERE id = $1 RETURNING mfa_locked_until",
        user_id, float(seconds),
    )
    assert value is not None
    return value  # type: ignore[no-any-return]


async def mfa_lock_remaining_s(conn: Conn, user_id: uuid.UUID) -> float:
    """Seconds until the user's MFA lock ends (0 when not locked), by the database's clock."""
    value = await conn.fetchval(
        "SELECT greatest(0, extract(epoch FROM mfa_locked_until - now())) FROM users WHERE id = $1", user_id)
    return float(value or 0.0)


# --------------------------------------------------------------------------- OpenID Connect


@dataclass(frozen=True, slots=True)
class Identity:
    provider: str
    subject: str
    user_id: uuid.UUID
    email: str | None


async def get_identity(conn: Conn, provider: str, subject: str) -> Identity | None:
    row = await conn.fetchrow(
        "UPDATE oidc_identities SET last_login_at = now() WHERE provider = $1 AND subject = $2 "
        "RETURNING provider, subject, user_id, email",
        provider, subject,
    )
    return Identity(**dict(row)) if row else None


async def link_identity(conn: Conn, provider: str, subject: str, user_id: uuid.UUID, email: str | None) -> Identity:
    """Link a provider account to a user (a repeat link of the same pair is a no-op)."""
    row = await conn.fetchrow(
        """
        INSERT INTO oidc_identities (provider, subject, user_id, email) VALUES ($1, $2, $3, $4)
        ON CONFLICT (provider, subject) DO UPDATE SET last_login_at = now()
        RETURNING provider, subject, user_id, email
        """,
        provider, subject, user_id, email,
    )
    assert row is not None
    return Identity(**dict(row))


async def list_identities(conn: Conn, user_id: uuid.UUID) -> list[Identity]:
    rows = await conn.fetch(
        "SELECT provider, subject, user_id, email FROM oidc_identities WHERE user_id = $1 ORDER BY created_at",
        user_id)
    return [Identity(**dict(row)) for row in rows]


async def mark_email_verified(conn: Conn, user_id: uuid.UUID) -> None:
    await conn.execute("UPDATE users SET email_verified = true WHERE id = $1 AND NOT email_verified", user_id)


async def claim_unverified_account(conn: Conn, user_id: uuid.UUID) -> None:
    """The verified owner of an email claims the account someone registered with it: whatever
    that someone set up (password, MFA, sessions) goes, so it cannot be a way in any more."""
    async with transaction(conn) as c:
        await c.execute(
            """
            UPDATE users SET email_verified = true, password_hash = NULL, password_changed_at = now(),
                   totp_secret = NULL, totp_pending_secret = NULL, totp_enabled_at = NULL, totp_last_step = NULL,
                   mfa_locked_until = NULL, updated_at = now()
            WHERE id = $1
            """,
            user_id)
        await c.execute("DELETE FROM mfa_backup_codes WHERE user_id = $1", user_id)
        await c.execute("DELETE FROM mfa_challenges WHERE user_id = $1", user_id)
        await c.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
                        user_id)
