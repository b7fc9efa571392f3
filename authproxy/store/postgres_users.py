"""PostgreSQL queries for who may do what: the auth index, users, API keys and model switches.

A mixin of ``PostgresStore`` (see ``postgres_core``): every write goes through ``_write``. The
columns have the records' types (BOOLEAN flags, BYTEA digests), so rows map onto them as they
are.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from authproxy.clock import now
from authproxy.store import rows
from authproxy.store.base import ConflictError, NotFoundError
from authproxy.store.postgres_core import Connection, PostgresCore, changed_rows
from authproxy.store.records import ActiveKey, ApiKey, ModelSetting, User

__all__ = ["UserQueries"]


class UserQueries(PostgresCore):
    # -- auth index -------------------------------------------------------------------------

    async def auth_epoch(self) -> int:
        row = await self._one("SELECT value FROM meta WHERE name = 'auth_epoch'")
        assert row is not None
        return int(row[0])

    async def active_keys(self) -> list[ActiveKey]:
        return [rows.active_key(r) for r in await self._all(rows.ACTIVE_KEYS)]

    # -- users ------------------------------------------------------------------------------

    async def create_user(self, *, name: str, role: str, email: str | None) -> User:
        async def run(con: Connection) -> User:
            try:
                row = await con.fetchrow(
                    "INSERT INTO users (name, role, email, created_at) VALUES ($1, $2, $3, $4)"
                    f" RETURNING {rows.USER_COLUMNS}",
                    name,
                    role,
                    email,
                    now(),
                )
            except asyncpg.UniqueViolationError:
                raise ConflictError(f"user {name!r} already exists") from None
            assert row is not None
            return rows.user(row)

        return await self._write(run)

    async def get_user(self, name: str) -> User:
        row = await self._one(f"SELECT {rows.USER_COLUMNS} FROM users WHERE name = $1", name)
        if row is None:
            raise NotFoundError(f"no user {name!r}")
        return rows.user(row)

    async def list_users(self) -> list[User]:
        users = await self._all(f"SELECT {rows.USER_COLUMNS} FROM users ORDER BY name")
        return [rows.user(r) for r in users]

    async def _update_user(self, name: str, column: str, value: Any) -> User:
        async def run(con: Connection) -> User:
            row = await con.fetchrow(
                f"UPDATE users SET {column} = $1 WHERE name = $2 RETURNING {rows.USER_COLUMNS}",
                value,
                name,
            )
            if row is None:
                raise NotFoundError(f"no user {name!r}")
            return rows.user(row)

        return await self._write(run)

    async def set_user_disabled(self, name: str, disabled: bool) -> User:
        return await self._update_user(name, "disabled", disabled)

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
        async def run(con: Connection) -> int:
            if max_active is not None:
                # The user's row locked first: concurrent creations for one user (from any
                # process) count and insert one after the other, so none goes past the limit.
                await con.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
                active = await con.fetchval(
                    "SELECT COUNT(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL",
                    user_id,
                )
                if active >= max_active:
                    raise ConflictError(
                        f"{active} keys already (at most {max_active});"
                        " revoke one before creating another"
                    )
            key_id = await con.fetchval(
                "INSERT INTO api_keys (user_id, key_hash, prefix, label, created_at, expires_at,"
                " acts_for_users) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                user_id,
                key_hash,
                prefix,
                label,
                now(),
                expires_at,
                acts_for_users,
            )
            return int(key_id)

        return await self._get_key(await self._write(run))

    async def _get_key(self, key_id: int) -> ApiKey:
        row = await self._one(f"{rows.KEY_SELECT} WHERE k.id = $1", key_id)
        if row is None:
            raise NotFoundError(f"no key with id {key_id}")
        return rows.api_key(row)

    async def list_keys(self, user_id: int | None = None) -> list[ApiKey]:
        if user_id is None:
            keys = await self._all(f"{rows.KEY_SELECT} ORDER BY k.id")
        else:
            keys = await self._all(f"{rows.KEY_SELECT} WHERE k.user_id = $1 ORDER BY k.id", user_id)
        return [rows.api_key(r) for r in keys]

    async def revoke_key(self, key_id: int) -> ApiKey:
        async def run(con: Connection) -> None:
            status = await con.execute(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                now(),
                key_id,
            )
            if changed_rows(status) == 0:
                if await con.fetchval("SELECT 1 FROM api_keys WHERE id = $1", key_id) is None:
                    raise NotFoundError(f"no key with id {key_id}")
                raise ConflictError(f"key {key_id} is already revoked")

        await self._write(run)
        return await self._get_key(key_id)

    async def touch_keys(self, last_used: dict[int, float]) -> None:
        if not last_used:
            return

        async def run(con: Connection) -> None:
            await con.executemany(
                "UPDATE api_keys SET last_used_at = $1 WHERE id = $2",
                [(ts, key_id) for key_id, ts in last_used.items()],
            )

        await self._write(run)

    # -- models -----------------------------------------------------------------------------

    async def list_model_settings(self) -> list[ModelSetting]:
        settings = await self._all("SELECT name, enabled FROM models ORDER BY name")
        return [rows.model_setting(r) for r in settings]

    async def set_model_enabled(self, name: str, enabled: bool) -> ModelSetting:
        async def run(con: Connection) -> None:
            await con.execute(
                "INSERT INTO models (name, enabled, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (name) DO UPDATE SET enabled = excluded.enabled,"
                " updated_at = excluded.updated_at",
                name,
                enabled,
                now(),
            )

        await self._write(run)
        return ModelSetting(name, enabled)
