"""Notice changes made to the store by any process, within a fraction of a second.

The database bumps ``meta.auth_epoch`` itself (triggers) on every change to keys, users, models
and quotas, whoever makes it: this gateway, the CLI, the TUI, another replica. One cheap query
per ``interval`` compares it; when it moved, every subscriber reloads its snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from authproxy.store.contracts import ChangeStore

__all__ = ["Reloader", "StoreWatch"]

log = logging.getLogger(__name__)

Reloader = Callable[[], Awaitable[None]]


class StoreWatch:
    def __init__(
        self, *, store: ChangeStore, interval: float = 0.25, min_gap: float = 0.05
    ) -> None:
        self._store = store
        self._interval = interval
        self._min_gap = min_gap
        self._reloaders: list[Reloader] = []
        self._checked_at = 0.0
        self._in_flight: asyncio.Future[bool] | None = None
        self.epoch = -1

    def subscribe(self, reloader: Reloader) -> None:
        self._reloaders.append(reloader)

    async def check(self) -> bool:
        """Reload every subscriber if the store changed since the last check."""
        if self._in_flight is not None:
            return await asyncio.shield(self._in_flight)
        self._in_flight = asyncio.get_running_loop().create_future()
        try:
            changed = await self._check()
        except BaseException as exc:
            self._in_flight.set_exception(exc)
            self._in_flight.exception()  # retrieved: no "never retrieved" warning
            raise
        else:
            self._in_flight.set_result(changed)
            return changed
        finally:
            self._in_flight = None
            self._checked_at = asyncio.get_running_loop().time()

    async def _check(self) -> bool:
        epoch = await self._store.auth_epoch()
        if epoch == self.epoch:
            return False
        for reload in self._reloaders:
            await reload()
        self.epoch = epoch
        return True

    async def check_if_stale(self) -> bool:
        """Check now unless a check ran in the last ``min_gap`` seconds (or one is running).

        For a key the index does not know: it may have been created a moment ago by another
        process. Coalesced and rate-limited, so a flood of unknown keys costs at most one tiny
        query every ``min_gap`` seconds, whatever its rate.
        """
        if self._in_flight is None:
            age = asyncio.get_running_loop().time() - self._checked_at
            if age < self._min_gap:
                return False
        return await self.check()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:
                log.exception("store check failed; keeping the previous snapshots")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[StoreWatch]:
        await self.check()
        task = asyncio.create_task(self._loop(), name="store-watch")
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
