"""The quota book of several gateway processes or machines on one database: the counters live
in the database (``QuotaLedgerStore``), so every replica enforces one quota, exactly.

- **Admit**: one round trip (``quota_admit``: the rules and the lease in one atomic step), made
  only for a user who has a limit; a user without any is admitted with no wait.
- **Settle**: after the request, off its path. Settles queue and go in batches (one statement
  each); an admission of a user with settles still queued takes them along and writes them
  first, in its one round trip, so this replica never refuses a request for a slot its own
  finished request still held, and never waits for that settle either.
- **Leases**: this replica renews the leases of its requests in flight every third of
  ``quotas.lease_seconds`` (one statement for all of them); a crashed replica's leases stop
  counting after ``lease_seconds``. Stale rows are reaped every minute by every replica.
- **The database away** (a call fails, or a remote one takes longer than ``ADMIT_TIMEOUT``):
  fail open with local counters. This replica decides alone with ``LocalQuotaBook``, which
  holds its own requests in flight and rate, on top of the tokens the database last reported;
  settles queue (bounded) and are written when it is back. So during an outage each replica
  enforces each limit on its own: N replicas may together admit up to N times a user's rate,
  concurrency and remaining tokens. It tries the database again after ``RETRY_DOWN`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Generic

from authproxy.auth.principal import Principal
from authproxy.clock import now
from authproxy.config.schema import Quotas, Role
from authproxy.limits.quota import Limits, R, Windows, ask_for, new_lease_id, refusal
from authproxy.limits.quota_local import LocalAdmission, LocalQuotaBook, LocalQuotaStore
from authproxy.limits.settle_queue import SettleQueue
from authproxy.store.base import StoreError
from authproxy.store.quota_records import QuotaSettle

__all__ = ["ADMIT_TIMEOUT", "SharedAdmission", "SharedQuotaBook"]

log = logging.getLogger(__name__)

ADMIT_TIMEOUT = 1.0  # seconds an admission waits on the database before deciding alone
RETRY_DOWN = 1.0  # seconds decided alone before asking the database again
REAP_EVERY = 60.0


class SharedAdmission(Generic[R]):
    """One admitted request: its lease in the database, and its hold in this process."""

    __slots__ = (
        "_book",
        "_hold",
        "_settled",
        "admitted_at",
        "lease_id",
        "prepared",
        "tokens",
        "user_id",
    )

    def __init__(
        self, *, book: SharedQuotaBook, hold: LocalAdmission[R], lease_id: int, admitted_at: float
    ) -> None:
        self._book = book
        self._hold = hold
        self._settled = False
        self.lease_id = lease_id
        self.user_id = hold.user_id
        self.admitted_at = admitted_at
        self.prepared: R = hold.prepared
        self.tokens = 0

    def settle(self, used_tokens: int) -> None:
        if self._settled:
            return
        self._settled = True
        self.tokens = used_tokens
        self._hold.settle(used_tokens)
        self._book.settled(self)


class SharedQuotaBook:
    def __init__(
        self,
        *,
        store: LocalQuotaStore,
        roles: dict[str, Role],
        settings: Quotas,
        timeout: float | None = ADMIT_TIMEOUT,
    ) -> None:
        """``timeout``: how long a call waits on the database before this replica decides
        alone (None: as long as it takes: a file on this machine cannot be cut off)."""
        self._store = store
        self._timeout = timeout
        self._settings = settings
        self._lease_seconds = settings.lease_seconds
        self._windows = Windows(timezone=settings.timezone)
        self._local = LocalQuotaBook(store=store, roles=roles, settings=settings)
        self._in_flight: dict[int, SharedAdmission[Any]] = {}  # by lease id
        self._settles = SettleQueue()
        self._down_until = 0.0  # time.monotonic() until which admissions are decided here
        self.decided_alone = 0  # admissions decided without the database (a metric)

    # -- what the request path and the account page use -------------------------------------

    def limits(self, principal: Principal) -> Limits:
        return self._local.limits(principal)

    async def reload(self) -> None:
        await self._local.reload()

    @property
    def queued_settles(self) -> int:
        return len(self._settles)

    @property
    def dropped_settles(self) -> int:
        return self._settles.dropped

    @property
    def away(self) -> bool:
        return time.monotonic() < self._down_until

    async def used(self, user_id: int) -> tuple[int, int]:
        await self._written(user_id, queued_too=True)  # with what this replica's requests used
        if not self.away:
            day, month = self._windows.at(now())
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._store.quota_used(user_id, day=day, month=month)
            except (StoreError, TimeoutError) as exc:
                self._went_away(exc)
        return self._local.used_now(user_id)

    async def admit(self, principal: Principal, prepared: R) -> SharedAdmission[R]:
        limits = self._local.limits(principal)
        user, t = principal.user_id, now()
        lease_id = new_lease_id()
        if not limits.any:  # nothing to check: no round trip, only charged when settled
            return self._admitted(self._local.track(user, 0, prepared), lease_id, t)
        await self._written(user, queued_too=False)  # a batch under way: it is written first
        if self.away:
            return self._alone(principal, prepared, lease_id, t)
        carried = self._settles.take(user)  # written first, in the same round trip
        ask = ask_for(
            user_id=user,
            limits=limits,
            prepared=prepared,
            settings=self._settings,
            windows=self._windows,
            now=t,
            expires_at=t + self._lease_seconds,
            lease_id=lease_id,
        )
        try:
            async with asyncio.timeout(self._timeout):
                answer = await self._store.quota_admit(ask, carried)
        except (StoreError, TimeoutError) as exc:
            self._settles.put(*carried)
            self._went_away(exc)
            # The lease may have been written before the answer was lost: the same id, so
            # that its settle counts the request once either way.
            return self._alone(principal, prepared, lease_id, t)
        self._local.sync(user, used_day=answer.used_day, used_month=answer.used_month)
        if answer.refused is not None:
            raise refusal(answer, limits)
        if answer.limit != prepared.limit:
            prepared = prepared.with_limit(answer.limit)
        return self._admitted(self._local.track(user, answer.reserved, prepared), lease_id, t)

    def _alone(
        self, principal: Principal, prepared: R, lease_id: int, t: float
    ) -> SharedAdmission[R]:
        hold = self._local.admit_now(principal, prepared)  # 429 from the local counters
        self.decided_alone += 1
        return self._admitted(hold, lease_id, t)

    def _admitted(self, hold: LocalAdmission[R], lease_id: int, t: float) -> SharedAdmission[R]:
        admission = SharedAdmission(book=self, hold=hold, lease_id=lease_id, admitted_at=t)
        self._in_flight[lease_id] = admission
        return admission

    # -- settles ------------------------------------------------------------------------------

    def settled(self, admission: SharedAdmission[R]) -> None:
        self._in_flight.pop(admission.lease_id, None)
        t = now()
        day, month = self._windows.at(t)
        self._queue(
            QuotaSettle(
                lease_id=admission.lease_id,
                user_id=admission.user_id,
                admitted_at=admission.admitted_at,
                tokens=admission.tokens,
                now=t,
                day=day,
                month=month,
            )
        )

    def _queue(self, settle: QuotaSettle) -> None:
        self._settles.put(settle)

    async def _written(self, user_id: int, *, queued_too: bool) -> None:
        """Wait (briefly) until this replica's finished requests of ``user_id`` are settled."""
        if self.away or not self._settles.waiting(user_id):
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self._settles.until_written(user_id, queued_too=queued_too)

    async def _flush(self) -> bool:
        """Write what is queued; False if there was nothing. On failure it stays queued."""
        batch = self._settles.take_all()
        if not batch:
            return False
        try:
            await self._store.quota_settle(batch)
        except BaseException:
            self._settles.written(batch, ok=False)
            raise
        self._settles.written(batch, ok=True)
        return True

    async def _settler(self) -> None:
        while True:
            await self._settles.wake.wait()
            self._settles.wake.clear()
            try:
                if await self._flush():
                    self._down_until = 0.0  # it answers again
            except StoreError as exc:
                self._went_away(exc)
                await asyncio.sleep(RETRY_DOWN)
                self._settles.wake.set()

    def _went_away(self, exc: BaseException) -> None:
        if not self.away:
            log.warning(
                "quotas: the database did not answer (%s); deciding alone for now",
                exc or "timed out",
            )
        self._down_until = time.monotonic() + RETRY_DOWN

    # -- leases -------------------------------------------------------------------------------

    async def _keeper(self) -> None:
        reaped = time.monotonic()
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            t = now()
            try:
                await self._store.quota_renew(
                    list(self._in_flight), expires_at=t + self._lease_seconds
                )
                if time.monotonic() - reaped >= REAP_EVERY:
                    reaped = time.monotonic()
                    await self._store.quota_reap(now=t)
            except StoreError as exc:
                log.debug("renewing quota leases failed: %s", exc)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await self._store.quota_begin(shared=True, now=now())
        tasks = [
            asyncio.create_task(self._settler(), name="quota-settler"),
            asyncio.create_task(self._keeper(), name="quota-leases"),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._last_flush()

    async def _last_flush(self, within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while len(self._settles):
            try:
                await self._flush()
            except StoreError as exc:
                if time.monotonic() > deadline:
                    log.error("quotas: %d settles not written (%s)", len(self._settles), exc)
                    return
                await asyncio.sleep(0.2)
