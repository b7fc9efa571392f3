"""The SQLite connection: opening (WAL, busy timeout, foreign keys), migrations, and the one
write path every query module of ``SqliteStore`` uses.

``SqliteCore`` is the base of the query mixins (``sqlite_users``, ``sqlite_usage``,
``sqlite_login``); ``SqliteStore`` in ``sqlite.py`` puts them together as one class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

import aiosqlite

from authproxy.store.base import StoreError
from authproxy.store.migrations import MIGRATIONS

__all__ = ["BUSY_TIMEOUT_MS", "SqliteCore", "marks"]

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000


def marks(count: int) -> str:
    """``count`` parameter placeholders, as SQLite writes them: ``?, ?, ?``."""
    return ", ".join("?" * count)


class SqliteCore:
    """All writes go through ``_write`` (one lock, one ``BEGIN IMMEDIATE`` transaction each)."""

    def __init__(self, *, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Self:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            path.touch(mode=0o600)  # usage and audit rows are nobody else's business
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            store = cls(db=db, path=path)
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._one("SELECT 1")

    async def _migrate(self) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            row = await (await db.execute("PRAGMA user_version")).fetchone()
            version = int(row[0]) if row else 0
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"database schema {version} is newer than this authproxy ({len(MIGRATIONS)})"
                )
            for number in range(version + 1, len(MIGRATIONS) + 1):
                for statement in MIGRATIONS[number - 1]:
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {number}")

        await self._write(run)

    async def _write(self, fn: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        async with self._write_lock:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                result = await fn(self._db)
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")
            return result

    async def claim_meta(self, name: str, value: int) -> int:
        """Store ``value`` under ``name`` unless a value is there; return the stored one."""

        async def run(db: aiosqlite.Connection) -> int:
            await db.execute(
                "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO NOTHING",
                (name, value),
            )
            row = await (
                await db.execute("SELECT value FROM meta WHERE name = ?", (name,))
            ).fetchone()
            assert row is not None
            return int(row[0])

        return await self._write(run)

    # Reads are one call on the connection's thread each (execute, fetch, close together): a
    # read split over several calls would hold a snapshot while a write of this same connection
    # queues behind it, and that BEGIN IMMEDIATE fails at once ("database is locked") when
    # another connection has committed since the snapshot was taken.
    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._db.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, params))
