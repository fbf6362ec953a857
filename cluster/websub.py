"""WebSub (W3C) subscriber essentials shared by the crawler and the Api callback route."""

from __future__ import annotations

import hashlib
import hmac

# Hubs sign with one of these (the spec's list); sha1 is still the most common in the wild.
SIGNATURE_ALGORITHMS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha384": hashlib.sha384,
                        "sha512": hashlib.sha512}
DEFAULT_LEASE_S = 10 * 24 * 3600
# Renew when less than this is left, so a lease never lapses between two crawls.
RENEW_BEFORE_S = 24 * 3600


def callback_url(public_url: str, source_id: int) -> str:
    return f"{public_url.rstrip('/')}/websub/{source_id}"


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Check `X-Hub-Signature: <algo>=<hex>` against the body, in constant time."""
    if not header or "=" not in header:
        return False
    algorithm, _, received = header.strip().partition("=")
    digest = SIGNATURE_ALGORITHMS.get(algorithm.lower())
    if digest is None:
        return False
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    return hmac.compare_digest(expected, received.strip().lower())
