"""Records of the quota concern (``contracts.QuotaLedgerStore``): what an admission asks, what the
database answers, and what a finished request settles.

An admission is one atomic step in the database: it reads the user's state (requests in the
last minute, requests in flight and the tokens they hold, tokens charged this day and month),
decides with ``quota_rules.decide`` (PostgreSQL: the same rules in ``authproxy_quota_admit``),
and, if admitted, writes a lease. A lease is one request's hold: it counts as a request for
the rate (its ``admitted_at``), and until it is settled or it expires, as a concurrent request
holding its reservation. The replica that admitted it renews it while the request runs; a
crashed replica's leases expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "RPM_WINDOW",
    "QuotaAnswer",
    "QuotaAsk",
    "QuotaSettle",
    "QuotaState",
    "Window",
]

RPM_WINDOW = 60.0  # seconds: "requests per minute" is a sliding window of this length


class Window(NamedTuple):
    """One calendar window of a token quota (a day or a month), epoch seconds. A named tuple:
    compared on every admission and settle (a dataclass compares in Python)."""

    start: float
    end: float


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaAsk:
    """One request asking to be admitted. Limits are None for "no limit"."""

    lease_id: int  # chosen by the caller (random 63 bits): a settle of it is idempotent
    user_id: int
    now: float  # epoch seconds
    expires_at: float  # the lease's end unless renewed
    requests_per_minute: int | None
    max_concurrent: int | None
    tokens_per_day: int | None
    tokens_per_month: int | None
    day: Window
    month: Window
    prompt: int  # the prompt estimate: an upper bound of the engine's count
    outputs: int  # outputs it may generate (0: it generates nothing)
    limit: int  # output tokens per output
    clamp: bool  # lower ``limit`` to what remains instead of refusing or overshooting


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaState:
    """What the database (or the local counters) hold for the user, read in one step."""

    recent: int  # requests admitted in the last RPM_WINDOW seconds
    rpm_wait: float  # seconds until fewer than the rpm limit are recent (0 if not over)
    live: int  # requests in flight (leases neither settled nor expired)
    held: int  # tokens those reserve
    used_day: int  # tokens charged in the day window
    used_month: int  # ... and in the month window


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaAnswer:
    """Admitted (``refused`` None) with ``limit`` tokens per output and ``reserved`` held, or
    refused for ``refused`` (``rpm``, ``concurrency``, ``tokens_day``, ``tokens_month``)."""

    refused: str | None
    retry_after: float  # seconds, when refused
    limit: int  # the output limit granted (lowered when clamped)
    reserved: int  # tokens reserved: prompt + limit x outputs
    remaining: int | None  # tokens left in the tightest window before this request
    used_day: int  # tokens charged so far (reservations not included)
    used_month: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaSettle:
    """A finished request: its lease is released and ``tokens`` charged to the windows it
    ended in. Applied once, however often it is sent (a retry after a lost answer)."""

    lease_id: int
    user_id: int
    admitted_at: float
    tokens: int
    now: float  # when it ended: the day and month it is charged to
    day: Window
    month: Window
