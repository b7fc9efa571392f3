"""What a ``FairQueue`` keeps per user and per request: a user's counter and waiting line, a
waiter, and the ``Ticket`` of a request holding a slot, which charges the counter."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Ticket", "UserLine", "Waiter"]


@dataclass(eq=False, slots=True)
class Waiter:
    fut: asyncio.Future[object]  # a Ticket, or the QueueRefused to raise
    seq: int
    since: float
    prompt_tokens: int
    timer: asyncio.TimerHandle | None = None
    state: Literal["waiting", "granted", "refused", "gone"] = "waiting"


@dataclass(eq=False, slots=True)
class UserLine:
    name: str
    weight: float
    counter: float = 0.0  # service received / weight
    in_flight: int = 0
    waiting: deque[Waiter] = field(default_factory=deque)
    mean_cost: float | None = None  # counter units per finished request


class Ticket:
    """One request's slot: ``charge`` service as it happens, ``release`` when the engine is
    done (idempotent), ``settle`` the engine's own counts (before or after the release)."""

    __slots__ = (
        "_charged",
        "_input",
        "_on_release",
        "_output",
        "_user",
        "_w_out",
        "released",
        "started",
        "waited",
    )

    def __init__(
        self,
        *,
        user: UserLine,
        prompt_tokens: int,
        output_weight: float,
        started: float,
        waited: float,
        on_release: Callable[[Ticket, float, bool], None],
    ) -> None:
        self._user, self._w_out, self._on_release = user, output_weight, on_release
        self._input, self._output, self._charged = 0, 0, 0.0
        self.started = started
        self.waited = waited  # seconds it waited for the slot
        self.released = False
        self.charge(input_tokens=prompt_tokens)

    @property
    def user(self) -> str:
        return self._user.name

    @property
    def service(self) -> float:
        """Charged so far: input + output_weight × output tokens (before the weight)."""
        return self._input + self._w_out * self._output

    def charge(self, *, output_tokens: int = 0, input_tokens: int = 0) -> None:
        self._input += input_tokens
        self._output += output_tokens
        cost = (input_tokens + self._w_out * output_tokens) / self._user.weight
        self._user.counter += cost
        self._charged += cost

    def settle(self, *, input_tokens: int, output_tokens: int) -> None:
        """The totals the engine reported take the place of what was charged."""
        self.charge(
            input_tokens=input_tokens - self._input, output_tokens=output_tokens - self._output
        )

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._on_release(self, self._charged, False)

    def revoke(self) -> None:
        """Handed a slot, but its task was cancelled before it ran: uncharge, pass it on."""
        self._user.counter -= self._charged
        self._charged = 0.0
        self.released = True
        self._on_release(self, 0.0, True)
