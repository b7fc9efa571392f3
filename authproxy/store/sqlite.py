"""SQLite implementation of the store: WAL, busy timeout, foreign keys, one write path."""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from authproxy.clock import now
from authproxy.store.base import ConflictError, NotFoundError, StoreError
from authproxy.store.migrations import MIGRATIONS
from authproxy.store.records import (
    ActiveKey,
    ApiKey,
    AuditEntry,
    ModelSetting,
    QuotaOverride,
    UsageBucket,
    UsageRow,
    UsageSummary,
    User,
)
from authproxy.store.sqlite_login import LoginQueries

T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000

_USER_COLS = "id, name, role, email, disabled, created_at"
_KEY_COLS = (
    "k.id, k.user_id, u.name, k.prefix, k.label, k.created_at, k.expires_at, k.revoked_at,"
    " k.last_used_at"
)
_USAGE_COLS = (
    "ts, request_id, user_id, key_id, model, upstream, endpoint, status, prompt_tokens,"
    " completion_tokens, duration_ms, ttft_ms, stream, usage_source"
)


def _user(row: Iterable[Any]) -> User:
    id_, name, role, email, disabled, created = row
    return User(id_, name, role, email, bool(disabled), created)


def _key(row: Iterable[Any]) -> ApiKey:
    return ApiKey(*row)


