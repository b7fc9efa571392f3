"""SQLite queries for stored responses: who created which (the Responses API's ids).

A mixin of ``SqliteStore`` (see ``sqlite_core``): every write goes through ``_write``.
"""

from __future__ import annotations

import aiosqlite

from authproxy.store.records import ResponseOwner
from authproxy.store.sqlite_core import SqliteCore

__all__ = ["ResponseQueries"]

_COLUMNS = "response_id, user_id, model, upstream, created_at"


class ResponseQueries(SqliteCore):
    async def record_response(self, owner: ResponseOwner) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            await db.execute(
                f"INSERT INTO responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(response_id) DO NOTHING",
                (owner.response_id, owner.user_id, owner.model, owner.upstream, owner.created_at),
            )

        await self._write(run)

    async def response_owner(self, response_id: str) -> ResponseOwner | None:
        row = await self._one(
            f"SELECT {_COLUMNS} FROM responses WHERE response_id = ?", (response_id,)
        )
        return None if row is None else ResponseOwner(*row)

    async def forget_response(self, response_id: str) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            await db.execute("DELETE FROM responses WHERE response_id = ?", (response_id,))

        await self._write(run)
