"""Account logic shared by the routes and the CLI: email normalization, sessions, MFA checks,
provider sign-in, revocation. Routes translate the outcomes into HTTP."""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from cluster.store import mfa as mfa_store
from cluster.store import tokens as token_store
from cluster.store import users as user_store
from cluster.store.users import User
from deployments.auth import mfa
from deployments.auth.context import AuthContext
from deployments.auth.csrf import csrf_token
from deployments.auth.tokens import REFRESH_PREFIX, new_opaque_token, token_hash

logger = logging.getLogger("newsray.auth")

MAX_EMAIL = 254
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_email(value: str) -> str:
    """Trimmed, lower case, IDNA domain. Local parts are limited to ASCII: case folding of
    other scripts differs between Python and PostgreSQL, and two spellings of one address
    must never become two accounts."""
    value = unicodedata.normalize("NFKC", value).strip()
    if value.count("@") != 1 or len(value) > MAX_EMAIL:
        raise ValueError("is not a valid email address")
    local, domain = value.split("@")
    if not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError("is not a valid email address")
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise ValueError("is not a valid email address") from None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("is not a valid email address")
    email = f"{local.lower()}@{domain}"
    if len(email) > MAX_EMAIL:
        raise ValueError("is not a valid email address")
    return email


def account_subject(context: AuthContext, email: str) -> tuple[str, str]:
    """The rate-limit subject of an account: a keyed hash, so Redis holds no email addresses."""
    return "account", context.keys.mac(context.keys.rate_limit, email).hex()[:32]


@dataclass(frozen=True, slots=True)
class IssuedSession:
    access_token: str
    refresh_token: str
    session_id: uuid.UUID
    csrf_token: str
    expires_in: int


async def start_session(context: AuthContext, pool: asyncpg.Pool, user: User,
                        user_agent: str | None = None) -> IssuedSession:
    """A new sign-in: a refresh-token family and an access token."""
    refresh = new_opaque_token(REFRESH_PREFIX)
    record = await token_store.create_refresh_token(pool, user.id, token_hash(refresh),
                                                    context.settings.refresh_token_ttl_s, user_agent=user_agent)
    await user_store.record_login(pool, user.id)
    return _issued(context, user, record.family_id, refresh)


def _issued(context: AuthContext, user: User, family_id: uuid.UUID, refresh: str) -> IssuedSession:
    return IssuedSession(
        access_token=context.tokens.issue(user.id, user.role, family_id),
        refresh_token=refresh, session_id=family_id, csrf_token=csrf_token(context.keys.csrf, family_id),
        expires_in=context.settings.access_token_ttl_s,
    )


RefreshOutcome = Literal["ok", "reused", "invalid", "disabled"]


async def refresh_session(context: AuthContext, pool: asyncpg.Pool, presented: str,
                          user_agent: str | None = None) -> tuple[RefreshOutcome, IssuedSession | None, User | None]:
    successor = new_opaque_token(REFRESH_PREFIX)
    outcome, record = await token_store.rotate_refresh_token(
        pool, token_hash(presented), token_hash(successor), context.settings.refresh_token_ttl_s, user_agent)
    if outcome is token_store.Rotation.REUSED:
        logger.warning("auth: a rotated refresh token was presented again; its session was revoked")
        return "reused", None, None
    if record is None:
        return "invalid", None, None
    user = await user_store.get_user(pool, record.user_id)
    if user is None or user.disabled:
        await token_store.revoke_family(pool, record.family_id, record.user_id)
        return "disabled", None, None
    return "ok", _issued(context, user, record.family_id, successor), user


async def revoke_everything(context: AuthContext, pool: asyncpg.Pool, user_id: uuid.UUID,
                            keep_family: uuid.UUID | None = None) -> None:
    """End every sign-in of the user (refresh tokens now, access tokens via "not before")."""
    await token_store.revoke_all(pool, user_id, except_family=keep_family)
    await context.api_limiter.revoke_tokens(user_id)


