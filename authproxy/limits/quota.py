"""Per-user limits: requests per minute, concurrent requests, tokens per day and per month.

Limits come from the user's role, overridden per user from the store (``authproxy users
quota``); a change made by any process applies within a second (``StoreWatch``).

Token quotas are enforced by reservation: before a request is forwarded it reserves its prompt
estimate (an upper bound, ``proxy/prompt_estimate.py``) plus its output limit (the client's, or
``quotas.default_max_tokens``) times the outputs it asks for (``n``, several prompts) against
what remains; with ``clamp_max_tokens`` the limit is lowered to fit. The engine always runs
the limit reserved: it is written into the body it gets (``proxy/output_limits.py``). Afterwards the
reservation is replaced by the engine's real count. The rules are ``store/quota_rules.py``.

A ``QuotaBook`` admits and settles; there are two, chosen by the deployment (``app.py``):

- ``quota_local.LocalQuotaBook``: counters in this process (one gateway process on SQLite).
  Admission and reservation are one step of the event loop, so N simultaneous requests never
  reserve more than remains.
- ``quota_shared.SharedQuotaBook``: counters in the database, shared by every gateway process
  and machine (PostgreSQL, or several workers on one SQLite file). Admission and reservation are
  one atomic step in the database (one round trip), with the same rules and the same bound.

Overshoot bound: with clamping, none — a user's tokens end at most at the quota — as long as
prompt estimates bound the engine's count (they do for text; inline images and audio count a
configured allowance). Without clamping, add each in-flight request's own reservation.
"""

from __future__ import annotations

import secrets
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from authproxy.auth.principal import Principal
from authproxy.config.schema import Quotas, Role
from authproxy.errors import RateLimited
from authproxy.limits.windows import CalendarWindows
from authproxy.store.quota_records import QuotaAnswer, QuotaAsk, Window
from authproxy.store.quota_rules import retry_seconds
from authproxy.store.records import UNLIMITED, QuotaOverride

__all__ = [
    "Admission",
    "Limits",
    "QuotaBook",
    "QuotaExceeded",
    "QuotaRefused",
    "Reservable",
    "Windows",
    "ask_for",
    "new_lease_id",
    "refusal",
    "resolve_limits",
]


class Reservable(Protocol):
    """What a request reserves tokens by (the request path's ``PreparedRequest``)."""

    @property
    def prompt_estimate(self) -> int: ...  # an upper bound of the engine's prompt count
    @property
    def outputs(self) -> int: ...  # completions it may generate (0: it generates nothing)
    @property
    def limit(self) -> int: ...  # its output limit per output
    @property
    def reserved_output(self) -> int: ...  # its output limit times its outputs
    def with_limit(self, limit: int) -> Self: ...  # the same with a lower limit per output


R = TypeVar("R", bound=Reservable)
R_co = TypeVar("R_co", bound=Reservable, covariant=True)


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

    @property
    def any(self) -> bool:
        return not (
            self.requests_per_minute is None
            and self.max_concurrent is None
            and self.tokens_per_day is None
            and self.tokens_per_month is None
        )


def _pick(override: int | None, default: int | None) -> int | None:
    if override is None:
        return default
    return None if override == UNLIMITED else override


_NO_OVERRIDE = QuotaOverride(0)  # most users have none: not one made per request


def resolve_limits(role: Role | None, override: QuotaOverride | None) -> Limits:
    """The role's defaults with the user's overrides on top (None = no limit)."""
    role = role or Role()
    o = override or _NO_OVERRIDE
    return Limits(
        _pick(o.requests_per_minute, role.requests_per_minute),
        _pick(o.max_concurrent, role.max_concurrent),
        _pick(o.tokens_per_day, role.tokens_per_day),
        _pick(o.tokens_per_month, role.tokens_per_month),
    )


class Windows:
    """The current day and month in the configured time zone (recomputed when the day ends)."""

    def __init__(self, *, timezone: str) -> None:
        self._calendar = CalendarWindows(timezone=timezone)
        self._current = (Window(0.0, 0.0), Window(0.0, 0.0))

    def at(self, t: float) -> tuple[Window, Window]:
        day, month = self._current
        if not day.start <= t < day.end:
            day, month = Window(*self._calendar.day(t)), Window(*self._calendar.month(t))
            self._current = (day, month)
        return day, month


def new_lease_id() -> int:
    """A lease id no other gateway will choose (63 random bits: a positive BIGINT)."""
    return secrets.randbits(63)


def ask_for(
    *,
    user_id: int,
    limits: Limits,
    prepared: Reservable,
    settings: Quotas,
    windows: Windows,
    now: float,
    expires_at: float,
    lease_id: int = 0,
) -> QuotaAsk:
    day, month = windows.at(now)
    return QuotaAsk(
        lease_id=lease_id,
        user_id=user_id,
        now=now,
        expires_at=expires_at,
        requests_per_minute=limits.requests_per_minute,
        max_concurrent=limits.max_concurrent,
        tokens_per_day=limits.tokens_per_day,
        tokens_per_month=limits.tokens_per_month,
        day=day,
        month=month,
        prompt=prepared.prompt_estimate,
        outputs=prepared.outputs,
        limit=prepared.limit,
        clamp=settings.clamp_max_tokens,
    )


def refusal(answer: QuotaAnswer, limits: Limits) -> QuotaRefused:
    """The 429 for a refused admission, with an honest ``Retry-After``."""
    reason = answer.refused or "other"
    headers = {"Retry-After": str(retry_seconds(answer.retry_after))}
    if reason == "rpm":
        message = f"rate limit: {limits.requests_per_minute} requests per minute"
        return QuotaRefused(message, reason=reason, headers=headers)
    if reason == "concurrency":
        message = f"rate limit: at most {limits.max_concurrent} concurrent requests"
        return QuotaRefused(message, reason=reason, headers=headers)
    what = reason.removeprefix("tokens_")
    if answer.remaining is not None and answer.remaining > 0:
        message = f"token quota too low for this prompt ({answer.remaining} tokens left)"
    else:
        limit = limits.tokens_per_day if what == "day" else limits.tokens_per_month
        message = f"token quota exhausted: {limit} tokens per {what}"
    return QuotaExceeded(message, reason=reason, headers=headers)


class Admission(Protocol[R_co]):
    """One admitted request's hold; ``settle`` exactly once (later calls do nothing)."""

    @property
    def prepared(self) -> R_co: ...  # the request as admitted (its limit may be lowered)
    def settle(self, used_tokens: int) -> None: ...  # never blocks


class QuotaBook(Protocol):
    def limits(self, principal: Principal) -> Limits: ...
    async def admit(self, principal: Principal, prepared: R) -> Admission[R]: ...  # or 429
    async def used(self, user_id: int) -> tuple[int, int]: ...  # tokens today, this month
    async def reload(self) -> None: ...  # the per-user overrides changed (StoreWatch)
    def running(self) -> AbstractAsyncContextManager[None]: ...  # its background work
