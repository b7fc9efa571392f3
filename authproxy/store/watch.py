"""Notice changes made to the store by any process, within a fraction of a second.

The database bumps ``meta.auth_epoch`` itself (triggers) on every change to keys, users, models
and quotas, whoever makes it: this gateway, the CLI, the TUI, another replica. One cheap query
per ``interval`` compares it; when it moved, every subscriber reloads its snapshot. A store that
pushes changes (``ChangeFeed``: PostgreSQL's LISTEN/NOTIFY) wakes that check at once; the poll
stays, as the safety net for a notification lost with its connection, and the listening
connection is made again after a loss.

While the database is away the snapshots stay as they were (keys keep working from memory);
``healthy`` says whether the last check reached it, and a request asking about a key nobody
knows (``check_if_stale``) is answered "no change" at once instead of waiting on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from authproxy.store.base import StoreError
from authproxy.store.contracts import ChangeFeed, ChangeStore

__all__ = ["Reloader", "StoreWatch"]

log = logging.getLogger(__name__)

Reloader = Callable[[], Awaitable[None]]
CHECK_TIMEOUT = 5.0  # seconds a background check may take before it counts as a failure
STALE_TIMEOUT = 1.0  # ... and one a request waits on (an unknown key)
RETRY_DOWN = 1.0  # seconds a request trusts "the database is away" before asking again
RELISTEN = (0.5, 5.0)  # first and longest wait before listening again after a loss


class StoreWatch:
    def __init__(
        self,
        *,
        store: ChangeStore,
        interval: float = 0.25,
        min_gap: float = 0.05,
        feed: ChangeFeed | None = None,
    ) -> None:
        self._store = store
        self._feed = feed
        self._interval = interval
        self._min_gap = min_gap
        self._reloaders: list[Reloader] = []
        self._checked_at = 0.0
        self._failed_at = 0.0
        self._in_flight: asyncio.Future[bool] | None = None
        self._wake = asyncio.Event()
        self.epoch = -1
        self.healthy = True
        self.listening = False

    def subscribe(self, reloader: Reloader) -> None:
        self._reloaders.append(reloader)

    async def check(self) -> bool:
        """Reload every subscriber if the store changed since the last check."""
        if self._in_flight is not None:
            return await asyncio.shield(self._in_flight)
        loop = asyncio.get_running_loop()
        self._in_flight = loop.create_future()
        try:
            changed = await self._check()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                self._in_flight.cancel()
            else:
                self._in_flight.set_exception(exc)
                self._in_flight.exception()  # retrieved: no "never retrieved" warning
            if isinstance(exc, StoreError | TimeoutError):
                self._went_away(exc)
            raise
        else:
            self._in_flight.set_result(changed)
            if not self.healthy:
                log.warning("the database answers again")
            self.healthy = True
            return changed
        finally:
            self._in_flight = None
            self._checked_at = loop.time()

    async def _check(self) -> bool:
        epoch = await self._store.auth_epoch()
        if epoch == self.epoch:
            return False
        for reload in self._reloaders:
            await reload()
        self.epoch = epoch
        return True

    def _went_away(self, exc: BaseException) -> None:
        self._failed_at = asyncio.get_running_loop().time()
        if self.healthy:
            log.error(
                "the database is unreachable (%s): keys are served from memory, usage is"
                " queued until it is back",
                exc or "no answer",
            )
        self.healthy = False

    async def check_if_stale(self) -> bool:
        """Check now unless a check ran in the last ``min_gap`` seconds (or one is running).

        For a key the index does not know: it may have been created a moment ago by another
        process. Coalesced and rate-limited, so a flood of unknown keys costs at most one tiny
        query every ``min_gap`` seconds, whatever its rate. Never raises, and never waits
        long: with the database away the answer is "no change".
        """
        now = asyncio.get_running_loop().time()
        if not self.healthy and now - self._failed_at < RETRY_DOWN:
            return False
        if self._in_flight is None and now - self._checked_at < self._min_gap:
            return False
        try:
            async with asyncio.timeout(STALE_TIMEOUT):
                return await self.check()
        except (StoreError, TimeoutError):
            return False

    def _notified(self, _table: str) -> None:
        self._wake.set()

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                async with asyncio.timeout(CHECK_TIMEOUT):
                    await self.check()
            except (StoreError, TimeoutError):
                pass  # logged once by _went_away; the snapshots stay
            except Exception:
                log.exception("store check failed; keeping the previous snapshots")

    async def _listen(self, feed: ChangeFeed) -> None:
        wait = RELISTEN[0]
        while True:
            lost = asyncio.Event()
            try:
                async with feed.listen(self._notified, lost.set):
                    self.listening, wait = True, RELISTEN[0]
                    self._wake.set()  # what changed while nobody listened
                    await lost.wait()
            except StoreError as exc:
                log.debug("listening for changes failed: %s", exc)
            finally:
                self.listening = False
            await asyncio.sleep(wait)
            wait = min(wait * 2, RELISTEN[1])

    @asynccontextmanager
    async def running(self) -> AsyncIterator[StoreWatch]:
        await self.check()
        tasks = [asyncio.create_task(self._poll(), name="store-watch")]
        if self._feed is not None:
            tasks.append(asyncio.create_task(self._listen(self._feed), name="store-listen"))
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
