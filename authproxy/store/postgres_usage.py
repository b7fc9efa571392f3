"""PostgreSQL queries for what was used: per-user quota overrides, usage rows and the audit log.

A mixin of ``PostgresStore`` (see ``postgres_core``): every write goes through ``_write``.
Sums are cast back to BIGINT (PostgreSQL sums BIGINTs as NUMERIC) and NULLs sort first, as in
SQLite, so both backends return the same records in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence

from authproxy.store import rows
from authproxy.store.postgres_core import Connection, PostgresCore, marks
from authproxy.store.records import (
    AuditEntry,
    QuotaOverride,
    UsageBucket,
    UsageRow,
    UsageSummary,
)
from authproxy.store.rows import values  # `rows` is a parameter below

__all__ = ["UsageQueries"]

_USAGE_INSERT = f"INSERT INTO usage ({rows.USAGE_COLUMNS}) VALUES ({marks(14)})"
_AUDIT_INSERT = f"INSERT INTO audit ({rows.AUDIT_COLUMNS}) VALUES ({marks(6)})"


class UsageQueries(PostgresCore):
    # -- quotas -----------------------------------------------------------------------------

    async def quota_overrides(self) -> dict[int, QuotaOverride]:
        overrides = await self._all(f"SELECT {rows.QUOTA_COLUMNS} FROM quotas")
        return {int(r[0]): rows.quota(r) for r in overrides}

    async def set_quota(self, override: QuotaOverride) -> QuotaOverride:
        async def run(con: Connection) -> None:
            fields = values(override)
            if all(v is None for v in fields[1:]):
                await con.execute("DELETE FROM quotas WHERE user_id = $1", override.user_id)
                return
            await con.execute(
                f"INSERT INTO quotas ({rows.QUOTA_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (user_id) DO UPDATE SET"
                " requests_per_minute = excluded.requests_per_minute,"
                " max_concurrent = excluded.max_concurrent,"
                " tokens_per_day = excluded.tokens_per_day,"
                " tokens_per_month = excluded.tokens_per_month",
                *fields,
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

        async def run(con: Connection) -> None:
            if audit:
                await con.executemany(_AUDIT_INSERT, [values(e) for e in audit])
            if rows:
                await con.executemany(_USAGE_INSERT, [values(r) for r in rows])

        await self._write(run)

    async def token_totals_since(self, since: float) -> dict[int, int]:
        rows = await self._all(
            "SELECT user_id, SUM(prompt_tokens + completion_tokens)::BIGINT FROM usage"
            " WHERE ts >= $1 AND user_id IS NOT NULL GROUP BY user_id",
            since,
        )
        return {int(r[0]): int(r[1] or 0) for r in rows}

    async def usage_summary(
        self, *, since: float, user_id: int | None = None
    ) -> list[UsageSummary]:
        mine = "" if user_id is None else " AND g.user_id = $2"
        summary = await self._all(
            "SELECT COALESCE(u.name, '(deleted)'), g.model, COUNT(*),"
            " COALESCE(SUM(g.prompt_tokens), 0)::BIGINT,"
            " COALESCE(SUM(g.completion_tokens), 0)::BIGINT"
            " FROM usage g LEFT JOIN users u ON u.id = g.user_id"
            f" WHERE g.ts >= $1{mine} GROUP BY g.user_id, u.name, g.model"
            " ORDER BY 1, 2 NULLS FIRST",
            since,
            *(() if user_id is None else (user_id,)),
        )
        return [rows.usage_summary(r) for r in summary]

    async def usage_rows(self, *, since: float = 0.0) -> list[UsageRow]:
        found = await self._all(
            f"SELECT {rows.USAGE_COLUMNS} FROM usage WHERE ts >= $1 ORDER BY id", since
        )
        return [rows.usage(r) for r in found]

    async def usage_timeline(
        self, *, since: float, until: float, width: float
    ) -> list[UsageBucket]:
        """Every slice of ``width`` seconds from ``since`` up to ``until``, empty ones included
        (one range scan on the ``usage_ts`` index; the database fills the empty slices)."""
        if width <= 0 or until <= since:
            return []
        slices = await self._all(
            "WITH g AS (SELECT FLOOR((ts - $1) / $2)::BIGINT AS slot, COUNT(*) AS n,"
            " SUM(prompt_tokens) AS p, SUM(completion_tokens) AS c,"
            " COUNT(*) FILTER (WHERE status >= 400) AS e"
            " FROM usage WHERE ts >= $1 AND ts < $3 GROUP BY 1)"
            " SELECT $1 + s.slot * $2, COALESCE(g.n, 0), COALESCE(g.p, 0)::BIGINT,"
            " COALESCE(g.c, 0)::BIGINT, COALESCE(g.e, 0)"
            " FROM generate_series(0, CEIL(($3 - $1) / $2)::BIGINT - 1) AS s(slot)"
            " LEFT JOIN g ON g.slot = s.slot ORDER BY s.slot",
            since,
            width,
            until,
        )
        return [UsageBucket(*r) for r in slices]

    # -- audit ------------------------------------------------------------------------------

    async def add_audit(self, entry: AuditEntry) -> None:
        async def run(con: Connection) -> None:
            await con.execute(_AUDIT_INSERT, *values(entry))

        await self._write(run)

    async def list_audit(self, *, since: float = 0.0, limit: int = 1000) -> list[AuditEntry]:
        entries = await self._all(
            f"SELECT {rows.AUDIT_COLUMNS} FROM audit WHERE ts >= $1 ORDER BY id DESC LIMIT $2",
            since,
            limit,
        )
        return [rows.audit_entry(r) for r in entries]

    async def audit_counts(self, *, since: float) -> dict[str, int]:
        rows = await self._all(
            "SELECT action, COUNT(*) FROM audit WHERE ts >= $1 GROUP BY action", since
        )
        return {str(r[0]): int(r[1]) for r in rows}
