"""PostgreSQL queries for stored responses: who created which (the Responses API's ids).

A mixin of ``PostgresStore`` (see ``postgres_core``): every write goes through ``_write``.
"""

from __future__ import annotations

from authproxy.store.postgres_core import Connection, PostgresCore
from authproxy.store.records import ResponseOwner

__all__ = ["ResponseQueries"]

_COLUMNS = "response_id, user_id, model, upstream, created_at"


class ResponseQueries(PostgresCore):
    async def record_response(self, owner: ResponseOwner) -> None:
        async def run(con: Connection) -> None:
            await con.execute(
                f"INSERT INTO responses ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (response_id) DO NOTHING",
                owner.response_id,
                owner.user_id,
                owner.model,
                owner.upstream,
                owner.created_at,
            )

        await self._write(run)

    async def response_owner(self, response_id: str) -> ResponseOwner | None:
        row = await self._one(
            f"SELECT {_COLUMNS} FROM responses WHERE response_id = $1", response_id
        )
        if row is None:
            return None
        return ResponseOwner(row[0], int(row[1]), row[2], row[3], float(row[4]))

    async def forget_response(self, response_id: str) -> None:
        async def run(con: Connection) -> None:
            await con.execute("DELETE FROM responses WHERE response_id = $1", response_id)

        await self._write(run)
