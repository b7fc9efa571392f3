"""The quota's rules: admit or refuse one request given its user's state, and how many output
tokens it may have. One definition for the in-process book (``limits/quota_local.py``) and the
SQLite ledger; PostgreSQL runs the same rules inside the database (``authproxy_quota_admit`` in
``migrations_postgres.py``), and the contract tests in ``tests/store`` hold the two to the same
answers.

In order: the rate (requests in the last minute), concurrency (requests in flight), then the
token windows: a request reserves its prompt estimate plus its output limit times its outputs
against what remains of the tightest window (limit - charged - held by requests in flight);
with ``clamp`` the limit is lowered to fit, and only a prompt that alone does not fit is
refused.
"""

from __future__ import annotations

import math

from authproxy.store.quota_records import QuotaAnswer, QuotaAsk, QuotaState

__all__ = ["decide", "retry_seconds"]


def retry_seconds(wait: float) -> int:
    """A ``Retry-After`` in whole seconds: at least 1, rounded up."""
    return max(1, math.ceil(wait))


def _refuse(
    ask: QuotaAsk, state: QuotaState, reason: str, wait: float, left: int | None
) -> QuotaAnswer:
    return QuotaAnswer(
        refused=reason,
        retry_after=wait,
        limit=ask.limit,
        reserved=0,
        remaining=left,
        used_day=state.used_day,
        used_month=state.used_month,
    )


def decide(ask: QuotaAsk, state: QuotaState) -> QuotaAnswer:
    if ask.requests_per_minute is not None and state.recent >= ask.requests_per_minute:
        return _refuse(ask, state, "rpm", state.rpm_wait, None)
    if ask.max_concurrent is not None and state.live >= ask.max_concurrent:
        return _refuse(ask, state, "concurrency", 1.0, None)
    remaining: int | None = None
    tightest, tightest_end = "day", ask.day.end
    for limit, used, end, what in (
        (ask.tokens_per_day, state.used_day, ask.day.end, "day"),
        (ask.tokens_per_month, state.used_month, ask.month.end, "month"),
    ):
        if limit is None:
            continue
        left = limit - used - state.held
        if left <= 0:
            return _refuse(ask, state, f"tokens_{what}", end - ask.now, left)
        if remaining is None or left < remaining:
            remaining, tightest, tightest_end = left, what, end
    limit = ask.limit
    reservation = ask.prompt + limit * ask.outputs
    if remaining is not None and reservation > remaining and ask.clamp and ask.outputs > 0:
        limit = (remaining - ask.prompt) // ask.outputs
        if limit < 1:
            return _refuse(ask, state, f"tokens_{tightest}", tightest_end - ask.now, remaining)
        reservation = ask.prompt + limit * ask.outputs
    return QuotaAnswer(
        refused=None,
        retry_after=0.0,
        limit=limit,
        reserved=reservation,
        remaining=remaining,
        used_day=state.used_day,
        used_month=state.used_month,
    )
