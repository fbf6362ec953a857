"""CSRF protection for cookie-authenticated writes: a token bound to the sign-in.

The token is an HMAC of the session id (the refresh-token family), so it needs no storage,
changes with every sign-in, and cannot be forged by someone who can plant cookies (a sibling
subdomain) but does not know the server's key. The page reads it from the `newsray_csrf`
cookie (or the login response) and sends it back in the X-CSRF-Token header; cross-site forms
cannot set headers, and cross-site scripts cannot read the cookie. SameSite cookies are the
second layer. Bearer-token requests need none of this: browsers never attach those on their own.
"""

from __future__ import annotations

import base64
import hmac
import uuid

HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def csrf_token(key: bytes, session_id: uuid.UUID) -> str:
    digest = hmac.new(key, b"csrf:" + session_id.bytes, "sha256").digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_valid(key: bytes, session_id: uuid.UUID, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(key, session_id).encode(), presented.strip().encode())
