"""TOTP (RFC 6238 via pyotp): secrets encrypted at rest, codes matched to their time step
(so the store can refuse a replay), QR codes as SVG, and single-use backup codes.
"""

from __future__ import annotations

import hmac
import io
import os
import re
import secrets
import time
import uuid

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ISSUER = "newsray"
STEP_S = 30
DIGITS = 6
# One step either side: phones whose clocks are up to ~30 s off still work; a wider window
# would give a guesser more valid codes per attempt.
VALID_WINDOW = 1
BACKUP_CODE_COUNT = 10
# No 0/o, 1/l/i: codes are read off paper. 31 symbols, 10 of them: ~49.5 bits each.
BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
BACKUP_LENGTH = 10
TOTP_PATTERN = re.compile(r"^\d{6}$")
_NONCE_BYTES = 12


class MfaError(ValueError):
    pass


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters = 160 bits, RFC 4226's recommendation


def encrypt_secret(key: bytes, user_id: uuid.UUID, secret: str) -> bytes:
    """AES-256-GCM; the user id is authenticated data, so a ciphertext copied onto another
    user's row does not decrypt."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, secret.encode(), user_id.bytes)


def decrypt_secret(key: bytes, user_id: uuid.UUID, blob: bytes) -> str:
    try:
        return AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], user_id.bytes).decode()
    except (InvalidTag, ValueError):
        # The application secret changed (or the row was tampered with): the user needs
        # `newsray users reset-mfa`.
        raise MfaError("auth: the stored MFA secret cannot be decrypted") from None


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    buffer = io.BytesIO()
    # xmldecl off: the SVG is embedded in JSON and in pages; a title helps screen readers.
    segno.make(uri, error="m").save(buffer, kind="svg", scale=4, xmldecl=False, svgns=True,
                                    title="TOTP enrolment QR code", border=2)
    return buffer.getvalue().decode()


def normalize_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def is_totp_code(code: str) -> bool:
    return bool(TOTP_PATTERN.match(normalize_code(code)))


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code this is, within the window; None when none matches. Every
    candidate is compared in constant time, and all of them are compared."""
    code = normalize_code(code)
    if not TOTP_PATTERN.match(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = int((time.time() if now is None else now) // STEP_S)
    found = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    return found


def new_backup_codes() -> list[str]:
    codes = []
    for _ in range(BACKUP_CODE_COUNT):
        raw = "".join(secrets.choice(BACKUP_ALPHABET) for _ in range(BACKUP_LENGTH))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def backup_code_hash(key: bytes, user_id: uuid.UUID, code: str) -> bytes:
    """HMAC, not argon2: the codes are ~50 random bits, beyond offline guessing with the key
    unknown, and the key binds each hash to this instance and user."""
    return hmac.new(key, user_id.bytes + normalize_code(code).encode(), "sha256").digest()