# --------------------------------------------------------------------------- MFA


async def open_challenge(context: AuthContext, pool: asyncpg.Pool, user: User) -> str:
    from deployments.auth.tokens import MFA_PREFIX

    token = new_opaque_token(MFA_PREFIX)
    await mfa_store.create_challenge(pool, user.id, token_hash(token), context.settings.mfa_token_ttl_s)
    return token


CodeCheck = Literal["totp", "backup", "wrong"]


async def check_code(context: AuthContext, pool: asyncpg.Pool, user: User, code: str) -> CodeCheck:
    """A TOTP code (its time step claimed, so never accepted twice) or an unused backup code."""
    if not user.mfa_enabled or user.totp_secret is None:
        return "wrong"
    if mfa.is_totp_code(code):
        secret = mfa.decrypt_secret(context.keys.totp_encryption, user.id, user.totp_secret)
        step = mfa.matching_step(secret, code)
        if step is not None and await user_store.claim_totp_step(pool, user.id, step):
            return "totp"
        return "wrong"
    normalized = mfa.normalize_code(code)
    if len(normalized) != mfa.BACKUP_LENGTH:
        return "wrong"
    if await mfa_store.use_backup_code(pool, user.id, mfa.backup_code_hash(context.keys.backup_codes, user.id, code)):
        return "backup"
    return "wrong"


async def issue_backup_codes(context: AuthContext, pool: asyncpg.Pool, user_id: uuid.UUID) -> list[str]:
    codes = mfa.new_backup_codes()
    await mfa_store.replace_backup_codes(
        pool, user_id, [mfa.backup_code_hash(context.keys.backup_codes, user_id, code) for code in codes])
    return codes


# --------------------------------------------------------------------------- OpenID Connect


class ProviderLoginError(Exception):
    """The provider's answer cannot sign anyone in; the message is for the user."""


async def provider_user(context: AuthContext, pool: asyncpg.Pool, provider: str, userinfo: dict[str, Any]) -> User:
    """The account for a provider identity: the linked one; else the account with the same
    email, but only when the provider says it verified that email; else a new account (again
    only with a verified email, so no one can claim an address they do not own).

    An existing account whose email was never verified (a password sign-up: we send no mail)
    may have been registered by someone else in advance, waiting for the real owner to arrive
    ("pre-account takeover"). Linking it claims it: its password, MFA and sessions are wiped,
    so the earlier registrant is locked out."""
    subject = str(userinfo.get("sub") or "")
    if not subject:
        raise ProviderLoginError("auth: the identity provider sent no subject")
    identity = await user_store.get_identity(pool, provider, subject)
    if identity is not None:
        user = await user_store.get_user(pool, identity.user_id)
        if user is not None:
            return user
    raw_email = userinfo.get("email")
    verified = userinfo.get("email_verified") is True or userinfo.get("email_verified") == "true"
    if not isinstance(raw_email, str) or not verified:
        raise ProviderLoginError("auth: the identity provider did not confirm your email address, so it can "
                                 "neither be linked to an account nor start one")
    try:
        email = normalize_email(raw_email)
    except ValueError:
        raise ProviderLoginError("auth: the identity provider sent an unusable email address") from None
    for attempt in range(2):
        try:
            async with pool.acquire() as conn, conn.transaction():
                user = await user_store.get_user_by_email(conn, email)
                claimed = False
                if user is None:
                    user = await user_store.create_user(conn, email, None, email_verified=True)
                elif not user.email_verified:
                    await user_store.claim_unverified_account(conn, user.id)
                    claimed = True
                await user_store.link_identity(conn, provider, subject, user.id, email)
            if claimed:
                logger.warning("auth: an unverified account was claimed by its email's verified owner at %s", provider)
                await context.api_limiter.revoke_tokens(user.id)
                user = await user_store.get_user(pool, user.id) or user
            return user
        except user_store.EmailTakenError:
            if attempt:  # a concurrent first sign-in created it; the second pass links to it
                raise
    raise AssertionError("unreachable")
