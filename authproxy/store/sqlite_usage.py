"""SQLite queries for what was used: per-user quota overrides, usage rows and the audit log.

A mixin of ``SqliteStore`` (see ``sqlite_core``): every write goes through ``_write``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import aiosqlite

from authproxy.store import rows
from authproxy.store.records import (
    AuditEntry,
    QuotaOverride,
    UsageBucket,
    UsageRow,
    UsageSummary,
)
from authproxy.store.rows import values  # `rows` is a parameter below
from authproxy.store.sqlite_core import SqliteCore, marks

__all__ = ["UsageQueries"]

# Usage rows go in ROWS_PER_INSERT at a time, one statement each: sqlite3's executemany
# releases and takes back the GIL around every row's step, and each time the gateway's event
# loop may have to wait to get it back (measured: ~50 µs of the request path per row under
# load). One multi-row statement binds its rows, then steps once.
ROWS_PER_INSERT = 100
_USAGE_ROW = f"({marks(14)})"


def _usage_insert(count: int) -> str:
    return f"INSERT INTO usage ({rows.USAGE_COLUMNS}) VALUES " + ", ".join([_USAGE_ROW] * count)


_AUDIT_INSERT = f"INSERT INTO audit ({rows.AUDIT_COLUMNS}) VALUES ({marks(6)})"


class UsageQueries(SqliteCore):
    # -- quotas -----------------------------------------------------------------------------

    async def quota_overrides(self) -> dict[int, QuotaOverride]:
        overrides = await self._all(f"SELECT {rows.QUOTA_COLUMNS} FROM quotas")
        return {int(r[0]): rows.quota(r) for r in overrides}

    async def set_quota(self, override: QuotaOverride) -> QuotaOverride:
        async def run(db: aiosqlite.Connection) -> None:
            fields = values(override)
            if all(v is None for v in fields[1:]):
                await db.execute("DELETE FROM quotas WHERE user_id = ?", (override.user_id,))
                return
            await db.execute(
                f"INSERT INTO quotas ({rows.QUOTA_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(user_id) DO UPDATE SET"
                " requests_per_minute = excluded.requests_per_minute,"
                " max_concurrent = excluded.max_concurrent,"
                " tokens_per_day = excluded.tokens_per_day,"
                " tokens_per_month = excluded.tokens_per_month",
                fields,
            )

        await self._write(run)
        return override

    # -- usage ------------------------------------------------------------------------------

    async def insert_usage(
        self, rows: Sequence[UsageRow], audit: Sequence[AuditEntry] = ()
    ) -> None:
        """Usage rows and audit entries of one batch, in one transaction."""
        if not rows and not audit:
            return

        async def run(db: aiosqlite.Connection) -> None:
            if audit:
                await db.executemany(_AUDIT_INSERT, [values(e) for e in audit])
            for start in range(0, len(rows), ROWS_PER_INSERT):
                part = rows[start : start + ROWS_PER_INSERT]
                params = [v for r in part for v in values(r)]
                await db.execute(_usage_insert(len(part)), params)

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
        summary = await self._all(
            "SELECT COALESCE(u.name, '(deleted)'), g.model, COUNT(*),"
            " SUM(g.prompt_tokens), SUM(g.completion_tokens)"
            " FROM usage g LEFT JOIN users u ON u.id = g.user_id"
            f" WHERE g.ts >= ?{extra} GROUP BY g.user_id, g.model ORDER BY 1, 2",
            params,
        )
        return [rows.usage_summary(r) for r in summary]

    async def usage_rows(self, *, since: float = 0.0) -> list[UsageRow]:
        found = await self._all(
            f"SELECT {rows.USAGE_COLUMNS} FROM usage WHERE ts >= ? ORDER BY id", (since,)
        )
        return [rows.usage(r) for r in found]

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
            await db.execute(_AUDIT_INSERT, values(entry))

        await self._write(run)

    async def list_audit(self, *, since: float = 0.0, limit: int = 1000) -> list[AuditEntry]:
        entries = await self._all(
            f"SELECT {rows.AUDIT_COLUMNS} FROM audit WHERE ts >= ? ORDER BY id DESC LIMIT ?",
            (since, limit),
        )
        return [rows.audit_entry(r) for r in entries]

    async def audit_counts(self, *, since: float) -> dict[str, int]:
        rows = await self._all(
            "SELECT action, COUNT(*) FROM audit WHERE ts >= ? GROUP BY action", (since,)
        )
        return {str(r[0]): int(r[1]) for r in rows}
