"""The settles of one gateway's finished requests, waiting to be written to the quota ledger.

The settler writes them in batches (``take_all``); an admission takes its own user's along
(``take``) and writes them in its own round trip, first, so that a request never waits for the
settle of the one before it. Bounded: past ``limit`` (the database away for long) the oldest
are dropped and counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from authproxy.store.quota_records import QuotaSettle

__all__ = ["MAX_QUEUED_SETTLES", "SettleQueue"]

log = logging.getLogger(__name__)

MAX_QUEUED_SETTLES = 100_000  # settles kept while the database is away; older ones are dropped


class SettleQueue:
    def __init__(self, *, limit: int = MAX_QUEUED_SETTLES) -> None:
        self._limit = limit
        self._by_user: dict[int, list[QuotaSettle]] = {}
        self._count = 0
        self._writing: Counter[int] = Counter()  # users with settles in a batch being written
        self._written = asyncio.Event()
        self.wake = asyncio.Event()  # set when there is something to write
        self.dropped = 0

    def __len__(self) -> int:
        return self._count

    def put(self, *settles: QuotaSettle) -> None:
        for s in settles:
            self._by_user.setdefault(s.user_id, []).append(s)
        self._count += len(settles)
        while self._count > self._limit:  # drop the one that ended first
            user, waiting = min(self._by_user.items(), key=lambda item: item[1][0].now)
            waiting.pop(0)
            if not waiting:
                del self._by_user[user]
            self._count -= 1
            if not self.dropped:
                log.error("more than %d quota settles queued: dropping the oldest", self._limit)
            self.dropped += 1
        if settles:
            self.wake.set()

    def take(self, user_id: int) -> list[QuotaSettle]:
        """``user_id``'s queued settles, taken out (an admission writes them)."""
        mine = self._by_user.pop(user_id, [])
        self._count -= len(mine)
        return mine

    def take_all(self) -> list[QuotaSettle]:
        """Everything queued, taken out and marked as being written until ``written``."""
        batch = [s for waiting in self._by_user.values() for s in waiting]
        self._by_user.clear()
        self._count = 0
        self._writing.update(s.user_id for s in batch)
        return batch

    def written(self, batch: list[QuotaSettle], *, ok: bool) -> None:
        """A batch from ``take_all`` was written (or, not ``ok``, goes back in the queue)."""
        self._writing.subtract(s.user_id for s in batch)
        self._writing += Counter()  # drop the zeros
        if not ok:
            self.put(*batch)
        self._written.set()
        self._written = asyncio.Event()

    def writing(self, user_id: int) -> bool:
        return self._writing[user_id] > 0

    def waiting(self, user_id: int) -> bool:
        return user_id in self._by_user or self.writing(user_id)

    async def until_written(self, user_id: int, *, queued_too: bool) -> None:
        """Until no settle of ``user_id`` is being written (nor queued, with ``queued_too``)."""
        while self.writing(user_id) or (queued_too and user_id in self._by_user):
            await self._written.wait()
