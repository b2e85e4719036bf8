"""Password hashing with Argon2id (argon2-cffi, RFC 9106 parameters) and the password rules.

Hashing is deliberately slow (tens of milliseconds, 64 MiB): callers on the event loop run it in a
thread (``hash_password_async`` / ``verify_password_async``).
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from voicebot.errors import InputError

MIN_LENGTH = 10
MAX_LENGTH = 256  # Argon2 takes any length; a bound keeps a request from making us hash megabytes

_HASHER = PasswordHasher()  # argon2id, RFC 9106 "second recommended" (t=3, m=64 MiB, p=4)
# verified against when the user does not exist, so an unknown name takes as long as a wrong password
_DUMMY_HASH = _HASHER.hash("voicebot: no such user")


def check_password_rules(password: str, username: str) -> None:
    """InputError with the reason when ``password`` is not acceptable for ``username``."""
    if not isinstance(password, str):
        raise InputError("the password must be text")
    if len(password) < MIN_LENGTH:
        raise InputError(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise InputError(f"the password must be at most {MAX_LENGTH} characters long")
    if password.strip().lower() == username.strip().lower():
        raise InputError("the password must not be the user name")
    if len(set(password)) < 4:
        raise InputError("the password is too easy to guess (too few different characters)")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; False for a mismatch, a missing or a corrupt hash."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's (rehash at the next login)."""
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, stored_hash, password)
