"""SQLite queries of the quota ledger (``contracts.QuotaLedgerStore``): each call one
``BEGIN IMMEDIATE`` transaction, so an admission is atomic across every process on the file
(several workers of one gateway), with the rules of ``quota_rules.decide``.

A mixin of ``SqliteStore`` (see ``sqlite_core``). The ledger has a connection of its own, used
by one thread of its own, and runs each transaction whole in one call to that thread: the
file's write lock is held for the statements only, never across hops between threads, which is
what lets several processes take turns on it without stalling. A file locked past the busy
timeout (other processes writing for seconds) is a ``StoreError``, as a database that does not
answer is.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from authproxy.store.base import StoreError
from authproxy.store.migrations import COUNTERS_SINCE, QUOTA_TABLES
from authproxy.store.quota_records import (
    RPM_WINDOW,
    QuotaAnswer,
    QuotaAsk,
    QuotaSettle,
    QuotaState,
    Window,
)
from authproxy.store.quota_rules import decide
from authproxy.store.sqlite_core import BUSY_TIMEOUT_MS, SqliteCore

__all__ = ["QuotaQueries"]

T = TypeVar("T")
Db = sqlite3.Connection

_LIVE = "FROM quota_leases WHERE user_id = ? AND settled_at IS NULL AND expires_at > ?"
_RECENT = "FROM quota_leases WHERE user_id = ? AND admitted_at > ?"
_USED = "SELECT used FROM quota_usage WHERE user_id = ? AND window_start = ? AND window_end = ?"
_CHARGE = (
    "INSERT INTO quota_usage (user_id, window_start, window_end, used) VALUES (?, ?, ?, ?)"
    " ON CONFLICT(user_id, window_start, window_end) DO UPDATE SET used = used + excluded.used"
)


def _one(db: Db, sql: str, params: Sequence[Any]) -> Any:
    row = db.execute(sql, params).fetchone()
    assert row is not None
    return row[0]


def _window(db: Db, window: Window) -> None:
    """Add, once, the usage of ``window`` from before the counters began."""
    since = _one(db, "SELECT value FROM meta WHERE name = ?", (COUNTERS_SINCE,)) / 1000
    if since < 0 or window.start >= since:
        return
    marked = db.execute(
        "INSERT INTO quota_windows (window_start, window_end) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (window.start, window.end),
    )
    if marked.rowcount == 0:
        return
    db.execute(
        "INSERT INTO quota_usage (user_id, window_start, window_end, used)"
        " SELECT user_id, ?, ?, SUM(prompt_tokens + completion_tokens) FROM usage"
        " WHERE ts >= ? AND ts < ? AND user_id IS NOT NULL GROUP BY user_id"
        " ON CONFLICT(user_id, window_start, window_end) DO UPDATE SET used = used + excluded.used",
        (window.start, window.end, window.start, min(window.end, since)),
    )


def _used(db: Db, user_id: int, window: Window) -> int:
    row = db.execute(_USED, (user_id, window.start, window.end)).fetchone()
    return int(row[0]) if row else 0


def _begin(db: Db, shared: bool, now: float) -> None:
    since = _one(db, "SELECT value FROM meta WHERE name = ?", (COUNTERS_SINCE,))
    if not shared:
        value = -1  # counted in one process's memory from now on: counters go stale
    elif since < 0:  # nobody kept them (or a local count ran): begin them afresh
        for table in QUOTA_TABLES:
            db.execute(f"DELETE FROM {table}")
        value = math.ceil(now * 1000)
    else:
        return
    db.execute("UPDATE meta SET value = ? WHERE name = ?", (value, COUNTERS_SINCE))


def _admit(db: Db, ask: QuotaAsk, settles: Sequence[QuotaSettle]) -> QuotaAnswer:
    _settle(db, settles)
    _window(db, ask.day)
    _window(db, ask.month)
    user, now = ask.user_id, ask.now
    live, held = db.execute(f"SELECT COUNT(*), SUM(reserved) {_LIVE}", (user, now)).fetchone()
    rpm, recent, rpm_wait = ask.requests_per_minute, 0, 0.0
    if rpm is not None:  # counted only against a limit, and no further than it
        recent = _one(
            db,
            f"SELECT COUNT(*) FROM (SELECT 1 {_RECENT} LIMIT ?)",
            (user, now - RPM_WINDOW, max(rpm, 0)),
        )
        if recent >= rpm:
            rpm_wait = RPM_WINDOW
            if rpm > 0:
                rpm_wait = _one(
                    db,
                    f"SELECT admitted_at + ? - ? {_RECENT} ORDER BY admitted_at DESC"
                    " LIMIT 1 OFFSET ?",
                    (RPM_WINDOW, now, user, now - RPM_WINDOW, rpm - 1),
                )
    state = QuotaState(
        recent=int(recent),
        rpm_wait=float(rpm_wait),
        live=int(live),
        held=int(held or 0),
        used_day=_used(db, user, ask.day),
        used_month=_used(db, user, ask.month),
    )
    answer = decide(ask, state)
    if answer.refused is None:
        db.execute(
            "INSERT INTO quota_leases (id, user_id, admitted_at, expires_at, reserved)"
            " VALUES (?, ?, ?, ?, ?)",
            (ask.lease_id, user, now, ask.expires_at, answer.reserved),
        )
    return answer


def _settle(db: Db, settles: Sequence[QuotaSettle]) -> None:
    for s in sorted(settles, key=lambda s: s.user_id):
        released = db.execute(
            "UPDATE quota_leases SET settled_at = ?, reserved = 0"
            " WHERE id = ? AND settled_at IS NULL",
            (s.now, s.lease_id),
        )
        if released.rowcount == 0:  # expired and forgotten, or admitted while away
            added = db.execute(
                "INSERT INTO quota_leases"
                " (id, user_id, admitted_at, expires_at, reserved, settled_at)"
                " VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
                (s.lease_id, s.user_id, s.admitted_at, s.now, s.now),
            )
            if added.rowcount == 0:
                continue  # settled before: this is a retry
        if s.tokens > 0:
            for window in (s.month, s.day):
                db.execute(_CHARGE, (s.user_id, window.start, window.end, s.tokens))


def _renew(db: Db, lease_ids: Sequence[int], expires_at: float) -> int:
    renewed = db.execute(
        "UPDATE quota_leases SET expires_at = ? WHERE settled_at IS NULL"
        " AND id IN (SELECT value FROM json_each(?))",
        (expires_at, json.dumps(list(lease_ids))),
    )
    return int(renewed.rowcount)


def _quota_used(db: Db, user_id: int, day: Window, month: Window) -> tuple[int, int]:
    _window(db, day)
    _window(db, month)
    return _used(db, user_id, day), _used(db, user_id, month)


def _reap(db: Db, now: float) -> None:
    db.execute(
        "DELETE FROM quota_leases WHERE admitted_at < ?"
        " AND (settled_at IS NOT NULL OR expires_at < ?)",
        (now - RPM_WINDOW, now),
    )
    for table in ("quota_usage", "quota_windows"):
        db.execute(f"DELETE FROM {table} WHERE window_end < ?", (now - 86400,))


class QuotaQueries(SqliteCore):
    _ledger_thread: ThreadPoolExecutor | None = None
    _ledger_db: Db | None = None

    def _ledger_connection(self) -> Db:  # in the ledger's thread only
        if self._ledger_db is None:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = NORMAL")  # as the store's own connection (WAL)
            self._ledger_db = db
        return self._ledger_db

    async def _ledger(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(db, *args)`` in one ``BEGIN IMMEDIATE`` transaction, in the ledger's thread."""

        def run() -> T:
            db = self._ledger_connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db, *args)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        if self._ledger_thread is None:
            self._ledger_thread = ThreadPoolExecutor(1, thread_name_prefix="quota-ledger")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._ledger_thread, run)
        except sqlite3.OperationalError as exc:  # "database is locked"
            raise StoreError(f"{self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._ledger_thread is not None:
            db = self._ledger_db
            if db is not None:
                await asyncio.get_running_loop().run_in_executor(self._ledger_thread, db.close)
            self._ledger_thread.shutdown()
            self._ledger_thread = self._ledger_db = None
        await super().close()

    async def quota_begin(self, *, shared: bool, now: float) -> None:
        await self._ledger(_begin, shared, now)

    async def quota_admit(self, ask: QuotaAsk, settles: Sequence[QuotaSettle] = ()) -> QuotaAnswer:
        return await self._ledger(_admit, ask, settles)

    async def quota_settle(self, settles: Sequence[QuotaSettle]) -> None:
        if settles:
            await self._ledger(_settle, settles)

    async def quota_renew(self, lease_ids: Sequence[int], *, expires_at: float) -> int:
        return await self._ledger(_renew, lease_ids, expires_at) if lease_ids else 0

    async def quota_used(self, user_id: int, *, day: Window, month: Window) -> tuple[int, int]:
        return await self._ledger(_quota_used, user_id, day, month)

    async def quota_reap(self, *, now: float) -> None:
        await self._ledger(_reap, now)
