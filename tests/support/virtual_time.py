"""An asyncio event loop on virtual time, for simulations and timing tests without sockets.

Whenever nothing is ready to run, the clock jumps straight to the next timer instead of
sleeping: ``asyncio.sleep(3600)`` returns at once, and ``loop.time()`` has moved by 3600. Runs
are deterministic (no wall clock, no threads). With nothing ready and no timer left the program
can never go on: ``run_virtual`` raises instead of hanging.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0


class _JumpingSelector(selectors.SelectSelector):
    """Waiting ``timeout`` seconds is moving the clock by it; I/O is only polled."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise RuntimeError("virtual time: nothing is ready and no timer is left (deadlock)")
        self._clock.now += max(timeout, 0.0)
        return super().select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._virtual = _Clock()
        super().__init__(_JumpingSelector(self._virtual))

    def time(self) -> float:
        return self._virtual.now


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh virtual-time loop starting at t = 0."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        if left:
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.close()


def now() -> float:
    """The running loop's clock (virtual on a ``VirtualTimeLoop``)."""
    return asyncio.get_running_loop().time()


async def tick() -> None:
    """Let every task that is ready run on to its next wait, without moving the clock."""
    for _ in range(3):
        await asyncio.sleep(0)
