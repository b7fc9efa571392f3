"""Slowing down key guessing: failed authentications are audited and counted per address.

An address that fails ``max_failures`` times within ``window`` seconds is refused (429 with
``Retry-After``) for ``block`` seconds, whatever it presents. The audit table gets every
failure up to that point and one ``auth.blocked`` entry, never more, so a flood cannot grow
the database; only a key's display prefix is ever recorded.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from authproxy.clock import now
from authproxy.config.schema import AuthThrottle as Settings
from authproxy.errors import RateLimited
from authproxy.limits.sliding_window import Hit, SlidingWindow
from authproxy.store.records import AuditEntry

__all__ = ["MAX_TRACKED", "AuditSink", "AuthThrottle"]

MAX_TRACKED = 100_000


class AuditSink(Protocol):
    """Where the throttle's audit entries go (the batched usage writer)."""

    def audit(self, entry: AuditEntry) -> None: ...


class AuthThrottle:
    def __init__(self, *, settings: Settings, audit: AuditSink) -> None:
        self._settings = settings
        self._audit = audit
        self._failures = SlidingWindow[str](
            window=settings.window, max_keys=MAX_TRACKED, evict=MAX_TRACKED // 2
        )
        self._blocked_until: dict[str, float] = {}

    def check(self, address: str) -> None:
        until = self._blocked_until.get(address)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked_until[address]
            return
        raise RateLimited(
            "too many failed authentications from your address; try again later",
            code="too_many_auth_failures",
            headers={"Retry-After": str(max(1, math.ceil(left)))},
        )

    def failed(self, address: str, *, reason: str, key_prefix: str | None) -> None:
        mono = time.monotonic()
        self._failures.add(address, Hit(mono))
        failures = len(self._failures.recent(address, mono))
        detail = f"reason={reason}" + (f" key={key_prefix}" if key_prefix else "")
        if failures < self._settings.max_failures:
            self._audit.audit(AuditEntry(now(), "anonymous", "auth.failed", None, detail, address))
            return
        if self._settings.block > 0:
            self._blocked_until[address] = mono + self._settings.block
            self._audit.audit(
                AuditEntry(
                    now(),
                    "gateway",
                    "auth.blocked",
                    address,
                    f"{failures} failures in {self._settings.window:g}s;"
                    f" blocked {self._settings.block:g}s",
                    address,
                )
            )
        self._failures.clear(address)
