"""A deadline that moves on with every chunk of a stream, cheaply.

``asyncio.timeout`` moved after every chunk (``reschedule``) cancels a timer and makes a new
one each time: at thousands of chunks a second that is a measurable share of relaying one.
Here a chunk only notes the time (``moved``); the one timer, when it fires before the real
deadline, sets itself again for it (it is set anew at once only when the deadline comes
nearer, as when ``idle`` is shorter than ``first``). It ends as ``asyncio.timeout`` does: the
body is cancelled and ``TimeoutError`` raised from the ``async with``.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

__all__ = ["IdleDeadline"]

_SLACK = 0.001  # a timer may fire up to a millisecond early (the loop's clock resolution)


class IdleDeadline:
    """``first`` seconds for the first chunk, then ``idle`` seconds after each one."""

    __slots__ = ("_armed", "_handle", "_idle", "_loop", "_timeout", "at")

    def __init__(self, *, first: float, idle: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle = idle
        self._timeout = asyncio.timeout(None)
        self.at = self._loop.time() + first
        self._armed = self.at
        self._handle: asyncio.TimerHandle | None = None

    def moved(self) -> None:
        """A chunk came: the deadline is ``idle`` seconds from now."""
        at = self.at = self._loop.time() + self._idle
        if at < self._armed:
            self._arm(at)

    def _arm(self, at: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed = at
        self._handle = self._loop.call_at(at, self._check)

    def _check(self) -> None:
        self._handle = None
        if self._loop.time() + _SLACK >= self.at:
            self._timeout.reschedule(0)  # expires on the next loop iteration
        else:
            self._arm(self.at)

    async def __aenter__(self) -> IdleDeadline:
        await self._timeout.__aenter__()
        self._arm(self.at)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        await self._timeout.__aexit__(exc_type, exc, tb)
