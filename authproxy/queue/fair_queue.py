"""A fair waiting room in front of one upstream: at most ``capacity`` requests in flight; the
rest wait, and when a slot frees, the waiting user who has received the least service goes next.

Fairness is the Virtual Token Counter of Sheng et al., "Fairness in Serving Large Language
Models" (OSDI 2024). Each user has a counter: service received divided by the user's weight,
service being ``input tokens + output_weight × output tokens``.

* What is charged when: a prompt estimate ``prompt_tokens`` when the request gets its slot (the
  engine reads it then; optional), output as it is produced (``Ticket.charge`` per streamed
  chunk) or once at the end; ``Ticket.settle`` puts the engine's own counts in place of all of
  it. Charging only at the end lets a user whose long streams are running look unserved until
  they end (at most ``capacity`` requests' worth, the bound below); charging the whole output
  reservation up front would hold a request that stops early against its user. The gateway
  settles once, at the end, before the release (``proxy/slots.py`` says why).
* Who goes next: the waiting user with the lowest counter (ties: fewer in flight, then the
  earlier arrival); each user's own requests in arrival order.
* The lift: a user who becomes active (nothing waiting or in flight before) has the counter
  raised to the lowest counter among active users (nobody active: where the last one left off),
  so idle time is not banked as credit.

Bound: while two users both have requests waiting, their counters differ by at most
``capacity × U``, U the largest ``cost / weight`` of one request: a user is picked only while
its counter is the lowest, and after that gains at most what its requests then in flight (no
more than ``capacity``) still add. A waiting user's counter stands still while the others'
grow, so nobody starves.

Refusals and their ``Retry-After``: ``queue/refusals.py``. A waiter whose task is cancelled
(the client went away) leaves at once, uncharged; if it had just been handed a slot, the slot
passes on. Time is the running event loop's (``call_at`` timers: no polling, no task per
waiter); a hand-off costs O(users waiting). One event loop; not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

from authproxy.queue.refusals import (
    REASONS,
    QueueDrained,
    QueueFull,
    QueueRefused,
    QueueTimeout,
    expected_wait,
)
from authproxy.queue.ticket import Ticket, UserLine, Waiter

__all__ = ["FairQueue", "QueueStats"]

EWMA = 0.2  # weight of the newest sample in the running means (slot hold, cost per request)


@dataclass(frozen=True, slots=True)
class QueueStats:
    capacity: int
    in_flight: int
    waiting: int
    waiting_by_user: dict[str, int]
    in_flight_by_user: dict[str, int]
    oldest_wait: float  # seconds the longest-waiting request has waited (0: none waits)
    counters: dict[str, float]  # active users' service received / weight
    refused: dict[str, int]  # by reason: queue_full, timeout, drained
    left: int  # waiters whose client went away


class FairQueue:
    """One upstream's slots and the fair waiting room in front of them."""

    def __init__(
        self, *, capacity: int, timeout: float, max_per_user: int, output_weight: float = 2.0
    ) -> None:
        if timeout <= 0 or max_per_user < 0 or output_weight < 0:
            raise ValueError("timeout must be positive, max_per_user and output_weight >= 0")
        self.timeout = timeout
        self.max_per_user = max_per_user
        self.output_weight = output_weight
        self._users: dict[str, UserLine] = {}
        self._active: dict[str, UserLine] = {}  # something waiting or in flight
        self._queued: dict[str, UserLine] = {}  # something waiting
        self._holding: dict[Ticket, None] = {}  # in flight, oldest first
        self._waiting = 0
        self._floor = 0.0  # the counter the last active user left with
        self._mean_hold: float | None = None
        self._seq = itertools.count()
        self._refused = dict.fromkeys(REASONS, 0)
        self._left = 0
        self.capacity = capacity

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, capacity: int) -> None:
        """Raised: waiters enter at once. Lowered: nobody enters until in flight is below it."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._capacity = capacity
        self._dispatch()

    @property
    def waiting(self) -> int:
        """Requests waiting now (``stats`` has the rest; this one is cheap enough to route by)."""
        return self._waiting

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    @contextlib.asynccontextmanager
    async def slot(
        self, *, user: str, weight: float = 1.0, prompt_tokens: int = 0
    ) -> AsyncIterator[Ticket]:
        """``acquire``, and ``release`` on the way out, however it is left."""
        ticket = await self.acquire(user=user, weight=weight, prompt_tokens=prompt_tokens)
        try:
            yield ticket
        finally:
            ticket.release()

    async def acquire(self, *, user: str, weight: float = 1.0, prompt_tokens: int = 0) -> Ticket:
        """A slot now if one is free and nobody waits, else after waiting; or ``QueueRefused``."""
        if weight <= 0 or prompt_tokens < 0:
            raise ValueError("weight must be positive, prompt_tokens not negative")
        u = self._users.get(user)
        if u is None:
            u = self._users[user] = UserLine(user, weight)
        u.weight = weight
        if len(self._holding) < self._capacity and not self._waiting:
            self._activate(u)
            return self._admit(u, prompt_tokens, waited=0.0)
        if len(u.waiting) >= self.max_per_user:
            self._refused[QueueFull.reason] += 1
            raise QueueFull(
                f"too many requests waiting: at most {self.max_per_user} of yours may wait "
                "for this model's engine",
                retry_after=self._eta(u, 0),
                waited=0.0,
            )
        self._activate(u)
        loop = asyncio.get_running_loop()
        w = Waiter(loop.create_future(), next(self._seq), loop.time(), prompt_tokens)
        w.timer = loop.call_at(w.since + self.timeout, self._expire, u, w)
        u.waiting.append(w)
        self._queued[u.name] = u
        self._waiting += 1
        try:
            outcome = await w.fut
        except asyncio.CancelledError:
            self._abandon(u, w)
            raise
        if isinstance(outcome, QueueRefused):
            raise outcome
        assert isinstance(outcome, Ticket)
        return outcome

    def drain(self, message: str, *, retry_after: float | None = None) -> int:
        """Fail every waiter now with ``QueueDrained``; those in flight keep their slots."""
        drained = 0
        for u in list(self._queued.values()):
            while u.waiting:
                w = u.waiting[0]
                if self._take(u, w):
                    waited = self.now() - w.since
                    self._refuse(w, QueueDrained(message, retry_after=retry_after, waited=waited))
                    drained += 1
            self._maybe_idle(u)
        return drained

    def stats(self) -> QueueStats:
        waits = [u.waiting[0].since for u in self._queued.values()]
        return QueueStats(
            capacity=self._capacity,
            in_flight=len(self._holding),
            waiting=self._waiting,
            waiting_by_user={n: len(u.waiting) for n, u in self._queued.items()},
            in_flight_by_user={n: u.in_flight for n, u in self._active.items() if u.in_flight},
            oldest_wait=self.now() - min(waits) if waits else 0.0,
            counters={n: u.counter for n, u in self._active.items()},
            refused=dict(self._refused),
            left=self._left,
        )

    # -- inside ------------------------------------------------------------------------------

    def _activate(self, u: UserLine) -> None:
        if u.name not in self._active:
            low = min((v.counter for v in self._active.values()), default=self._floor)
            u.counter = max(u.counter, low)
            self._active[u.name] = u

    def _maybe_idle(self, u: UserLine) -> None:
        if u.waiting or u.in_flight or u.name not in self._active:
            return
        del self._active[u.name]
        if not self._active:
            self._floor = max(self._floor, u.counter)

    def _admit(self, u: UserLine, prompt_tokens: int, *, waited: float) -> Ticket:
        u.in_flight += 1
        ticket = Ticket(
            user=u,
            prompt_tokens=prompt_tokens,
            output_weight=self.output_weight,
            started=self.now(),
            waited=waited,
            on_release=self._release,
        )
        self._holding[ticket] = None
        return ticket

    def _release(self, ticket: Ticket, cost: float, revoked: bool) -> None:
        del self._holding[ticket]
        u = self._users[ticket.user]
        u.in_flight -= 1
        if not revoked:
            self._mean_hold = _ewma(self._mean_hold, self.now() - ticket.started)
            u.mean_cost = _ewma(u.mean_cost, cost)
        self._maybe_idle(u)
        self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to the waiting users with the lowest counters."""
        while len(self._holding) < self._capacity and self._queued:
            u = min(self._queued.values(), key=lambda v: (v.counter, v.in_flight, v.waiting[0].seq))
            w = u.waiting[0]
            if self._take(u, w):
                w.state = "granted"
                w.fut.set_result(self._admit(u, w.prompt_tokens, waited=self.now() - w.since))
            self._maybe_idle(u)

    def _take(self, u: UserLine, w: Waiter) -> bool:
        """Out of the waiting room; False if its task was cancelled and has yet to notice."""
        u.waiting.remove(w)
        self._waiting -= 1
        if not u.waiting:
            del self._queued[u.name]
        if w.timer is not None:
            w.timer.cancel()
        if w.fut.cancelled():
            w.state = "gone"
            self._left += 1
            return False
        return True

    def _refuse(self, w: Waiter, refusal: QueueRefused) -> None:
        w.state = "refused"
        self._refused[refusal.reason] += 1
        w.fut.set_result(refusal)

    def _expire(self, u: UserLine, w: Waiter) -> None:
        if w.state == "waiting" and self._take(u, w):
            message = f"the engine serving this model stayed busy for {self.timeout:g} s"
            eta = self._eta(u, len(u.waiting))
            self._refuse(w, QueueTimeout(message, retry_after=eta, waited=self.now() - w.since))
        self._maybe_idle(u)

    def _abandon(self, u: UserLine, w: Waiter) -> None:
        """The waiting task was cancelled: leave the room, or give back a slot just handed."""
        if w.state == "waiting":
            if self._take(u, w):  # the wait was interrupted some other way than its future
                w.state = "gone"
                self._left += 1
            self._maybe_idle(u)
        elif w.state == "granted":
            w.state = "gone"
            self._left += 1
            ticket = w.fut.result()
            assert isinstance(ticket, Ticket)
            ticket.revoke()

    def _eta(self, u: UserLine, position: int) -> float:
        if self._mean_hold is not None:
            hold = self._mean_hold
        else:
            oldest = next(iter(self._holding), None)
            hold = max(1.0, self.now() - oldest.started) if oldest else 1.0
        return expected_wait(
            u,
            position,
            queued=self._queued.values(),
            over_capacity=max(0, len(self._holding) - self._capacity),
            hold=hold,
            capacity=self._capacity,
        )


def _ewma(mean: float | None, sample: float) -> float:
    return sample if mean is None else mean + EWMA * (sample - mean)
