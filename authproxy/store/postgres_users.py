"""PostgreSQL queries for who may do what: the auth index, users, API keys and model switches.

A mixin of ``PostgresStore`` (see ``postgres_core``): every write goes through ``_write``. The
columns have the records' types (BOOLEAN flags, BYTEA digests), so rows map onto them as they
are.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from authproxy.clock import now
from authproxy.store.base import ConflictError, NotFoundError
from authproxy.store.postgres_core import Connection, PostgresCore, changed_rows
from authproxy.store.records import ActiveKey, ApiKey, ModelSetting, User

_USER_COLS = "id, name, role, email, disabled, created_at"
_KEY_SELECT = (
    "SELECT k.id, k.user_id, u.name, k.prefix, k.label, k.created_at, k.expires_at,"
    " k.revoked_at, k.last_used_at FROM api_keys k JOIN users u ON u.id = k.user_id"
)


class UserQueries(PostgresCore):
    # -- auth index -------------------------------------------------------------------------

    async def auth_epoch(self) -> int:
        row = await self._one("SELECT value FROM meta WHERE name = 'auth_epoch'")
        assert row is not None
        return int(row[0])

    async def active_keys(self) -> list[ActiveKey]:
        rows = await self._all(
            "SELECT k.key_hash, k.id, u.id, u.name, u.role, k.expires_at"
            " FROM api_keys k JOIN users u ON u.id = k.user_id"
            " WHERE k.revoked_at IS NULL AND NOT u.disabled"
        )
        return [ActiveKey(*r) for r in rows]

    # -- users ------------------------------------------------------------------------------

    async def create_user(self, *, name: str, role: str, email: str | None) -> User:
        async def run(con: Connection) -> User:
            try:
                row = await con.fetchrow(
                    "INSERT INTO users (name, role, email, created_at) VALUES ($1, $2, $3, $4)"
                    f" RETURNING {_USER_COLS}",
                    name,
                    role,
                    email,
                    now(),
                )
            except asyncpg.UniqueViolationError:
                raise ConflictError(f"user {name!r} already exists") from None
            assert row is not None
            return User(*row)

        return await self._write(run)

    async def get_user(self, name: str) -> User:
        row = await self._one(f"SELECT {_USER_COLS} FROM users WHERE name = $1", name)
        if row is None:
            raise NotFoundError(f"no user {name!r}")
        return User(*row)

    async def list_users(self) -> list[User]:
        return [User(*r) for r in await self._all(f"SELECT {_USER_COLS} FROM users ORDER BY name")]

    async def _update_user(self, name: str, column: str, value: Any) -> User:
        async def run(con: Connection) -> User:
            row = await con.fetchrow(
                f"UPDATE users SET {column} = $1 WHERE name = $2 RETURNING {_USER_COLS}",
                value,
                name,
            )
            if row is None:
                raise NotFoundError(f"no user {name!r}")
            return User(*row)

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
                "INSERT INTO api_keys (user_id, key_hash, prefix, label, created_at, expires_at)"
                " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                user_id,
                key_hash,
                prefix,
                label,
                now(),
                expires_at,
            )
            return int(key_id)

        return await self._get_key(await self._write(run))

    async def _get_key(self, key_id: int) -> ApiKey:
        row = await self._one(f"{_KEY_SELECT} WHERE k.id = $1", key_id)
        if row is None:
            raise NotFoundError(f"no key with id {key_id}")
        return ApiKey(*row)

    async def list_keys(self, user_id: int | None = None) -> list[ApiKey]:
        if user_id is None:
            rows = await self._all(f"{_KEY_SELECT} ORDER BY k.id")
        else:
            rows = await self._all(f"{_KEY_SELECT} WHERE k.user_id = $1 ORDER BY k.id", user_id)
        return [ApiKey(*r) for r in rows]

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
        rows = await self._all("SELECT name, enabled FROM models ORDER BY name")
        return [ModelSetting(*r) for r in rows]

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
