"""SQLite queries for who may do what: the auth index, users, API keys and model switches.

A mixin of ``SqliteStore`` (see ``sqlite_core``): every write goes through ``_write``.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from authproxy.clock import now
from authproxy.store import rows
from authproxy.store.base import ConflictError, NotFoundError
from authproxy.store.records import ActiveKey, ApiKey, ModelSetting, User
from authproxy.store.sqlite_core import SqliteCore

__all__ = ["UserQueries"]


class UserQueries(SqliteCore):
    # -- auth index -------------------------------------------------------------------------

    async def auth_epoch(self) -> int:
        row = await self._one("SELECT value FROM meta WHERE name = 'auth_epoch'")
        return int(row[0])

    async def active_keys(self) -> list[ActiveKey]:
        return [rows.active_key(r) for r in await self._all(rows.ACTIVE_KEYS)]

    # -- users ------------------------------------------------------------------------------

    async def create_user(self, *, name: str, role: str, email: str | None) -> User:
        async def run(db: aiosqlite.Connection) -> User:
            try:
                cur = await db.execute(
                    "INSERT INTO users (name, role, email, created_at) VALUES (?, ?, ?, ?)",
                    (name, role, email, now()),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(f"user {name!r} already exists") from None
            row = await (
                await db.execute(
                    f"SELECT {rows.USER_COLUMNS} FROM users WHERE id = ?", (cur.lastrowid,)
                )
            ).fetchone()
            assert row is not None
            return rows.user(row)

        return await self._write(run)

    async def get_user(self, name: str) -> User:
        row = await self._one(f"SELECT {rows.USER_COLUMNS} FROM users WHERE name = ?", (name,))
        if row is None:
            raise NotFoundError(f"no user {name!r}")
        return rows.user(row)

    async def list_users(self) -> list[User]:
        users = await self._all(f"SELECT {rows.USER_COLUMNS} FROM users ORDER BY name")
        return [rows.user(r) for r in users]

    async def _update_user(self, name: str, column: str, value: Any) -> User:
        async def run(db: aiosqlite.Connection) -> None:
            cur = await db.execute(f"UPDATE users SET {column} = ? WHERE name = ?", (value, name))
            if cur.rowcount == 0:
                raise NotFoundError(f"no user {name!r}")

        await self._write(run)
        return await self.get_user(name)

    async def set_user_disabled(self, name: str, disabled: bool) -> User:
        return await self._update_user(name, "disabled", int(disabled))

    async def set_user_role(self, name: str, role: str) -> User:
        return await self._update_user(name, "role", role)

    # -- keys -------------------------------------------------------------------------------

    async def create_key(
        self,
        *,
        user_id: int,
        key_hash: bytes,
        prefix: str,
        label: str | None,
        expires_at: float | None,
        max_active: int | None = None,
        acts_for_users: bool = False,
    ) -> ApiKey:
        """A new key; with ``max_active``, refused while the user has that many unrevoked keys
        (counted in the same write transaction, so concurrent requests and other processes
        cannot go past it)."""

        async def run(db: aiosqlite.Connection) -> int:
            if max_active is not None:
                # The cursor is closed at once: a statement left open would keep this
                # connection's read snapshot, and its next BEGIN IMMEDIATE would fail with
                # "database is locked" once another connection has written.
                async with db.execute(
                    "SELECT COUNT(*) FROM api_keys WHERE user_id = ? AND revoked_at IS NULL",
                    (user_id,),
                ) as cur:
                    row = await cur.fetchone()
                if row is not None and row[0] >= max_active:
                    raise ConflictError(
                        f"{row[0]} keys already (at most {max_active});"
                        " revoke one before creating another"
                    )
            cur = await db.execute(
                "INSERT INTO api_keys (user_id, key_hash, prefix, label, created_at, expires_at,"
                " acts_for_users) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, key_hash, prefix, label, now(), expires_at, int(acts_for_users)),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        key_id = await self._write(run)
        return await self._get_key(key_id)

    async def _get_key(self, key_id: int) -> ApiKey:
        row = await self._one(f"{rows.KEY_SELECT} WHERE k.id = ?", (key_id,))
        if row is None:
            raise NotFoundError(f"no key with id {key_id}")
        return rows.api_key(row)

    async def list_keys(self, user_id: int | None = None) -> list[ApiKey]:
        where, params = ("WHERE k.user_id = ?", (user_id,)) if user_id is not None else ("", ())
        keys = await self._all(f"{rows.KEY_SELECT} {where} ORDER BY k.id", params)
        return [rows.api_key(r) for r in keys]

    async def revoke_key(self, key_id: int) -> ApiKey:
        async def run(db: aiosqlite.Connection) -> None:
            cur = await db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now(), key_id),
            )
            if cur.rowcount == 0:
                exists = await (
                    await db.execute("SELECT 1 FROM api_keys WHERE id = ?", (key_id,))
                ).fetchone()
                if exists is None:
                    raise NotFoundError(f"no key with id {key_id}")
                raise ConflictError(f"key {key_id} is already revoked")

        await self._write(run)
        return await self._get_key(key_id)

    async def touch_keys(self, last_used: dict[int, float]) -> None:
        if not last_used:
            return

        async def run(db: aiosqlite.Connection) -> None:
            await db.executemany(
                "UPDATE api_keys SET last_used_at = ? WHERE id = ?",
                [(ts, key_id) for key_id, ts in last_used.items()],
            )

        await self._write(run)

    # -- models -----------------------------------------------------------------------------

    async def list_model_settings(self) -> list[ModelSetting]:
        settings = await self._all("SELECT name, enabled FROM models ORDER BY name")
        return [rows.model_setting(r) for r in settings]

    async def set_model_enabled(self, name: str, enabled: bool) -> ModelSetting:
        async def run(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO models (name, enabled, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET enabled = excluded.enabled,"
                " updated_at = excluded.updated_at",
                (name, int(enabled), now()),
            )

        await self._write(run)
        return ModelSetting(name, enabled)
