"""Access tokens (JWT, HS256 with a key derived from the application secret) and the opaque
tokens (refresh, MFA challenge) that are stored hashed.

Access tokens are verified without the database: signature, algorithm (pinned: `none` and
every other algorithm are refused), issuer, audience, type and expiry. That keeps an
authenticated request nearly as cheap as an anonymous one; tokens that must die early are
refused through a per-user "not before" time (see ratelimit.ApiLimiter), checked from memory.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "HS256"
ISSUER = "newsray"
AUDIENCE = "newsray:api"
# RFC 9068's media type for access tokens: a JWT of another kind signed with the same key
# (there is none today) would still be refused.
TOKEN_TYPE = "at+jwt"
REQUIRED_CLAIMS = ("exp", "iat", "sub", "aud", "iss", "sid", "role", "ims")
VERIFIED_CACHE_SIZE = 4096

REFRESH_PREFIX = "nrr_"
MFA_PREFIX = "nrm_"


class TokenError(Exception):
    """The token is not acceptable; the message is safe to show (it never echoes the token)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: from a verified access token."""

    user_id: uuid.UUID
    role: str
    session_id: uuid.UUID
    issued_ms: int
    expires_at: int
    via_cookie: bool = False
    # False for a cookie-authenticated write without a valid X-CSRF-Token header: such a
    # request may still read public data, but never act as the user.
    csrf_ok: bool = True

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class AccessTokens:
    def __init__(self, key: bytes, ttl_s: int) -> None:
        self._key = key
        self.ttl_s = ttl_s
        # Verified tokens by their text: a client sends the same token for up to 15 minutes,
        # and a dict lookup is ~50x cheaper than re-verifying. Expiry is re-checked on use.
        self._verified: OrderedDict[str, tuple[uuid.UUID, str, uuid.UUID, int, int]] = OrderedDict()

    def issue(self, user_id: uuid.UUID, role: str, session_id: uuid.UUID, now: float | None = None) -> str:
        now = time.time() if now is None else now
        claims: dict[str, Any] = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": str(user_id), "role": role, "sid": str(session_id),
            "iat": int(now), "exp": int(now) + self.ttl_s,
            # Milliseconds, for "not before" revocation: iat's whole seconds would let a token
            # issued just before a password change survive it (or kill one issued just after).
            "ims": int(now * 1000),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE})

    def verify(self, token: str, via_cookie: bool = False, now: float | None = None) -> Principal:
        now = time.time() if now is None else now
        cached = self._verified.get(token)
        if cached is None:
            cached = self._verify_signature(token)
            self._verified[token] = cached
            if len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        user_id, role, session_id, issued_ms, expires_at = cached
        if expires_at <= now:
            self._verified.pop(token, None)
            raise TokenError("auth: the access token has expired")
        return Principal(user_id, role, session_id, issued_ms, expires_at, via_cookie)

    def _verify_signature(self, token: str) -> tuple[uuid.UUID, str, uuid.UUID, int, int]:
        if len(token) > 4096:
            raise TokenError("auth: invalid access token")
        try:
            decoded = jwt.api_jwt.decode_complete(
                token, self._key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("auth: the access token has expired") from None
        except jwt.PyJWTError:
            raise TokenError("auth: invalid access token") from None
        header, claims = decoded["header"], decoded["payload"]
        if header.get("typ") != TOKEN_TYPE or header.get("alg") != ALGORITHM:
            raise TokenError("auth: invalid access token")
        try:
            role = claims["role"]
            if role not in ("reader", "admin"):
                raise ValueError(role)
            return (uuid.UUID(claims["sub"]), role, uuid.UUID(claims["sid"]), int(claims["ims"]), int(claims["exp"]))
        except (ValueError, TypeError, AttributeError):
            raise TokenError("auth: invalid access token") from None


def new_opaque_token(prefix: str) -> str:
    """256 random bits; the prefix tells a leaked string's kind (secret scanners, humans)."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
