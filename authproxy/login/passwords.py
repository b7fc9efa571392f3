"""Local passwords: argon2id (argon2-cffi's RFC 9106 profile), verified off the event loop.

Verification costs tens of milliseconds of CPU and 64 MiB by design, so it runs in a thread and
at most ``MAX_PARALLEL`` at a time: a flood of login attempts queues instead of starving the
gateway. An unknown user name costs one verification too (against a dummy hash), so the answer
time does not tell which names exist.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "MAX_LENGTH",
    "MAX_PARALLEL",
    "MIN_LENGTH",
    "PasswordPolicyError",
    "PasswordVerifier",
    "Verdict",
    "check_policy",
    "hash_password",
    "verify_password",
]

MIN_LENGTH = 8
MAX_LENGTH = 1024
MAX_PARALLEL = 2

_hasher = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
_DUMMY_HASH = _hasher.hash("not the password of anybody")


class PasswordPolicyError(ValueError):
    pass


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(f"the password must have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    new_hash: str | None = None  # set when the stored hash used weaker parameters: store this


def verify_password(stored_hash: str | None, password: str) -> Verdict:
    """Blocking: check ``password`` against ``stored_hash`` (None: no password set)."""
    if len(password) > MAX_LENGTH:
        return Verdict(False)
    try:
        _hasher.verify(stored_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return Verdict(False)
    if stored_hash is None:
        return Verdict(False)
    if _hasher.check_needs_rehash(stored_hash):
        return Verdict(True, _hasher.hash(password))
    return Verdict(True)


class PasswordVerifier:
    """Runs ``verify_password`` in the default executor, a bounded number at a time."""

    def __init__(self, parallel: int = MAX_PARALLEL) -> None:
        self._slots = asyncio.Semaphore(parallel)

    async def verify(self, stored_hash: str | None, password: str) -> Verdict:
        async with self._slots:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, verify_password, stored_hash, password)
