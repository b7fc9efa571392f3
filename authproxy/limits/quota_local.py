"""The quota book of one gateway process: counters in memory, rebuilt from the usage table at
start. Checks and reservation are one step of the event loop (``admit_now`` never awaits), so
50 simultaneous requests against room for 10 admit exactly 10.

Used alone by a single gateway process on SQLite; inside ``SharedQuotaBook`` it keeps this
process's share (its requests in flight, its rate) and decides alone while the database is away.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, Protocol

from authproxy.auth.principal import Principal
from authproxy.clock import now
from authproxy.config.schema import Quotas, Role
from authproxy.limits.quota import (
    Limits,
    R,
    Windows,
    ask_for,
    refusal,
    resolve_limits,
)
from authproxy.limits.sliding_window import Hit, SlidingWindow
from authproxy.store.contracts import QuotaLedgerStore, QuotaStore, UsageStore
from authproxy.store.quota_records import RPM_WINDOW, QuotaState, Window
from authproxy.store.quota_rules import decide
from authproxy.store.records import QuotaOverride

__all__ = ["LocalAdmission", "LocalQuotaBook", "LocalQuotaStore"]

NO_WINDOW = Window(0.0, 0.0)


class LocalQuotaStore(QuotaStore, UsageStore, QuotaLedgerStore, Protocol):
    """What the local book reads: overrides, and the tokens charged so far (usage table)."""


@dataclass(slots=True)
class _Counters:
    concurrent: int = 0
    day: Window = NO_WINDOW
    day_used: int = 0
    month: Window = NO_WINDOW
    month_used: int = 0
    reserved: int = 0


class LocalAdmission(Generic[R]):
    """One admitted request's hold on its user's counters in this process."""

    __slots__ = ("_book", "_counters", "_settled", "prepared", "reserved", "user_id")

    def __init__(
        self, *, book: LocalQuotaBook, counters: _Counters, user_id: int, reserved: int, prepared: R
    ) -> None:
        self._book = book
        self._counters = counters
        self._settled = False
        self.user_id = user_id
        self.reserved = reserved
        self.prepared = prepared

    def settle(self, used_tokens: int) -> None:
        if self._settled:
            return
        self._settled = True
        c = self._counters
        c.concurrent -= 1
        c.reserved -= self.reserved
        self._book.charge(c, used_tokens)


class LocalQuotaBook:
    def __init__(self, *, store: LocalQuotaStore, roles: dict[str, Role], settings: Quotas) -> None:
        self._store = store
        self._roles = roles
        self._settings = settings
        self._windows = Windows(timezone=settings.timezone)
        self._overrides: dict[int, QuotaOverride] = {}
        # A principal's limits, resolved once per role and user (overrides: until reloaded).
        self._limits: dict[tuple[str, int], Limits] = {}
        self._counters: dict[int, _Counters] = {}
        self._rpm = SlidingWindow[int](window=RPM_WINDOW)  # each user's admitted requests

    # -- state ------------------------------------------------------------------------------

    async def reload(self) -> None:
        """Re-read per-user overrides (subscribed to ``StoreWatch``)."""
        self._overrides = await self._store.quota_overrides()
        self._limits = {}

    async def rebuild(self) -> None:
        """Token counters of the current day and month from the usage table (at start)."""
        day, month = self._windows.at(now())
        day_used = await self._store.token_totals_since(day.start)
        month_used = await self._store.token_totals_since(month.start)
        for user_id in set(day_used) | set(month_used):
            c = self._counters.setdefault(user_id, _Counters())
            c.day, c.day_used = day, day_used.get(user_id, 0)
            c.month, c.month_used = month, month_used.get(user_id, 0)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # The database's counters are not kept while this process counts alone: a gateway
        # that shares them later rebuilds them from the usage table.
        await self._store.quota_begin(shared=False, now=now())
        await self.rebuild()
        yield

    def limits(self, principal: Principal) -> Limits:
        key = (principal.role, principal.user_id)
        limits = self._limits.get(key)
        if limits is None:
            limits = self._limits[key] = resolve_limits(
                self._roles.get(principal.role), self._overrides.get(principal.user_id)
            )
        return limits

    def _current(self, user_id: int, t: float) -> _Counters:
        c = self._counters.setdefault(user_id, _Counters())
        day, month = self._windows.at(t)
        if c.day != day:
            c.day, c.day_used = day, 0
        if c.month != month:
            c.month, c.month_used = month, 0
        return c

    def charge(self, c: _Counters, tokens: int) -> None:
        day, month = self._windows.at(now())
        c.day_used = c.day_used + tokens if c.day == day else tokens
        c.month_used = c.month_used + tokens if c.month == month else tokens
        c.day, c.month = day, month

    def sync(self, user_id: int, *, used_day: int, used_month: int) -> None:
        """Take the counts another book knows (the database's) as this user's charged tokens."""
        c = self._current(user_id, now())
        c.day_used, c.month_used = used_day, used_month

    async def used(self, user_id: int) -> tuple[int, int]:
        """Tokens charged today and this month (reservations not included)."""
        return self.used_now(user_id)

    def used_now(self, user_id: int) -> tuple[int, int]:
        if user_id not in self._counters:
            return 0, 0
        c = self._current(user_id, now())
        return c.day_used, c.month_used

    # -- admission --------------------------------------------------------------------------

    async def admit(self, principal: Principal, prepared: R) -> LocalAdmission[R]:
        return self.admit_now(principal, prepared)

    def admit_now(self, principal: Principal, prepared: R) -> LocalAdmission[R]:
        """Admit or raise 429; never awaits, so checks and reservation are one atomic step."""
        limits = self.limits(principal)
        if not limits.any:  # nothing to check or reserve (as the shared book): only charged
            return self.track(principal.user_id, 0, prepared, counted=False)
        user, t, mono = principal.user_id, now(), time.monotonic()
        c = self._current(user, t)
        ask = ask_for(
            user_id=user,
            limits=limits,
            prepared=prepared,
            settings=self._settings,
            windows=self._windows,
            now=t,
            expires_at=t,
        )
        rpm = limits.requests_per_minute
        wait = 0.0
        if rpm is not None:
            wait = self._rpm.retry_after(user, rpm, mono) if rpm > 0 else RPM_WINDOW
        state = QuotaState(
            recent=len(self._rpm.recent(user, mono)),
            rpm_wait=wait,
            live=c.concurrent,
            held=c.reserved,
            used_day=c.day_used,
            used_month=c.month_used,
        )
        answer = decide(ask, state)
        if answer.refused is not None:
            raise refusal(answer, limits)
        if answer.limit != prepared.limit:
            prepared = prepared.with_limit(answer.limit)
        return self.track(user, answer.reserved, prepared, counted=rpm is not None, mono=mono)

    def track(
        self, user_id: int, reserved: int, prepared: R, *, counted: bool = True, mono: float = 0.0
    ) -> LocalAdmission[R]:
        """Hold an admission in this process's counters (decided here, or by the database)."""
        c = self._current(user_id, now())
        if counted:
            self._rpm.add_new(user_id, Hit(mono or time.monotonic()))
        c.concurrent += 1
        c.reserved += reserved
        return LocalAdmission(
            book=self, counters=c, user_id=user_id, reserved=reserved, prepared=prepared
        )
