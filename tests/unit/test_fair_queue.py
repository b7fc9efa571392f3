"""The fair queue's order on virtual time (``tests/support/virtual_time.py``): deterministic, no
sockets. A fake engine holds a slot for ``token_time`` per output token; the queue is charged
the prompt on entry and each token as it streams, or (``at_end``, as the gateway does) all of
it once before the release; ``Ledger`` counts what each user was served, independently."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from typing import Any

import pytest
from support.virtual_time import now, run_virtual, tick

from authproxy.queue.fair_queue import FairQueue

W_OUT = 2.0  # the queue's default output_weight
CHARGING = pytest.mark.parametrize("at_end", [False, True], ids=["as-it-streams", "at-the-end"])


def cost(prompt: int, output: int) -> float:
    return prompt + W_OUT * output


class Ledger:
    """Service each user received (prompt on entry, W_OUT per token as it streams), and the
    largest gap in service / weight between two users seen while both had requests waiting."""

    def __init__(
        self,
        queue: FairQueue,
        pair: tuple[str, str],
        weights: dict[str, float],
        *,
        at_end: bool = False,
    ) -> None:
        self.queue, self.pair, self.weights, self.at_end = queue, pair, weights, at_end
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
        weight, entry = self.weights[user], 0 if self.at_end else prompt
        async with self.queue.slot(user=user, weight=weight, prompt_tokens=entry) as ticket:
            self.order.append(user)
            self.add(user, prompt)
            for _ in range(output):
                await asyncio.sleep(token_time)
                if not self.at_end:
                    ticket.charge(output_tokens=1)
                self.add(user, W_OUT)
            ticket.settle(input_tokens=prompt, output_tokens=output)
        return now()


def gather(*coros: Coroutine[Any, Any, float]) -> asyncio.Future[list[float]]:
    return asyncio.gather(*coros)


@CHARGING
def test_two_backlogged_users_stay_within_the_bound(at_end: bool) -> None:
    """Bound: capacity × U, U the largest cost of one request (weight 1). All of A's requests
    arrive first: first come first served would give B nothing until A's 30 are done."""
    rng = random.Random(13)
    sizes = {u: [(rng.randint(1, 40), rng.randint(1, 60)) for _ in range(30)] for u in "AB"}
    biggest = max(cost(p, o) for reqs in sizes.values() for p, o in reqs)

    async def main() -> Ledger:
        queue = FairQueue(capacity=2, timeout=3600, max_per_user=30)
        ledger = Ledger(queue, ("A", "B"), {"A": 1.0, "B": 1.0}, at_end=at_end)
        work = [ledger.request(u, prompt=p, output=o) for u in "AB" for p, o in sizes[u]]
        await gather(*work)
        return ledger

    ledger = run_virtual(main())
    assert ledger.order[:2] == ["A", "A"]  # the room was empty: A entered at once
    assert "B" in ledger.order[:4]  # then B, despite 28 of A's arriving first
    assert 0 < ledger.max_gap <= 2 * biggest


@CHARGING
def test_a_heavy_user_is_not_starved_by_many_light_ones(at_end: bool) -> None:
    heavy_prompt, heavy_output = 100, 400
    light = ("L1", "L2", "L3")

    async def main() -> tuple[Ledger, list[float], float]:
        queue = FairQueue(capacity=2, timeout=3600, max_per_user=10)
        weights = dict.fromkeys(("H", *light), 1.0)
        ledger = Ledger(queue, ("H", "L1"), weights, at_end=at_end)
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


@CHARGING
def test_a_user_back_from_idle_has_no_banked_priority(at_end: bool) -> None:
    """A is away while B is served 40 requests alone; back, A alternates with B instead of
    taking the next 40 slots (its counter was lifted to B's)."""

    async def main() -> tuple[Ledger, list[str]]:
        queue = FairQueue(capacity=1, timeout=3600, max_per_user=100)
        ledger = Ledger(queue, ("A", "B"), {"A": 1.0, "B": 1.0}, at_end=at_end)
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


@CHARGING
def test_a_user_with_weight_two_gets_twice_the_service(at_end: bool) -> None:
    async def main() -> tuple[Ledger, dict[str, float]]:
        queue = FairQueue(capacity=2, timeout=3600, max_per_user=100)
        ledger = Ledger(queue, ("A", "B"), {"A": 2.0, "B": 1.0}, at_end=at_end)
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
