"""Usage accounting: one row per request, written by a single batched writer.

Handlers hand rows over with ``record`` (and audit entries of the request path, such as failed
logins, with ``audit``) — no I/O, never blocks; a background task writes them in batches, one
transaction per batch. On shutdown the writer drains everything it was given
before the store closes, so no row is lost on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from authproxy.store.contracts import KeyStore, UsageStore
from authproxy.store.records import AuditEntry, UsageRow

__all__ = ["AccountingStore", "UsageWriter"]

log = logging.getLogger(__name__)


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
    ) -> None:
        self._store = store
        self._flush_interval = flush_interval
        self._max_batch = max_batch
        self._take_last_used = take_last_used
        self._pending: list[UsageRow] = []
        self._pending_audit: list[AuditEntry] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self.written = 0

    def record(self, row: UsageRow) -> None:
        self._pending.append(row)
        if len(self._pending) >= self._max_batch:
            self._wake.set()

    def audit(self, entry: AuditEntry) -> None:
        self._pending_audit.append(entry)

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._pending_audit)

    async def flush(self) -> None:
        """Write everything recorded so far (and the keys' last-use times)."""
        while self._pending or self._pending_audit:
            batch = self._pending[: self._max_batch]
            audit = self._pending_audit[: self._max_batch]
            try:
                await self._store.insert_usage(batch, audit)
            except Exception:
                log.exception("writing %d usage rows failed; will retry", len(batch))
                raise
            del self._pending[: len(batch)]
            del self._pending_audit[: len(audit)]
            self.written += len(batch)
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
            await self.flush()