class SqliteStore(LoginQueries):
    """All writes go through ``_write`` (one lock, one ``BEGIN IMMEDIATE`` transaction each)."""

    def __init__(self, *, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
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

    # -- plumbing ---------------------------------------------------------------------------

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

    async def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        async with self._db.execute(sql, params) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    # -- auth index -------------------------------------------------------------------------

    async def auth_epoch(self) -> int:
        row = await self._one("SELECT value FROM meta WHERE name = 'auth_epoch'")
        return int(row[0])

    async def active_keys(self) -> list[ActiveKey]:
        rows = await self._all(
            "SELECT k.key_hash, k.id, u.id, u.name, u.role, k.expires_at"
            " FROM api_keys k JOIN users u ON u.id = k.user_id"
            " WHERE k.revoked_at IS NULL AND u.disabled = 0"
        )
        return [ActiveKey(bytes(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

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
                await db.execute(f"SELECT {_USER_COLS} FROM users WHERE id = ?", (cur.lastrowid,))
            ).fetchone()
            assert row is not None
            return _user(row)

        return await self._write(run)

    async def get_user(self, name: str) -> User:
        row = await self._one(f"SELECT {_USER_COLS} FROM users WHERE name = ?", (name,))
        if row is None:
            raise NotFoundError(f"no user {name!r}")
        return _user(row)

    async def list_users(self) -> list[User]:
        return [_user(r) for r in await self._all(f"SELECT {_USER_COLS} FROM users ORDER BY name")]

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
    ) -> ApiKey:
        async def run(db: aiosqlite.Connection) -> int:
            cur = await db.execute(
                "INSERT INTO api_keys (user_id, key_hash, prefix, label, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, key_hash, prefix, label, now(), expires_at),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        key_id = await self._write(run)
        return await self._get_key(key_id)

    async def _get_key(self, key_id: int) -> ApiKey:
        row = await self._one(
            f"SELECT {_KEY_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.id = ?",
            (key_id,),
        )
        if row is None:
            raise NotFoundError(f"no key with id {key_id}")
        return _key(row)

    async def list_keys(self, user_id: int | None = None) -> list[ApiKey]:
        where, params = ("WHERE k.user_id = ?", (user_id,)) if user_id is not None else ("", ())
        rows = await self._all(
            f"SELECT {_KEY_COLS} FROM api_keys k JOIN users u ON u.id = k.user_id {where}"
            " ORDER BY k.id",
            params,
        )
        return [_key(r) for r in rows]

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

    # -- quotas -----------------------------------------------------------------------------

    async def quota_overrides(self) -> dict[int, QuotaOverride]:
        rows = await self._all(
            "SELECT user_id, requests_per_minute, max_concurrent, tokens_per_day,"
            " tokens_per_month FROM quotas"
        )
        return {int(r[0]): QuotaOverride(*r) for r in rows}

    async def set_quota(self, override: QuotaOverride) -> QuotaOverride:
        async def run(db: aiosqlite.Connection) -> None:
            values = (
                override.requests_per_minute,
                override.max_concurrent,
                override.tokens_per_day,
                override.tokens_per_month,
            )
            if all(v is None for v in values):
                await db.execute("DELETE FROM quotas WHERE user_id = ?", (override.user_id,))
                return
            await db.execute(
                "INSERT INTO quotas (user_id, requests_per_minute, max_concurrent,"
                " tokens_per_day, tokens_per_month) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(user_id) DO UPDATE SET"
                " requests_per_minute = excluded.requests_per_minute,"
                " max_concurrent = excluded.max_concurrent,"
                " tokens_per_day = excluded.tokens_per_day,"
                " tokens_per_month = excluded.tokens_per_month",
                (override.user_id, *values),
            )

        await self._write(run)
        return override

    # -- models -----------------------------------------------------------------------------

    async def list_model_settings(self) -> list[ModelSetting]:
        rows = await self._all("SELECT name, enabled FROM models ORDER BY name")
        return [ModelSetting(r[0], bool(r[1])) for r in rows]

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

    # -- usage ------------------------------------------------------------------------------

    async def insert_usage(
        self, rows: Sequence[UsageRow], audit: Sequence[AuditEntry] = ()
    ) -> None:
        """Usage rows and audit entries of one batch, in one transaction."""
        if not rows and not audit:
            return

        async def run(db: aiosqlite.Connection) -> None:
            if audit:
                await db.executemany(
                    "INSERT INTO audit (ts, actor, action, target, detail, source)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(e.ts, e.actor, e.action, e.target, e.detail, e.source) for e in audit],
                )
            if not rows:
                return
            await db.executemany(
                f"INSERT INTO usage ({_USAGE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r.ts,
                        r.request_id,
                        r.user_id,
                        r.key_id,
                        r.model,
                        r.upstream,
                        r.endpoint,
                        r.status,
                        r.prompt_tokens,
                        r.completion_tokens,
                        r.duration_ms,
                        r.ttft_ms,
                        int(r.stream),
                        r.usage_source,
                    )
                    for r in rows
                ],
            )

        await self._write(run)

    async def token_totals_since(self, since: float) -> dict[int, int]:
        rows = await self._all(
            "SELECT user_id, SUM(prompt_tokens + completion_tokens) FROM usage"
            " WHERE ts >= ? AND user_id IS NOT NULL GROUP BY user_id",
            (since,),
        )
        return {int(r[0]): int(r[1] or 0) for r in rows}

    async def usage_summary(
        self, *, since: float, user_id: int | None = None
    ) -> list[UsageSummary]:
        params: list[Any] = [since]
        extra = ""
        if user_id is not None:
            extra = " AND g.user_id = ?"
            params.append(user_id)
        rows = await self._all(
            "SELECT COALESCE(u.name, '(deleted)'), g.model, COUNT(*),"
            " SUM(g.prompt_tokens), SUM(g.completion_tokens)"
            " FROM usage g LEFT JOIN users u ON u.id = g.user_id"
            f" WHERE g.ts >= ?{extra} GROUP BY g.user_id, g.model ORDER BY 1, 2",
            params,
        )
        return [UsageSummary(r[0], r[1], r[2], r[3] or 0, r[4] or 0) for r in rows]

    async def usage_rows(self, *, since: float = 0.0) -> list[UsageRow]:
        rows = await self._all(
            f"SELECT {_USAGE_COLS} FROM usage WHERE ts >= ? ORDER BY id", (since,)
        )
        return [
            UsageRow(
                ts=r[0],
                request_id=r[1],
                user_id=r[2],
                key_id=r[3],
                model=r[4],
                upstream=r[5],
                endpoint=r[6],
                status=r[7],
                prompt_tokens=r[8],
                completion_tokens=r[9],
                duration_ms=r[10],
                ttft_ms=r[11],
                stream=bool(r[12]),
                usage_source=r[13],
            )
            for r in rows
        ]

    async def usage_timeline(
        self, *, since: float, until: float, width: float
    ) -> list[UsageBucket]:
        """Every slice of ``width`` seconds from ``since`` up to ``until``, empty ones included
        (one range scan on the ``usage_ts`` index)."""
        if width <= 0 or until <= since:
            return []
        rows = await self._all(
            "SELECT CAST((ts - ?) / ? AS INTEGER) AS slot, COUNT(*), SUM(prompt_tokens),"
            " SUM(completion_tokens), SUM(status >= 400) FROM usage"
            " WHERE ts >= ? AND ts < ? GROUP BY slot",
            (since, width, since, until),
        )
        found = {int(r[0]): r for r in rows}
        slots = math.ceil((until - since) / width)
        out = []
        for slot in range(slots):
            r = found.get(slot)
            start = since + slot * width
            if r is None:
                out.append(UsageBucket(start, 0, 0, 0, 0))
            else:
                out.append(UsageBucket(start, r[1], r[2] or 0, r[3] or 0, r[4] or 0))
        return out

    # -- audit ------------------------------------------------------------------------------

    async def add_audit(self, entry: AuditEntry) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO audit (ts, actor, action, target, detail, source)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (entry.ts, entry.actor, entry.action, entry.target, entry.detail, entry.source),
            )

        await self._write(run)

    async def list_audit(self, *, since: float = 0.0, limit: int = 1000) -> list[AuditEntry]:
        rows = await self._all(
            "SELECT ts, actor, action, target, detail, source FROM audit"
            " WHERE ts >= ? ORDER BY id DESC LIMIT ?",
            (since, limit),
        )
        return [AuditEntry(*r) for r in rows]

    async def audit_counts(self, *, since: float) -> dict[str, int]:
        rows = await self._all(
            "SELECT action, COUNT(*) FROM audit WHERE ts >= ? GROUP BY action", (since,)
        )
        return {str(r[0]): int(r[1]) for r in rows}


async def open_store(path: Path) -> SqliteStore:
    try:
        return await SqliteStore.open(path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: {exc}") from exc
