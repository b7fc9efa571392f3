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

from authproxy.store.base import Store

log = logging.getLogger("authproxy.store_watch")

Reloader = Callable[[], Awaitable[None]]


class StoreWatch:
    def __init__(self, *, store: Store, interval: float = 0.25) -> None:
        self._store = store
        self._interval = interval
        self._reloaders: list[Reloader] = []
        self.epoch = -1

    def subscribe(self, reloader: Reloader) -> None:
        self._reloaders.append(reloader)

    async def check(self) -> bool:
        """Reload every subscriber if the store changed since the last check."""
        epoch = await self._store.auth_epoch()
        if epoch == self.epoch:
            return False
        for reload in self._reloaders:
            await reload()
        self.epoch = epoch
        return True

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
