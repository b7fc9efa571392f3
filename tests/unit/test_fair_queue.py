"""The fair queue's scheduling on virtual time (``bench/virtual_time.py``): deterministic, no
sockets. A fake engine holds a slot for ``token_time`` per output token and charges each token
as it streams; ``Ledger`` counts what each user was served, independently of the queue."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any

import pytest

from authproxy.errors import RateLimited, ServiceUnavailable, UpstreamError
from authproxy.fair_queue import FairQueue
from authproxy.queue_refusals import QueueDrained, QueueFull, QueueRefused, QueueTimeout
from authproxy.queue_ticket import Ticket
from bench.virtual_time import run_virtual

W_OUT = 2.0  # the queue's default output_weight


def cost(prompt: int, output: int) -> float:
    return prompt + W_OUT * output


def now() -> float:
    return asyncio.get_running_loop().time()


async def tick() -> None:
    """Let every ready task run up to its next wait."""
    for _ in range(3):
        await asyncio.sleep(0)


async def queued(
    queue: FairQueue, users: str, *, prompt_tokens: int = 0
) -> list[asyncio.Task[Ticket]]:
    """One waiting request per letter of ``users``, queued in that order."""
    tasks = [asyncio.create_task(queue.acquire(user=u, prompt_tokens=prompt_tokens)) for u in users]
    await tick()
    return tasks


async def one_slot_held_by_a(
    *, timeout: float = 60, prompt_tokens: int = 0
) -> tuple[FairQueue, Ticket]:
    """A queue with one slot, which A holds."""
    queue = FairQueue(capacity=1, timeout=timeout, max_per_user=4)
    return queue, await queue.acquire(user="A", prompt_tokens=prompt_tokens)


def described(exc: QueueRefused) -> tuple[int, str, str, float]:
    """What the client is told (status, code), why (for the metrics), and how long it waited."""
    return exc.status, exc.code, exc.reason, exc.waited


class Ledger:
    """Service each user received (prompt on entry, W_OUT per token as it streams), and the
    largest gap in service / weight between two users seen while both had requests waiting."""

    def __init__(self, queue: FairQueue, pair: tuple[str, str], weights: dict[str, float]) -> None:
        self.queue, self.pair, self.weights = queue, pair, weights
        self.service = dict.fromkeys(weights, 0.0)
        self.base = dict.fromkeys(weights, 0.0)
        self.max_gap = 0.0
        self.order: list[str] = []  # who entered, in order

    def restart(self) -> None:
        """Measure gaps from here on (e.g. from a user's return)."""
        self.base = dict(self.service)
        self.max_gap = 0.0

    def add(self, user: str, amount: float) -> None:
        self.service[user] += amount
        waiting = self.queue.stats().waiting_by_user
        a, b = self.pair
        if waiting.get(a) and waiting.get(b):
            got = {u: (self.service[u] - self.base[u]) / self.weights[u] for u in self.pair}
            self.max_gap = max(self.max_gap, abs(got[a] - got[b]))

    async def request(
        self, user: str, *, prompt: int, output: int, token_time: float = 0.01
    ) -> float:
        """One request through the queue; returns when it finished."""
        weight = self.weights[user]
        async with self.queue.slot(user=user, weight=weight, prompt_tokens=prompt) as ticket:
            self.order.append(user)
            self.add(user, prompt)
            for _ in range(output):
                await asyncio.sleep(token_time)
                ticket.charge(output_tokens=1)
                self.add(user, W_OUT)
        return now()


def gather(*coros: Coroutine[Any, Any, float]) -> asyncio.Future[list[float]]:
    return asyncio.gather(*coros)


# -- fairness ---------------------------------------------------------------------------------


def test_two_backlogged_users_stay_within_the_bound() -> None:
    """Bound: capacity × U, U the largest cost of one request (weight 1). All of A's requests
    arrive first: first come first served would give B nothing until A's 30 are done."""
    rng = random.Random(13)
    sizes = {u: [(rng.randint(1, 40), rng.randint(1, 60)) for _ in range(30)] for u in "AB"}
    biggest = max(cost(p, o) for reqs in sizes.values() for p, o in reqs)

    async def main() -> Ledger:
        queue = FairQueue(capacity=2, timeout=3600, max_per_user=30)
        ledger = Ledger(queue, ("A", "B"), {"A": 1.0, "B": 1.0})
        work = [ledger.request(u, prompt=p, output=o) for u in "AB" for p, o in sizes[u]]
        await gather(*work)
        return ledger

    ledger = run_virtual(main())
    assert ledger.order[:2] == ["A", "A"]  # the room was empty: A entered at once
    assert "B" in ledger.order[:4]  # then B, despite 28 of A's arriving first
    assert 0 < ledger.max_gap <= 2 * biggest


def test_a_heavy_user_is_not_starved_by_many_light_ones() -> None:
    heavy_prompt, heavy_output = 100, 400
    light = ("L1", "L2", "L3")

    async def main() -> tuple[Ledger, list[float], float]:
        queue = FairQueue(capacity=2, timeout=3600, max_per_user=10)
        weights = dict.fromkeys(("H", *light), 1.0)
        ledger = Ledger(queue, ("H", "L1"), weights)
        done = asyncio.Event()

        async def keep_asking(user: str) -> None:  # always 3 waiting or in flight
            async def one() -> None:
                while not done.is_set():
                    await ledger.request(user, prompt=10, output=5)

            await asyncio.gather(one(), one(), one())

        lights = [asyncio.create_task(keep_asking(u)) for u in light]
        await tick()
        heavy = await gather(
            *(ledger.request("H", prompt=heavy_prompt, output=heavy_output) for _ in range(5))
        )
        done.set()
        await asyncio.gather(*lights)
        return ledger, heavy, min(ledger.service[u] for u in light)

    ledger, finished, least_light = run_virtual(main())
    assert len(finished) == 5  # all five completed while the light users never stopped
    # H was served its fair part along the way: at the end no light user is far ahead of it.
    assert ledger.service["H"] >= least_light - 2 * cost(heavy_prompt, heavy_output)
    assert ledger.max_gap <= 2 * cost(heavy_prompt, heavy_output)


def test_a_user_back_from_idle_has_no_banked_priority() -> None:
    """A is away while B is served 40 requests alone; back, A alternates with B instead of
    taking the next 40 slots (its counter was lifted to B's)."""

    async def main() -> tuple[Ledger, list[str]]:
        queue = FairQueue(capacity=1, timeout=3600, max_per_user=100)
        ledger = Ledger(queue, ("A", "B"), {"A": 1.0, "B": 1.0})
        await gather(*(ledger.request(u, prompt=5, output=10) for u in "AB"))
        b_alone = [asyncio.create_task(ledger.request("B", prompt=5, output=10)) for _ in range(60)]
        await asyncio.sleep(40 * 10 * 0.01 + 0.005)  # B's 40th request is under way
        ledger.restart()
        back = len(ledger.order)
        await gather(*(ledger.request("A", prompt=5, output=10) for _ in range(10)))
        await asyncio.gather(*b_alone)
        return ledger, ledger.order[back : back + 10]

    ledger, after_return = run_virtual(main())
    assert after_return.count("A") <= 6  # alternating, not A ten times in a row
    assert ledger.max_gap <= 1 * cost(5, 10)


def test_a_user_with_weight_two_gets_twice_the_service() -> None:
    async def main() -> tuple[Ledger, dict[str, float]]:
        queue = FairQueue(capacity=2, timeout=3600, max_per_user=100)
        ledger = Ledger(queue, ("A", "B"), {"A": 2.0, "B": 1.0})
        tasks = [asyncio.create_task(ledger.request(u, prompt=10, output=20)) for u in "AB" * 60]
        await asyncio.sleep(30 * 20 * 0.01)  # about 60 requests' worth: both still waiting
        assert all(queue.stats().waiting_by_user.get(u) for u in "AB")
        seen = dict(ledger.service)
        await asyncio.gather(*tasks)
        return ledger, seen

    ledger, seen = run_virtual(main())
    assert 1.8 <= seen["A"] / seen["B"] <= 2.2
    assert ledger.max_gap <= 2 * cost(10, 20)  # A's costs count half: U is B's request


def test_a_newcomer_tied_with_a_busy_user_goes_first() -> None:
    """Issue 13's case with output charged only at the end: L, lifted to H's counter, ties with
    H; the user with nothing in flight gets the next slot, not H's earlier waiter."""

    async def main() -> list[str]:
        queue = FairQueue(capacity=2, timeout=600, max_per_user=20)
        order: list[str] = []

        async def one(user: str, hold: float) -> None:
            ticket = await queue.acquire(user=user, prompt_tokens=20)
            order.append(user)
            await asyncio.sleep(hold)
            ticket.release()
            ticket.settle(input_tokens=20, output_tokens=200)  # the counts came after the end

        heavy = [asyncio.create_task(one("H", 3.4 + n / 10)) for n in range(12)]
        await asyncio.sleep(1)
        await one("L", 0.1)
        await asyncio.gather(*heavy)
        return order

    assert run_virtual(main())[:4] == ["H", "H", "L", "H"]


def test_each_users_requests_go_in_arrival_order() -> None:
    async def main() -> list[int]:
        queue = FairQueue(capacity=1, timeout=3600, max_per_user=10)
        entered: list[int] = []

        async def one(n: int) -> None:
            async with queue.slot(user="A", prompt_tokens=100 - n):
                entered.append(n)
                await asyncio.sleep(1)

        await asyncio.gather(*(one(n) for n in range(6)))
        return entered

    assert run_virtual(main()) == [0, 1, 2, 3, 4, 5]


# -- entering, leaving, refusals --------------------------------------------------------------


def test_enters_at_once_when_there_is_room_and_reports_its_wait() -> None:
    async def main() -> tuple[float, float]:
        queue, first = await one_slot_held_by_a()
        later = asyncio.create_task(queue.acquire(user="B"))
        await asyncio.sleep(2.5)
        first.release()
        second = await later
        second.release()
        return first.waited, second.waited

    assert run_virtual(main()) == (0.0, 2.5)


def test_a_request_that_waited_too_long_is_refused_with_503() -> None:
    async def main() -> None:
        queue, holder = await one_slot_held_by_a(timeout=5)
        w1 = asyncio.create_task(queue.acquire(user="B"))
        await asyncio.sleep(3)
        w2 = asyncio.create_task(queue.acquire(user="C"))
        await asyncio.sleep(1.999)
        assert not w1.done()
        with pytest.raises(QueueTimeout) as refused:
            await w1
        assert now() == 5.0
        exc = refused.value
        assert isinstance(exc, ServiceUnavailable)
        assert described(exc) == (503, "queue_timeout", "timeout", 5)
        # Nothing is known of hold times yet: the holder's age (5 s), one hand-off ahead.
        assert exc.retry_after == pytest.approx(5 + 5)
        assert exc.headers == {"Retry-After": "10"}
        with pytest.raises(QueueTimeout):
            await w2
        assert now() == 8.0
        w3 = asyncio.create_task(queue.acquire(user="D"))
        await asyncio.sleep(4)
        holder.release()
        await tick()
        assert w3.done() and w3.result().user == "D"  # the slot went to the one still waiting
        stats = queue.stats()
        assert (stats.in_flight, stats.waiting, stats.refused["timeout"]) == (1, 0, 2)

    run_virtual(main())


def test_a_full_queue_refuses_at_once_with_an_honest_retry_after() -> None:
    """Slots are held 4 s each: measured over a few requests, then B's queue fills up."""

    async def main() -> None:
        queue = FairQueue(capacity=1, timeout=600, max_per_user=2)
        for _ in range(3):
            async with queue.slot(user="A"):
                await asyncio.sleep(4)

        async def hold(user: str) -> float:
            async with queue.slot(user=user):
                entered = now()
                await asyncio.sleep(4)
            return entered

        running = asyncio.create_task(hold("A"))
        await asyncio.sleep(1)
        waiting = [asyncio.create_task(hold("B")) for _ in range(2)]
        await tick()
        with pytest.raises(QueueFull) as refused:
            await queue.acquire(user="B")
        exc = refused.value
        assert isinstance(exc, RateLimited)
        assert described(exc) == (429, "queue_full", "queue_full", 0)
        assert exc.retry_after is not None
        assert exc.retry_after == pytest.approx(4.0)  # one hand-off of a 4 s slot
        asked = now()
        entered = await waiting[0]  # B's oldest entered within that: a place was free again
        assert entered - asked <= exc.retry_after
        other = await queue.acquire(user="C")  # another user was never refused
        other.release()
        await asyncio.gather(running, *waiting)
        assert queue.stats().refused["queue_full"] == 1

    run_virtual(main())


def test_retry_after_counts_the_users_ahead() -> None:
    """C's queue is full; A and B, served less, each have a turn before C's oldest."""

    async def main() -> None:
        queue = FairQueue(capacity=1, timeout=600, max_per_user=1)
        async with queue.slot(user="C", prompt_tokens=100):
            await asyncio.sleep(10)
        holder = await queue.acquire(user="C", prompt_tokens=100)
        waiting = await queued(queue, "ABC")
        with pytest.raises(QueueFull) as refused:
            await queue.acquire(user="C")
        assert refused.value.retry_after == pytest.approx(3 * 10)
        holder.release()
        for task in waiting:
            (await task).release()

    run_virtual(main())


def test_a_client_gone_while_waiting_leaves_at_once_uncharged() -> None:
    async def main() -> None:
        queue = FairQueue(capacity=2, timeout=60, max_per_user=4)
        holder = await queue.acquire(user="A", prompt_tokens=7)
        b_running = await queue.acquire(user="B", prompt_tokens=3)  # B active: no lift
        before = queue.stats().counters["B"]
        assert before == 7 + 3  # B arrived with A active: lifted to A's counter, then charged
        waiter = asyncio.create_task(queue.acquire(user="B", prompt_tokens=500))
        await tick()
        assert queue.stats().waiting_by_user == {"B": 1}
        waiter.cancel()
        await tick()
        stats = queue.stats()
        assert (stats.waiting, stats.left, stats.counters["B"]) == (0, 1, before)
        nxt = asyncio.create_task(queue.acquire(user="C"))
        await tick()
        holder.release()
        await tick()
        assert nxt.done()  # the slot was not lost
        assert queue.stats().in_flight == 2
        nxt.result().release()
        b_running.release()

    run_virtual(main())


def test_a_slot_handed_to_a_waiter_being_cancelled_passes_on() -> None:
    """B's first request gets the slot and its task is cancelled in the same step: the slot
    goes on to the next waiter in fair order, and B is not charged for the 500 tokens — if it
    were, C (arrived after B's second request) would go first."""

    async def main() -> None:
        queue, holder = await one_slot_held_by_a(prompt_tokens=10)
        b_big = asyncio.create_task(queue.acquire(user="B", prompt_tokens=500))
        await tick()
        b_small = asyncio.create_task(queue.acquire(user="B", prompt_tokens=1))
        await tick()
        c = asyncio.create_task(queue.acquire(user="C", prompt_tokens=1))
        await tick()
        holder.release()  # hands the slot to b_big at once ...
        b_big.cancel()  # ... whose client leaves before its task runs again
        with pytest.raises(asyncio.CancelledError):
            await b_big
        await tick()
        assert b_small.done() and not c.done()
        stats = queue.stats()
        assert (stats.in_flight, stats.waiting, stats.left) == (1, 1, 1)
        assert stats.counters["B"] == 10 + 1  # lifted to A's 10, then only the small request
        b_small.result().release()
        await tick()
        assert c.done()
        c.result().release()

    run_virtual(main())


def test_a_waiter_cancelled_just_before_a_slot_frees_is_skipped() -> None:
    async def main() -> None:
        queue, holder = await one_slot_held_by_a()
        b, c = await queued(queue, "BC")
        b.cancel()  # B's task has yet to see it when ...
        holder.release()  # ... the slot frees
        await tick()
        assert b.cancelled() and c.done()
        stats = queue.stats()
        assert (stats.in_flight, stats.waiting, stats.left) == (1, 0, 1)

    run_virtual(main())


def test_capacity_lowered_and_raised_at_run_time() -> None:
    async def main() -> None:
        queue = FairQueue(capacity=2, timeout=600, max_per_user=4)
        held = [await queue.acquire(user=u) for u in "AB"]
        waiting = await queued(queue, "CDE")
        queue.capacity = 1
        held[0].release()
        await tick()
        assert queue.stats().in_flight == 1 and not any(t.done() for t in waiting)
        await asyncio.sleep(500)  # a stream holds its slot as long as it runs
        held[1].release()
        await tick()
        assert [t.done() for t in waiting] == [True, False, False]
        queue.capacity = 3
        await tick()
        assert all(t.done() for t in waiting)
        assert queue.stats().in_flight == 3 and queue.stats().capacity == 3
        for t in waiting:
            t.result().release()

    run_virtual(main())


def test_drain_fails_every_waiter_fast_and_keeps_those_in_flight() -> None:
    async def main() -> None:
        queue, holder = await one_slot_held_by_a()
        waiting = await queued(queue, "BBC", prompt_tokens=50)
        await asyncio.sleep(2)
        assert queue.drain("upstream local is down") == 3
        for task in waiting:
            with pytest.raises(QueueDrained) as drained:
                await task
            exc = drained.value
            assert isinstance(exc, UpstreamError) and exc.failover  # the failover loop moves on
            assert described(exc) == (503, "upstream_unavailable", "drained", 2)
            assert exc.headers == {}  # when it will be back is not known
        await asyncio.sleep(100)  # their timers were cancelled: no timeouts later
        stats = queue.stats()
        assert (stats.in_flight, stats.waiting, stats.refused) == (
            1,
            0,
            {"queue_full": 0, "timeout": 0, "drained": 3},
        )
        assert set(stats.counters) == {"A"}  # B and C left uncharged, inactive
        holder.release()
        (await queue.acquire(user="B")).release()

    run_virtual(main())


def test_stats_and_settling_the_engines_counts() -> None:
    async def main() -> None:
        queue = FairQueue(capacity=1, timeout=60, max_per_user=4, output_weight=3)
        ticket = await queue.acquire(user="A", weight=2, prompt_tokens=100)
        waiting = await queued(queue, "BBC")
        await asyncio.sleep(1.5)
        ticket.charge(output_tokens=4)
        assert ticket.service == 100 + 3 * 4
        ticket.settle(input_tokens=30, output_tokens=5)  # the engine counted fewer: refund
        assert ticket.service == 30 + 3 * 5
        stats = queue.stats()
        assert stats.counters == {"A": (30 + 15) / 2, "B": 50, "C": 50}  # lifted to A's 50 then
        assert stats.waiting_by_user == {"B": 2, "C": 1}
        assert stats.in_flight_by_user == {"A": 1}
        assert (stats.waiting, stats.oldest_wait) == (3, 1.5)
        ticket.release()
        ticket.release()  # idempotent
        for task in waiting:
            await tick()
            (await task).release()

    run_virtual(main())


def test_when_nobody_is_active_the_next_one_starts_where_the_last_left_off() -> None:
    """C is away while A is served alone, then everyone is idle; back together, C does not get
    A's 20 requests as credit."""

    async def main() -> list[str]:
        queue = FairQueue(capacity=1, timeout=600, max_per_user=20)
        order: list[str] = []

        async def one(user: str) -> None:
            async with queue.slot(user=user, prompt_tokens=10):
                order.append(user)
                await asyncio.sleep(1)

        await asyncio.gather(one("C"), one("A"))
        await asyncio.gather(*(one("A") for _ in range(20)))
        await asyncio.sleep(1000)
        order.clear()
        await asyncio.gather(*(one(u) for u in "CA" * 5))
        return order

    assert run_virtual(main()) == ["C", "A"] * 5


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FairQueue(capacity=0, timeout=1, max_per_user=1)
    with pytest.raises(ValueError, match="timeout"):
        FairQueue(capacity=1, timeout=0, max_per_user=1)

    async def main() -> None:
        queue = FairQueue(capacity=1, timeout=1, max_per_user=1)
        with pytest.raises(ValueError, match="weight"):
            await queue.acquire(user="A", weight=0)

    run_virtual(main())
