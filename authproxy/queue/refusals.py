"""Why an upstream's fair queue (``queue/fair_queue.py``) refuses a request, and when to come back.

``QueueFull`` (429): the user already has ``max_per_user`` requests waiting; retry-after is the
expected time until that user's oldest waiter gets a slot (a place frees then).
``QueueTimeout`` (503): the request waited ``timeout`` seconds; retry-after is the expected time
until a request of that user joining now would get a slot.
``QueueDrained`` (503, may fail over): the upstream went down while the request waited.

The expected time (``expected_wait``): the hand-offs ahead — the user's own earlier waiters, and
of each other waiting user as many waiters as fit below this user's counter at that user's mean
cost per request (all of them while the cost is unknown) — plus one, times the mean time a slot
is held divided by the capacity. Before any slot was released, the hold is the age of the
oldest holder, at least 1 s: a lower bound while nothing is known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from authproxy.errors import GatewayError, RateLimited, ServiceUnavailable, UpstreamError
from authproxy.queue.ticket import UserLine

__all__ = ["REASONS", "QueueDrained", "QueueFull", "QueueRefused", "QueueTimeout", "expected_wait"]


class QueueRefused(GatewayError):
    """Refused by an upstream's queue; ``reason`` names why (for the metrics)."""

    reason = "queue"

    def __init__(self, message: str, *, retry_after: float | None, waited: float) -> None:
        after = {} if retry_after is None else {"Retry-After": str(max(1, math.ceil(retry_after)))}
        super().__init__(message, headers=after)
        self.retry_after = retry_after  # seconds; None: unknown
        self.waited = waited  # seconds spent waiting before the refusal


class QueueFull(QueueRefused, RateLimited):
    reason = code = "queue_full"


class QueueTimeout(QueueRefused, ServiceUnavailable):
    reason, code = "timeout", "queue_timeout"


class QueueDrained(QueueRefused, UpstreamError):
    """The upstream went down while the request waited: try another one (``failover``)."""

    reason, status, code, failover = "drained", 503, "upstream_unavailable", True


REASONS = (QueueFull.reason, QueueTimeout.reason, QueueDrained.reason)


def expected_wait(
    user: UserLine,
    position: int,
    *,
    queued: Iterable[UserLine],
    over_capacity: int,
    hold: float,
    capacity: int,
) -> float:
    """Seconds until ``user``'s waiter at ``position`` (0: its oldest) is likely to get a slot.

    ``over_capacity``: requests in flight beyond the capacity (it was lowered), which must end
    before anyone enters; ``hold``: seconds a slot is held, on average.
    """
    mark = user.counter + position * (user.mean_cost or 0.0)  # its counter by then
    ahead = position + over_capacity
    for other in queued:
        if other is user or other.counter > mark:
            continue
        waiting = len(other.waiting)
        fit = (mark - other.counter) / other.mean_cost if other.mean_cost else math.inf
        ahead += min(waiting, 1 + int(min(fit, waiting)))
    return (ahead + 1) * hold / capacity
