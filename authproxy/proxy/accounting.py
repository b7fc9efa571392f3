"""Usage accounting: one row per request, written by a single batched writer.

Handlers hand rows over with ``record`` (and audit entries of the request path, such as failed
logins, with ``audit``) — no I/O, never blocks; a background task writes them in batches, one
transaction per batch. On shutdown the writer drains everything it was given
before the store closes, so no row is lost on SIGTERM.

While the database is away (PostgreSQL restarting, a network cut) rows wait in memory, up to
``max_queued`` (``queued`` and ``dropped`` are metrics; a row that finds the queue full is
dropped and counted), and the writer tries again every ``flush_interval``: nothing is lost
across a restart of the database. At shutdown it keeps trying for ``drain_within`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from authproxy.store.contracts import KeyStore, UsageStore
from authproxy.store.records import AuditEntry, UsageRow

__all__ = ["MAX_QUEUED", "AccountingStore", "UsageWriter"]

log = logging.getLogger(__name__)

MAX_QUEUED = 100_000  # usage rows (and audit entries) kept while the database is away


class AccountingStore(UsageStore, KeyStore, Protocol):
    """What the writer writes: usage rows and audit entries, and the keys' last-use times."""


class UsageWriter:
    def __init__(
        self,
        *,
        store: AccountingStore,
        flush_interval: float = 0.2,
        max_batch: int = 500,
        take_last_used: Callable[[], dict[int, float]] | None = None,
        max_queued: int = MAX_QUEUED,
        drain_within: float = 30.0,
    ) -> None:
        self._store = store
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._take_last_used = take_last_used
        self._pending: list[UsageRow] = []
        self._pending_audit: list[AuditEntry] = []
        self._max_queued = max_queued
        self._drain_within = drain_within
        self._wake = asyncio.Event()
        self._stopping = False
        self._failing = False
        self.written = 0
        self.dropped = 0

    def _full(self, what: str) -> bool:
        if self.pending < self._max_queued:
            return False
        if not self.dropped:
            log.error("%d usage rows wait for the database: dropping new %s", self.pending, what)
        self.dropped += 1
        return True

    def record(self, row: UsageRow) -> None:
        if self._full("usage rows"):
            return
        self._pending.append(row)
        if len(self._pending) >= self._max_batch:
            self._wake.set()

    def audit(self, entry: AuditEntry) -> None:
        if self._full("audit entries"):
            return
        self._pending_audit.append(entry)

    @property
    def pending(self) -> int:
        """Rows and audit entries waiting to be written (the queue the metrics show)."""
        return len(self._pending) + len(self._pending_audit)

    async def flush(self) -> None:
        """Write everything recorded so far (and the keys' last-use times)."""
        while self._pending or self._pending_audit:
            batch = self._pending[: self._max_batch]
            audit = self._pending_audit[: self._max_batch]
            try:
                await self._store.insert_usage(batch, audit)
            except Exception as exc:
                if not self._failing:
                    log.warning(
                        "writing usage rows failed (%s); %d wait, trying again", exc, self.pending
                    )
                self._failing = True
                raise
            del self._pending[: len(batch)]
            del self._pending_audit[: len(audit)]
            self.written += len(batch)
        if self._failing:
            log.warning("usage rows are written again; none waits")
            self._failing = False
        if self._take_last_used is not None:
            await self._store.touch_keys(self._take_last_used())

    async def _loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # already logged; rows stay pending for the next round
                await asyncio.sleep(self._flush_interval)

    async def _drain(self) -> None:
        deadline = time.monotonic() + self._drain_within
        while True:
            try:
                await self.flush()
                return
            except Exception:
                if time.monotonic() >= deadline:
                    log.error("%d usage rows could not be written before exit", self.pending)
                    return
                await asyncio.sleep(self._flush_interval)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[UsageWriter]:
        # The loop is never cancelled mid-write (a cancelled COMMIT could be retried and
        # duplicate rows): it is asked to stop, finishes its round, then the rest is flushed.
        task = asyncio.create_task(self._loop(), name="usage-writer")
        try:
            yield self
        finally:
            self._stopping = True
            self._wake.set()
            await task
            await self._drain()
