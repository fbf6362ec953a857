"""`newsray users …`: create accounts (the first admin), disable/enable them, reset MFA.

Password hashing and email rules live with the API (deployments.auth); like the other parts
outside `cluster/`, they are loaded by import path (cluster.components) when a command runs.
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

import click

from cluster import components

PASSWORDS = "deployments.auth.passwords"
ACCOUNTS = "deployments.auth.accounts"
AUTH_SETTINGS = "deployments.auth.settings:get_auth_settings"
REVOCATION_SLACK_S = 60


def _normalize(email: str) -> str:
    try:
        normalized: str = components.load(f"{ACCOUNTS}:normalize_email")(email)
    except ValueError as exc:
        raise click.ClickException(f"email {exc}") from None
    return normalized


def _read_password(from_stdin: bool, email: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        components.load(f"{PASSWORDS}:check_strength")(password, email)
    except ValueError as exc:
        raise click.ClickException(f"password {exc}") from None
    return password


def _revoke_access_tokens(user_id: uuid.UUID) -> str:
    """Void the user's access tokens now through Redis (they would die within 15 minutes anyway)."""
    import redis

    from cluster.cli import _settings
    from cluster.keys import tokens_not_before_key
    from cluster.services import EmbeddedRedis

    settings = _settings()
    url = settings.redis_url or EmbeddedRedis(settings.resolved_data_dir).url
    ttl = int(components.load(AUTH_SETTINGS)().access_token_ttl_s) + REVOCATION_SLACK_S
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.set(tokens_not_before_key(str(user_id)), int(time.time() * 1000), ex=ttl)
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f" (Redis unreachable: {type(exc).__name__}; open access tokens expire within {ttl // 60} minutes)"
    return ""


@click.group()
def users() -> None:
    """Create, list, disable and enable accounts; reset MFA."""


@users.command("create")
@click.argument("email")
@click.option("--admin", is_flag=True, help="Give the account the admin role.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def users_create(email: str, admin: bool, password_stdin: bool) -> None:
    """Create an account (prompts for the password)."""
    from cluster.cli import _settings, _with_pool, console
    from cluster.store.users import EmailTakenError, create_user

    normalized = _normalize(email)
    password = _read_password(password_stdin, normalized)
    password_hash = components.load(f"{PASSWORDS}:hash_password_sync")(password)

    async def create(pool: Any) -> Any:
        # The operator vouches for the address (self-service sign-ups stay unverified: no mail is
        # sent), so a provider login with this email links without claiming the account.
        return await create_user(pool, normalized, password_hash, role="admin" if admin else "reader",
                                 email_verified=True)

    try:
        user = _with_pool(_settings(), create)
    except EmailTakenError:
        raise click.ClickException(f"an account with email {normalized} already exists") from None
    console.print(f"created {user.role} {user.email} ({user.id})")


@users.command("list")
def users_list() -> None:
    """Every account with its role and state."""
    from rich.table import Table

    from cluster.cli import _settings, _with_pool, console
    from cluster.store.users import list_users

    found, total = _with_pool(_settings(), lambda pool: list_users(pool, limit=100000, offset=0))
    table = Table("id", "email", "role", "state", "mfa", "created", "last login")
    for u in found:
        table.add_row(str(u.id), u.email, u.role, "[red]disabled[/red]" if u.disabled else "active",
                      "on" if u.mfa_enabled else "-", u.created_at.strftime("%Y-%m-%d"),
                      u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "-")
    console.print(table)
    console.print(f"{total} users")


def _find(pool: Any, email: str) -> Any:
    from cluster.store.users import get_user_by_email

    return get_user_by_email(pool, email)


def _user_or_fail(email: str) -> tuple[Any, str]:
    from cluster.cli import _settings, _with_pool

    normalized = _normalize(email)
    user = _with_pool(_settings(), lambda pool: _find(pool, normalized))
    if user is None:
        raise click.ClickException(f"no account with email {normalized}")
    return user, normalized


@users.command("disable")
@click.argument("email")
def users_disable(email: str) -> None:
    """Disable an account and end all of its sessions."""
    from cluster.cli import _settings, _with_pool, console
    from cluster.store.tokens import revoke_all
    from cluster.store.users import set_disabled

    user, normalized = _user_or_fail(email)

    async def disable(pool: Any) -> int:
        await set_disabled(pool, user.id, True)
        return await revoke_all(pool, user.id)

    revoked = _with_pool(_settings(), disable)
    note = _revoke_access_tokens(user.id)
    console.print(f"disabled {normalized}; {revoked} refresh token(s) revoked{note}")


@users.command("enable")
@click.argument("email")
def users_enable(email: str) -> None:
    """Enable a disabled account."""
    from cluster.cli import _settings, _with_pool, console
    from cluster.store.users import set_disabled

    user, normalized = _user_or_fail(email)
    _with_pool(_settings(), lambda pool: set_disabled(pool, user.id, False))
    console.print(f"enabled {normalized}")


@users.command("reset-mfa")
@click.argument("email")
def users_reset_mfa(email: str) -> None:
    """Turn a user's MFA off (lost device, or the app secret changed); they can enrol again."""
    from cluster.cli import _settings, _with_pool, console
    from cluster.store.users import disable_totp

    user, normalized = _user_or_fail(email)
    _with_pool(_settings(), lambda pool: disable_totp(pool, user.id))
    console.print(f"MFA reset for {normalized}: the secret, backup codes and lock are gone")


