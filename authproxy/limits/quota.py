"""Per-user limits: requests per minute, concurrent requests, tokens per day and per month.

Limits come from the user's role, overridden per user from the store (``authproxy users
quota``); a change made by any process applies within a second (``StoreWatch``).

Token quotas are enforced by reservation: before a request is forwarded it reserves its prompt
estimate (an upper bound, ``proxy/prompt_estimate.py``) plus its output limit (the client's, or
``quotas.default_max_tokens``) times the outputs it asks for (``n``, several prompts) against
what remains; with ``clamp_max_tokens`` the limit is lowered to fit. The engine always runs
the limit reserved: it is written into the body it gets (``proxy/output_limits.py``). Afterwards the
reservation is replaced by the engine's real count. Because admission and reservation happen
in one step of the event loop, N simultaneous requests can never reserve more than remains.

Overshoot bound: with clamping, none — a user's tokens end at most at the quota — as long as
prompt estimates bound the engine's count (they do for text; inline images and audio count a
configured allowance). Without clamping, add each in-flight request's own reservation.
Counters live in this process and are rebuilt from the usage table at start; several gateway
replicas each enforce the full quota (a shared store backend would be needed to split it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Generic, Protocol, Self, TypeVar

from authproxy.auth.principal import Principal
from authproxy.clock import now
from authproxy.config.schema import Quotas, Role
from authproxy.errors import RateLimited
from authproxy.limits.sliding_window import Hit, SlidingWindow
from authproxy.limits.windows import CalendarWindows
from authproxy.store.contracts import QuotaStore, UsageStore
from authproxy.store.records import UNLIMITED, QuotaOverride

__all__ = [
    "Admission",
    "Limits",
    "QuotaBook",
    "QuotaBookStore",
    "QuotaExceeded",
    "QuotaRefused",
    "Reservable",
    "resolve_limits",
]


class Reservable(Protocol):
    """What a request reserves tokens by (the request path's ``PreparedRequest``)."""

    @property
    def prompt_estimate(self) -> int: ...  # an upper bound of the engine's prompt count
    @property
    def outputs(self) -> int: ...  # completions it may generate (0: it generates nothing)
    @property
    def reserved_output(self) -> int: ...  # its output limit times its outputs
    def with_limit(self, limit: int) -> Self: ...  # the same with a lower limit per output


R = TypeVar("R", bound=Reservable)


class QuotaBookStore(QuotaStore, UsageStore, Protocol):
    """What the quota book reads: per-user overrides, and the tokens charged so far."""


class QuotaRefused(RateLimited):
    """Over a limit; ``reason`` names which one for the metrics (``registry.QUOTA_REASONS``)."""

    def __init__(self, message: str, *, reason: str, headers: dict[str, str]) -> None:
        super().__init__(message, headers=headers)
        self.reason = reason


class QuotaExceeded(QuotaRefused):
    """Out of tokens for the day or month (``insufficient_quota``)."""

    code = "insufficient_quota"


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_minute: int | None
    max_concurrent: int | None
    tokens_per_day: int | None
    tokens_per_month: int | None


def _pick(override: int | None, default: int | None) -> int | None:
    if override is None:
        return default
    return None if override == UNLIMITED else override


def resolve_limits(role: Role | None, override: QuotaOverride | None) -> Limits:
    """The role's defaults with the user's overrides on top (None = no limit)."""
    role = role or Role()
    o = override or QuotaOverride(0)
    return Limits(
        _pick(o.requests_per_minute, role.requests_per_minute),
        _pick(o.max_concurrent, role.max_concurrent),
        _pick(o.tokens_per_day, role.tokens_per_day),
        _pick(o.tokens_per_month, role.tokens_per_month),
    )


@dataclass(slots=True)
class _Counters:
    concurrent: int = 0
    day_end: float = 0.0
    day_used: int = 0
    month_end: float = 0.0
    month_used: int = 0
    reserved: int = 0


class Admission(Generic[R]):
    """One admitted request's hold on its user's counters; ``settle`` exactly once."""

    __slots__ = ("_book", "_counters", "_settled", "prepared", "reserved", "user_id")

    def __init__(
        self,
        *,
        book: QuotaBook,
        counters: _Counters,
        user_id: int,
        reserved: int,
        prepared: R,
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


class QuotaBook:
    def __init__(self, *, store: QuotaBookStore, roles: dict[str, Role], settings: Quotas) -> None:
        self._store = store
        self._roles = roles
        self._settings = settings
        self._windows = CalendarWindows(timezone=settings.timezone)
        self._overrides: dict[int, QuotaOverride] = {}
        self._counters: dict[int, _Counters] = {}
        self._rpm = SlidingWindow[int](window=60.0)  # each user's admitted requests

    # -- state ------------------------------------------------------------------------------

    async def reload(self) -> None:
        """Re-read per-user overrides (subscribed to ``StoreWatch``)."""
        self._overrides = await self._store.quota_overrides()

    async def rebuild(self) -> None:
        """Token counters of the current day and month from the usage table (at start)."""
        t = now()
        day_start, day_end = self._windows.day(t)
        month_start, month_end = self._windows.month(t)
        day = await self._store.token_totals_since(day_start)
        month = await self._store.token_totals_since(month_start)
        for user_id in set(day) | set(month):
            c = self._counters.setdefault(user_id, _Counters())
            c.day_end, c.day_used = day_end, day.get(user_id, 0)
            c.month_end, c.month_used = month_end, month.get(user_id, 0)

    def limits(self, principal: Principal) -> Limits:
        return resolve_limits(
            self._roles.get(principal.role), self._overrides.get(principal.user_id)
        )

    def _roll(self, c: _Counters, t: float) -> None:
        if t >= c.day_end:
            c.day_used, c.day_end = 0, self._windows.day(t)[1]
        if t >= c.month_end:
            c.month_used, c.month_end = 0, self._windows.month(t)[1]

    def charge(self, c: _Counters, tokens: int) -> None:
        self._roll(c, now())
        c.day_used += tokens
        c.month_used += tokens

    def used(self, user_id: int) -> tuple[int, int]:
        """Tokens charged today and this month (reservations not included)."""
        c = self._counters.get(user_id)
        if c is None:
            return 0, 0
        self._roll(c, now())
        return c.day_used, c.month_used

    # -- admission --------------------------------------------------------------------------

    def admit(self, principal: Principal, prepared: R) -> Admission[R]:
        """Admit or raise 429; never awaits, so checks and reservation are one atomic step."""
        limits = self.limits(principal)
        c = self._counters.setdefault(principal.user_id, _Counters())
        mono = time.monotonic()
        if limits.requests_per_minute is not None:
            recent = self._rpm.recent(principal.user_id, mono)
            if len(recent) >= limits.requests_per_minute:
                wait = math.ceil(recent[0].at + self._rpm.window - mono)
                raise QuotaRefused(
                    f"rate limit: {limits.requests_per_minute} requests per minute",
                    reason="rpm",
                    headers={"Retry-After": str(max(1, wait))},
                )
        if limits.max_concurrent is not None and c.concurrent >= limits.max_concurrent:
            raise QuotaRefused(
                f"rate limit: at most {limits.max_concurrent} concurrent requests",
                reason="concurrency",
                headers={"Retry-After": "1"},
            )
        reservation, prepared = self._reserve(c, limits, prepared)
        if limits.requests_per_minute is not None:
            self._rpm.add(principal.user_id, Hit(mono))
        c.concurrent += 1
        c.reserved += reservation
        return Admission(
            book=self,
            counters=c,
            user_id=principal.user_id,
            reserved=reservation,
            prepared=prepared,
        )

    def _reserve(self, c: _Counters, limits: Limits, prepared: R) -> tuple[int, R]:
        t = now()
        self._roll(c, t)
        remaining: int | None = None
        retry_at, tightest = 0.0, "day"
        for limit, used, end, what in (
            (limits.tokens_per_day, c.day_used, c.day_end, "day"),
            (limits.tokens_per_month, c.month_used, c.month_end, "month"),
        ):
            if limit is None:
                continue
            left = limit - used - c.reserved
            if left <= 0:
                raise QuotaExceeded(
                    f"token quota exhausted: {limit} tokens per {what}",
                    reason=f"tokens_{what}",
                    headers={"Retry-After": str(max(1, math.ceil(end - t)))},
                )
            if remaining is None or left < remaining:
                remaining, retry_at, tightest = left, end, what
        prompt = prepared.prompt_estimate
        reservation = prompt + prepared.reserved_output
        if remaining is None or reservation <= remaining:
            return reservation, prepared
        if not self._settings.clamp_max_tokens or prepared.outputs == 0:
            return reservation, prepared
        per_output = (remaining - prompt) // prepared.outputs
        if per_output < 1:
            raise QuotaExceeded(
                f"token quota too low for this prompt ({remaining} tokens left)",
                reason=f"tokens_{tightest}",
                headers={"Retry-After": str(max(1, math.ceil(retry_at - t)))},
            )
        clamped = prepared.with_limit(per_output)
        return prompt + clamped.reserved_output, clamped
