"""Keys derived from the application secret, one per purpose.

HKDF with a distinct `info` per purpose: a token made for one purpose (an OIDC sign-in cookie)
can never verify as another (an access token), and no purpose ever sees the secret itself.
Derived once per process and secret (HKDF costs ~20 µs; a request must not pay it).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SALT = b"newsray accounts"


def derive(secret: str, purpose: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=SALT,
                info=f"newsray/v1/{purpose}".encode()).derive(secret.encode())


@dataclass(frozen=True)
class Keys:
    access_token: bytes
    csrf: bytes
    totp_encryption: bytes
    backup_codes: bytes
    oidc_state: bytes
    rate_limit: bytes

    def mac(self, key: bytes, *parts: str) -> bytes:
        return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).digest()


@lru_cache(maxsize=4)
def keys_for(secret: str) -> Keys:
    if not secret:
        raise ValueError("auth: the application secret is empty")
    return Keys(
        access_token=derive(secret, "jwt-access"),
        csrf=derive(secret, "csrf"),
        totp_encryption=derive(secret, "totp-secret-encryption"),
        backup_codes=derive(secret, "mfa-backup-codes"),
        oidc_state=derive(secret, "oidc-state-cookie"),
        rate_limit=derive(secret, "rate-limit-subjects"),
    )
