"""PostgreSQL queries of the quota ledger (``contracts.QuotaLedgerStore``): an admission is one
call of ``authproxy_quota_admit`` (one round trip; ``migrations_quota_pg.py``), a batch of
settles one statement.

Leases, their renewals and settles commit without waiting for the disk (``synchronous_commit``
off for those transactions alone): nothing waits on an fsync per request. A crash of the
server (not a restart) may lose the last fraction of a second of them: a lost lease lapses
anyway, a lost settle leaves its tokens out of the counters (the usage rows, written durably,
still have them).

A mixin of ``PostgresStore`` (see ``postgres_core``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from authproxy.store.migrations import COUNTERS_SINCE, QUOTA_TABLES
from authproxy.store.postgres_core import Connection, PostgresCore, changed_rows, marks
from authproxy.store.quota_records import RPM_WINDOW, QuotaAnswer, QuotaAsk, QuotaSettle, Window

__all__ = ["QuotaQueries"]

_ADMIT = f"SELECT * FROM authproxy_quota_admit({marks(17)})"
_ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"
_USED = f"SELECT * FROM authproxy_quota_used({marks(5)})"

_SETTLE = "SELECT authproxy_quota_settle($1::JSONB)"


def _settles_json(settles: Sequence[QuotaSettle]) -> str | None:
    """The settles as ``authproxy_quota_settle`` reads them (None: none)."""
    if not settles:
        return None
    return json.dumps(
        [
            {"lease": s.lease_id, "user_id": s.user_id, "admitted": s.admitted_at,
             "tokens": s.tokens, "ended": s.now, "ds": s.day.start, "de": s.day.end,
             "ms": s.month.start, "me": s.month.end}
            for s in settles
        ]
    )  # fmt: skip


class QuotaQueries(PostgresCore):
    async def quota_begin(self, *, shared: bool, now: float) -> None:
        async def run(con: Connection) -> None:
            since = await con.fetchval(
                "SELECT value FROM meta WHERE name = $1 FOR UPDATE", COUNTERS_SINCE
            )
            if not shared:
                value = -1  # counted in one process's memory from now on: counters go stale
            elif since < 0:  # nobody kept them (or a local count ran): begin them afresh
                for table in QUOTA_TABLES:
                    await con.execute(f"DELETE FROM {table}")
                value = math.ceil(now * 1000)
            else:
                return
            await con.execute("UPDATE meta SET value = $1 WHERE name = $2", value, COUNTERS_SINCE)

        await self._write(run)

    async def quota_admit(self, ask: QuotaAsk, settles: Sequence[QuotaSettle] = ()) -> QuotaAnswer:
        row = await self._one(
            _ADMIT,
            ask.lease_id, ask.user_id, ask.now, ask.expires_at,
            ask.requests_per_minute, ask.max_concurrent, ask.tokens_per_day,
            ask.tokens_per_month, ask.day.start, ask.day.end, ask.month.start, ask.month.end,
            ask.prompt, ask.outputs, ask.limit, ask.clamp, _settles_json(settles),
        )  # fmt: skip
        assert row is not None
        return QuotaAnswer(
            refused=row[0],
            retry_after=float(row[1]),
            limit=int(row[2]),
            reserved=int(row[3]),
            remaining=None if row[4] is None else int(row[4]),
            used_day=int(row[5]),
            used_month=int(row[6]),
        )

    async def quota_settle(self, settles: Sequence[QuotaSettle]) -> None:
        if settles:
            await self._one(_SETTLE, _settles_json(settles))

    async def quota_renew(self, lease_ids: Sequence[int], *, expires_at: float) -> int:
        if not lease_ids:
            return 0

        async def run(con: Connection) -> int:
            await con.execute(_ASYNC_COMMIT)
            status = await con.execute(
                "UPDATE quota_leases SET expires_at = $1"
                " WHERE id = ANY($2::BIGINT[]) AND settled_at IS NULL",
                expires_at,
                list(lease_ids),
            )
            return changed_rows(status)

        return await self._write(run)

    async def quota_used(self, user_id: int, *, day: Window, month: Window) -> tuple[int, int]:
        row = await self._one(_USED, user_id, day.start, day.end, month.start, month.end)
        assert row is not None
        return int(row[0]), int(row[1])

    async def quota_reap(self, *, now: float) -> None:
        async def run(con: Connection) -> None:
            await con.execute(
                "DELETE FROM quota_leases WHERE admitted_at < $1"
                " AND (settled_at IS NOT NULL OR expires_at < $2)",
                now - RPM_WINDOW,
                now,
            )
            for table in ("quota_usage", "quota_windows"):
                await con.execute(f"DELETE FROM {table} WHERE window_end < $1", now - 86400)

        await self._write(run)
