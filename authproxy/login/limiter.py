"""Slowing down password guessing: failed password logins counted per address and per user.

An address with ``max_failures_per_address`` failures, or a user name with
``max_failures_per_user`` failures, within ``window`` seconds gets no further password checks
until the oldest of those failures leaves the window; a successful login clears the user's
count. The per-user limit bounds guessing one account from many addresses, at the price that
someone can keep that account's password login shut (its OIDC login and keys are unaffected).

A check is counted as a failure *before* it runs (``begin``), and only a right password takes
that back, so guesses sent all at once cannot all be checked while the first ones are still in
argon2id: at most the limit are. A check that never finishes (the client went away) stays
counted.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

from authproxy.config.login import PasswordLogin as Settings

MAX_TRACKED = 50_000


class _Hit:
    """One counted attempt (an object, so that exactly this one can be taken back)."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class _Windows:
    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._hits: dict[str, deque[_Hit]] = {}

    def _recent(self, key: str, mono: float) -> deque[_Hit] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0].at <= mono - self._window:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        return hits

    def retry_after(self, key: str, mono: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        hits = self._recent(key, mono)
        if hits is None or len(hits) < self._limit:
            return 0.0
        return hits[-self._limit].at + self._window - mono

    def add(self, key: str, hit: _Hit) -> None:
        if key not in self._hits and len(self._hits) >= MAX_TRACKED:
            for stale in [k for k in self._hits if self._recent(k, hit.at) is None]:
                self._hits.pop(stale, None)
            if len(self._hits) >= MAX_TRACKED:
                self._hits.pop(next(iter(self._hits)))
        hits = self._hits.setdefault(key, deque())
        if not any(h is hit for h in hits):
            hits.append(hit)

    def remove(self, key: str, hit: _Hit) -> None:
        hits = self._hits.get(key)
        if hits is None:
            return
        for index, held in enumerate(hits):
            if held is hit:
                del hits[index]
                break
        if not hits:
            del self._hits[key]

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)


@dataclass(frozen=True, slots=True)
class Attempt:
    """A password check for (address, user): counted as a failure from ``begin`` on."""

    address: str
    user: str
    wait: int  # > 0: refused, no check may run; whole seconds until one may
    hit: _Hit


class LoginLimiter:
    def __init__(self, settings: Settings) -> None:
        self._by_address = _Windows(settings.max_failures_per_address, settings.window)
        self._by_user = _Windows(settings.max_failures_per_user, settings.window)

    def begin(self, address: str, user: str) -> Attempt:
        """Count a check about to run as a failure, or refuse it (``wait`` > 0).

        Nothing may be awaited between the limit check and the count: this is what keeps
        concurrent guesses within the limit.
        """
        mono = time.monotonic()
        key = user.casefold()
        wait = max(
            self._by_address.retry_after(address, mono), self._by_user.retry_after(key, mono)
        )
        attempt = Attempt(address, key, math.ceil(wait) if wait > 0 else 0, _Hit(mono))
        if not attempt.wait:
            self._by_address.add(address, attempt.hit)
            self._by_user.add(key, attempt.hit)
        return attempt

    def failed(self, attempt: Attempt) -> None:
        """The password was wrong: it stays counted (again, if a success cleared it meanwhile)."""
        if attempt.wait:
            return  # refused: nothing was checked
        self._by_address.add(attempt.address, attempt.hit)
        self._by_user.add(attempt.user, attempt.hit)

    def release(self, attempt: Attempt) -> None:
        """The password was right: this check is no failure (the user's count stays)."""
        self._by_address.remove(attempt.address, attempt.hit)
        self._by_user.remove(attempt.user, attempt.hit)

    def succeeded(self, attempt: Attempt) -> None:
        """A login went through: the check is no failure and the user's count starts over."""
        self._by_address.remove(attempt.address, attempt.hit)
        self._by_user.clear(attempt.user)
