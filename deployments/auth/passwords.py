"""Password hashing (argon2id) and the strength policy.

Parameters: argon2id, memory 19 MiB, 2 passes, 1 lane: the OWASP Password Storage Cheat Sheet
baseline (equivalent in cost to its 46 MiB/1 pass option). Why not more: a replica runs on a
fraction of a 2-core machine, each concurrent hash holds its memory, and login must stay well
under a second under load; the login and MFA rate limits (10 per 10 minutes per account and
address) do the rest against online guessing, the hash is for offline attacks on a stolen
database, where 19 MiB per guess still defeats GPU farms' memory bandwidth. Raising them later
is safe: hashes made with older parameters are upgraded at the next successful login.

Hashing runs in a worker thread (argon2-cffi releases the GIL) so the event loop keeps serving,
and at most HASH_CONCURRENCY hashes run at once per process, bounding memory and CPU under a
login flood.
"""

from __future__ import annotations

import asyncio
import re
import unicodedata
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TIME_COST = 2
MEMORY_COST_KIB = 19 * 1024
PARALLELISM = 1
HASH_CONCURRENCY = 2

MIN_LENGTH = 10
# argon2 takes any length, but a megabyte "password" is a cheap way to burn server CPU on
# normalization and transport; real passphrases are far shorter.
MAX_LENGTH = 256
MIN_DISTINCT = 5

# The most common passwords of at least MIN_LENGTH characters in public breach lists; a
# minimum length alone lets these through. (A full breach corpus would need a download.)
COMMON_PASSWORDS = frozenset("""
1234567890 0123456789 1234567891 12345678910 1q2w3e4r5t 1qaz2wsx3edc 1q2w3e4r5t6y qwertyuiop
qwertyuiop1 qwerty1234 qwerty12345 qwerty123456 password12 password123 password1234 passw0rd123
password01 iloveyou12 iloveyou123 abcdefghij abcd123456 abc1234567 aaaaaaaaaa 1111111111
0987654321 9876543210 asdfghjkl1 zxcvbnm123 qazwsxedc1 qazwsxedcrfv welcome123 welcome1234
letmein123 football12 football123 baseball123 princess12 sunshine12 superman12 michael123
monkey1234 dragon1234 master1234 trustno1234 starwars12 whatever12 computer12 internet12
changeme12 changeme123 administrator admin12345 admin123456 rootpassword secret1234
newsray123 newsray1234 correcthorsebatterystaple
""".split())

_hasher = PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_COST_KIB, parallelism=PARALLELISM,
                         hash_len=32, salt_len=16, type=Type.ID)


class WeakPasswordError(ValueError):
    """The password fails the policy; the message says why (and never contains it)."""


def normalize(password: str) -> str:
    # NFKC: the same passphrase typed on two keyboards (composed vs. decomposed accents) matches.
    return unicodedata.normalize("NFKC", password)


def check_strength(password: str, email: str | None = None) -> None:
    """NIST SP 800-63B style: length, not a known-common password, not the email; no
    composition rules (they make passwords worse, not stronger)."""
    value = normalize(password)
    if len(value) < MIN_LENGTH:
        raise WeakPasswordError(f"must be at least {MIN_LENGTH} characters")
    if len(value) > MAX_LENGTH:
        raise WeakPasswordError(f"must be at most {MAX_LENGTH} characters")
    if len(set(value)) < MIN_DISTINCT:
        raise WeakPasswordError("is too repetitive")
    folded = re.sub(r"\s+", "", value.casefold())
    if folded in COMMON_PASSWORDS:
        raise WeakPasswordError("is one of the most common passwords")
    if email:
        local = email.split("@", 1)[0].casefold()
        if folded == email.casefold() or (len(local) >= 4 and folded.startswith(local) and len(folded) - len(local) < 4):
            raise WeakPasswordError("is too close to the email address")


# One per event loop: a semaphore is bound to the loop that first waits on it.
_semaphores: dict[int, asyncio.Semaphore] = {}


def _semaphore() -> asyncio.Semaphore:
    loop_id = id(asyncio.get_running_loop())
    semaphore = _semaphores.get(loop_id)
    if semaphore is None:
        semaphore = _semaphores[loop_id] = asyncio.Semaphore(HASH_CONCURRENCY)
    return semaphore


def hash_password_sync(password: str) -> str:
    return _hasher.hash(normalize(password))


def verify_password_sync(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, normalize(password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password_sync("newsray: an unknown account still costs one verification")


def _verify_dummy(password: str) -> None:
    verify_password_sync(_dummy_hash(), password)


async def hash_password(password: str) -> str:
    async with _semaphore():
        return await asyncio.to_thread(hash_password_sync, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the account exists or has a password: an unknown email
    costs the same argon2 verification, so timing does not reveal which emails have accounts."""
    async with _semaphore():
        if password_hash is None:
            await asyncio.to_thread(_verify_dummy, password)
            return False
        return await asyncio.to_thread(verify_password_sync, password_hash, password)


def parameters() -> dict[str, object]:
    """The parameters in force, for reports and the benchmark."""
    return {"algorithm": "argon2id", "time_cost": TIME_COST, "memory_cost_kib": MEMORY_COST_KIB,
            "parallelism": PARALLELISM, "hash_len": 32, "salt_len": 16, "max_concurrent_hashes": HASH_CONCURRENCY}
