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
from dataclasses import dataclass

from authproxy.config.login import PasswordLogin as Settings
from authproxy.limits.sliding_window import Hit, SlidingWindow

__all__ = ["MAX_TRACKED", "Attempt", "LoginLimiter"]

MAX_TRACKED = 50_000


@dataclass(frozen=True, slots=True)
class Attempt:
    """A password check for (address, user): counted as a failure from ``begin`` on."""

    address: str
    user: str
    wait: int  # > 0: refused, no check may run; whole seconds until one may
    hit: Hit


class LoginLimiter:
    def __init__(self, settings: Settings) -> None:
        self._per_address = settings.max_failures_per_address
        self._per_user = settings.max_failures_per_user
        self._by_address = SlidingWindow[str](window=settings.window, max_keys=MAX_TRACKED)
        self._by_user = SlidingWindow[str](window=settings.window, max_keys=MAX_TRACKED)

    def begin(self, address: str, user: str) -> Attempt:
        """Count a check about to run as a failure, or refuse it (``wait`` > 0).

        Nothing may be awaited between the limit check and the count: this is what keeps
        concurrent guesses within the limit.
        """
        mono = time.monotonic()
        key = user.casefold()
        wait = max(
            self._by_address.retry_after(address, self._per_address, mono),
            self._by_user.retry_after(key, self._per_user, mono),
        )
        attempt = Attempt(address, key, math.ceil(wait) if wait > 0 else 0, Hit(mono))
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
