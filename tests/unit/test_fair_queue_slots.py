"""The fair queue's slots on virtual time: entering, waiting too long, a full queue, a client
leaving (also at the moment a slot is handed over), capacity changes, drain, introspection."""

from __future__ import annotations

import asyncio

import pytest
from support.virtual_time import now, run_virtual, tick

from authproxy.errors import RateLimited, ServiceUnavailable, UpstreamError
from authproxy.queue.fair_queue import FairQueue
from authproxy.queue.refusals import QueueDrained, QueueFull, QueueRefused, QueueTimeout
from authproxy.queue.ticket import Ticket


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


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FairQueue(capacity=0, timeout=1, max_per_user=1)
    with pytest.raises(ValueError, match="timeout"):
        FairQueue(capacity=1, timeout=0, max_per_user=1)

    async def main() -> None:
        queue = FairQueue(capacity=1, timeout=1, max_per_user=1)
        with pytest.raises(ValueError, match="weight"):
            await queue.acquire(user="A", weight=0)
        with pytest.raises(ValueError, match="prompt_tokens"):
            await queue.acquire(user="A", prompt_tokens=-1)
        assert queue.stats().in_flight == 0

    run_virtual(main())
