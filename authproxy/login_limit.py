"""Slowing down password guessing: failed password logins counted per address and per user.

An address with ``max_failures_per_address`` failures, or a user name with
``max_failures_per_user`` failures, within ``window`` seconds gets no further password checks
until the oldest of those failures leaves the window; a successful login clears the user's
count. The per-user limit bounds guessing one account from many addresses, at the price that
someone can keep that account's password login shut (its OIDC login and keys are unaffected).
"""

from __future__ import annotations

import math
import time
from collections import deque

from authproxy.config_login import PasswordLogin as Settings

MAX_TRACKED = 50_000


class _Windows:
    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str, mono: float) -> deque[float] | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= mono - self._window:
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
        return hits[-self._limit] + self._window - mono

    def add(self, key: str, mono: float) -> None:
        if key not in self._hits and len(self._hits) >= MAX_TRACKED:
            for stale in [k for k in self._hits if self._recent(k, mono) is None]:
                self._hits.pop(stale, None)
            if len(self._hits) >= MAX_TRACKED:
                self._hits.pop(next(iter(self._hits)))
        self._hits.setdefault(key, deque()).append(mono)

    def clear(self, key: str) -> None:
        self._hits.pop(key, None)


class LoginLimiter:
    def __init__(self, settings: Settings) -> None:
        self._by_address = _Windows(settings.max_failures_per_address, settings.window)
        self._by_user = _Windows(settings.max_failures_per_user, settings.window)

    def retry_after(self, address: str, user: str) -> int:
        """Whole seconds to wait before a password may be checked for this pair (0: go on)."""
        mono = time.monotonic()
        wait = max(
            self._by_address.retry_after(address, mono),
            self._by_user.retry_after(user.casefold(), mono),
        )
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, address: str, user: str) -> None:
        mono = time.monotonic()
        self._by_address.add(address, mono)
        self._by_user.add(user.casefold(), mono)

    def succeeded(self, user: str) -> None:
        self._by_user.clear(user.casefold())
