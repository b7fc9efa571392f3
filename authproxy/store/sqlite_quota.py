"""SQLite queries of the quota ledger (``contracts.QuotaLedgerStore``): each call one
``BEGIN IMMEDIATE`` transaction, so an admission is atomic across every process on the file
(several workers of one gateway), with the rules of ``quota_rules.decide``.

A mixin of ``SqliteStore`` (see ``sqlite_core``). A file locked past the busy timeout (other
processes writing for seconds) is a ``StoreError``, as a database that does not answer is.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiosqlite

from authproxy.store.migrations import COUNTERS_SINCE, QUOTA_TABLES
from authproxy.store.quota_records import (
    RPM_WINDOW,
    QuotaAnswer,
    QuotaAsk,
    QuotaSettle,
    QuotaState,
    Window,
)
from authproxy.store.base import StoreError
from authproxy.store.quota_rules import decide
from authproxy.store.sqlite_core import SqliteCore

__all__ = ["QuotaQueries"]

T = TypeVar("T")

_LIVE = "FROM quota_leases WHERE user_id = ? AND settled_at IS NULL AND expires_at > ?"
_RECENT = "FROM quota_leases WHERE user_id = ? AND admitted_at > ?"
_USED = "SELECT used FROM quota_usage WHERE user_id = ? AND window_start = ? AND window_end = ?"
_CHARGE = (
    "INSERT INTO quota_usage (user_id, window_start, window_end, used) VALUES (?, ?, ?, ?)"
    " ON CONFLICT(user_id, window_start, window_end) DO UPDATE SET used = used + excluded.used"
)


async def _one(db: aiosqlite.Connection, sql: str, params: Sequence[Any]) -> Any:
    row = await (await db.execute(sql, params)).fetchone()
    assert row is not None
    return row[0]


async def _window(db: aiosqlite.Connection, window: Window) -> None:
    """Add, once, the usage of ``window`` from before the counters began."""
    since_ms = await _one(db, "SELECT value FROM meta WHERE name = ?", (COUNTERS_SINCE,))
    since = since_ms / 1000
    if since < 0 or window.start >= since:
        return
    marked = await db.execute(
        "INSERT INTO quota_windows (window_start, window_end) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (window.start, window.end),
    )
    if marked.rowcount == 0:
        return
    await db.execute(
        "INSERT INTO quota_usage (user_id, window_start, window_end, used)"
        " SELECT user_id, ?, ?, SUM(prompt_tokens + completion_tokens) FROM usage"
        " WHERE ts >= ? AND ts < ? AND user_id IS NOT NULL GROUP BY user_id"
        " ON CONFLICT(user_id, window_start, window_end) DO UPDATE SET used = used + excluded.used",
        (window.start, window.end, window.start, min(window.end, since)),
    )


async def _used(db: aiosqlite.Connection, user_id: int, window: Window) -> int:
    row = await (await db.execute(_USED, (user_id, window.start, window.end))).fetchone()
    return int(row[0]) if row else 0


class QuotaQueries(SqliteCore):
    async def _ledger(self, fn: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        try:
            return await self._write(fn)
        except sqlite3.OperationalError as exc:  # "database is locked"
            raise StoreError(f"{self.path}: {exc}") from exc

    async def quota_begin(self, *, shared: bool, now: float) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            since = await _one(db, "SELECT value FROM meta WHERE name = ?", (COUNTERS_SINCE,))
            if not shared:
                value = -1  # counted in one process's memory from now on: counters go stale
            elif since < 0:  # nobody kept them (or a local count ran): begin them afresh
                for table in QUOTA_TABLES:
                    await db.execute(f"DELETE FROM {table}")
                value = math.ceil(now * 1000)
            else:
                return
            await db.execute("UPDATE meta SET value = ? WHERE name = ?", (value, COUNTERS_SINCE))

        await self._ledger(run)

    async def quota_admit(self, ask: QuotaAsk) -> QuotaAnswer:
        async def run(db: aiosqlite.Connection) -> QuotaAnswer:
            await _window(db, ask.day)
            await _window(db, ask.month)
            user, now = ask.user_id, ask.now
            live = await (
                await db.execute(f"SELECT COUNT(*), SUM(reserved) {_LIVE}", (user, now))
            ).fetchone()
            assert live is not None
            rpm, recent, rpm_wait = ask.requests_per_minute, 0, 0.0
            if rpm is not None:  # counted only against a limit, and no further than it
                recent = await _one(
                    db,
                    f"SELECT COUNT(*) FROM (SELECT 1 {_RECENT} LIMIT ?)",
                    (user, now - RPM_WINDOW, max(rpm, 0)),
                )
            if rpm is not None and recent >= rpm:
                rpm_wait = RPM_WINDOW
                if rpm > 0:
                    rpm_wait = await _one(
                        db,
                        f"SELECT admitted_at + ? - ? {_RECENT} ORDER BY admitted_at DESC"
                        " LIMIT 1 OFFSET ?",
                        (RPM_WINDOW, now, user, now - RPM_WINDOW, rpm - 1),
                    )
            state = QuotaState(
                recent=int(recent),
                rpm_wait=float(rpm_wait),
                live=int(live[0]),
                held=int(live[1] or 0),
                used_day=await _used(db, user, ask.day),
                used_month=await _used(db, user, ask.month),
            )
            answer = decide(ask, state)
            if answer.refused is None:
                await db.execute(
                    "INSERT INTO quota_leases (id, user_id, admitted_at, expires_at, reserved)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (ask.lease_id, user, now, ask.expires_at, answer.reserved),
                )
            return answer

        return await self._ledger(run)

    async def quota_settle(self, settles: Sequence[QuotaSettle]) -> None:
        if not settles:
            return

        async def run(db: aiosqlite.Connection) -> None:
            for s in sorted(settles, key=lambda s: s.user_id):
                released = await db.execute(
                    "UPDATE quota_leases SET settled_at = ?, reserved = 0"
                    " WHERE id = ? AND settled_at IS NULL",
                    (s.now, s.lease_id),
                )
                if released.rowcount == 0:  # expired and forgotten, or admitted while away
                    added = await db.execute(
                        "INSERT INTO quota_leases"
                        " (id, user_id, admitted_at, expires_at, reserved, settled_at)"
                        " VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
                        (s.lease_id, s.user_id, s.admitted_at, s.now, s.now),
                    )
                    if added.rowcount == 0:
                        continue  # settled before: this is a retry
                if s.tokens > 0:
                    for window in (s.month, s.day):
                        await db.execute(_CHARGE, (s.user_id, window.start, window.end, s.tokens))

        await self._ledger(run)

    async def quota_renew(self, lease_ids: Sequence[int], *, expires_at: float) -> int:
        if not lease_ids:
            return 0

        async def run(db: aiosqlite.Connection) -> int:
            renewed = await db.execute(
                "UPDATE quota_leases SET expires_at = ? WHERE settled_at IS NULL"
                " AND id IN (SELECT value FROM json_each(?))",
                (expires_at, json.dumps(list(lease_ids))),
            )
            return int(renewed.rowcount)

        return await self._ledger(run)

    async def quota_used(self, user_id: int, *, day: Window, month: Window) -> tuple[int, int]:
        async def run(db: aiosqlite.Connection) -> tuple[int, int]:
            await _window(db, day)
            await _window(db, month)
            return await _used(db, user_id, day), await _used(db, user_id, month)

        return await self._ledger(run)

    async def quota_reap(self, *, now: float) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            await db.execute(
                "DELETE FROM quota_leases WHERE admitted_at < ?"
                " AND (settled_at IS NOT NULL OR expires_at < ?)",
                (now - RPM_WINDOW, now),
            )
            for table in ("quota_usage", "quota_windows"):
                await db.execute(f"DELETE FROM {table} WHERE window_end < ?", (now - 86400,))

        await self._ledger(run)
