"""SQLite queries for what was used: per-user quota overrides, usage rows and the audit log.

A mixin of ``SqliteStore`` (see ``sqlite_core``): every write goes through ``_write``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import aiosqlite

from authproxy.store.records import (
    AuditEntry,
    QuotaOverride,
    UsageBucket,
    UsageRow,
    UsageSummary,
)
from authproxy.store.sqlite_core import SqliteCore

_USAGE_COLS = (
    "ts, request_id, user_id, key_id, model, upstream, endpoint, status, prompt_tokens,"
    " completion_tokens, duration_ms, ttft_ms, stream, usage_source"
)


class UsageQueries(SqliteCore):
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
