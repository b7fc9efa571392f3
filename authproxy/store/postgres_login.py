"""PostgreSQL queries for browser login: sessions, pending OIDC logins, password hashes.

A mixin of ``PostgresStore`` (see ``postgres_core``): every write goes through ``_write``.
"""

from __future__ import annotations

import asyncpg

from authproxy.clock import now
from authproxy.store import rows
from authproxy.store.base import ConflictError, NotFoundError
from authproxy.store.postgres_core import Connection, changed_rows
from authproxy.store.postgres_users import UserQueries
from authproxy.store.records import LoginFlow, Session, User

__all__ = ["LoginQueries"]


class LoginQueries(UserQueries):
    """Builds on ``UserQueries``: sign-ins resolve to users (``get_user``)."""

    async def _count(self, sql: str, *args: object) -> int:
        """Run one counted write (UPDATE / DELETE); how many rows it changed."""

        async def run(con: Connection) -> int:
            return changed_rows(await con.execute(sql, *args))

        return await self._write(run)

    # -- sessions ---------------------------------------------------------------------------

    async def create_session(
        self,
        *,
        id_hash: bytes,
        user_id: int,
        via: str,
        expires_at: float,
        source: str | None,
        user_agent: str | None,
    ) -> int:
        async def run(con: Connection) -> int:
            t = now()
            session_id = await con.fetchval(
                "INSERT INTO sessions (id_hash, user_id, via, created_at, last_seen_at,"
                " expires_at, source, user_agent) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)"
                " RETURNING id",
                id_hash,
                user_id,
                via,
                t,
                expires_at,
                source,
                user_agent,
            )
            return int(session_id)

        return await self._write(run)

    async def find_session(self, id_hash: bytes) -> Session | None:
        row = await self._one(f"{rows.SESSION_SELECT} WHERE s.id_hash = $1", id_hash)
        return rows.session(row) if row is not None else None

    async def touch_session(self, session_id: int, ts: float) -> None:
        await self._count("UPDATE sessions SET last_seen_at = $1 WHERE id = $2", ts, session_id)

    async def delete_session(self, id_hash: bytes) -> bool:
        return await self._count("DELETE FROM sessions WHERE id_hash = $1", id_hash) > 0

    async def delete_user_sessions(self, user_id: int) -> int:
        return await self._count("DELETE FROM sessions WHERE user_id = $1", user_id)

    async def list_sessions(self, user_id: int | None = None) -> list[Session]:
        if user_id is None:
            sessions = await self._all(f"{rows.SESSION_SELECT} ORDER BY s.id")
        else:
            sessions = await self._all(
                f"{rows.SESSION_SELECT} WHERE s.user_id = $1 ORDER BY s.id", user_id
            )
        return [rows.session(r) for r in sessions]

    async def purge_sessions(self, *, idle_before: float) -> int:
        """Delete sessions past their absolute end or unused since ``idle_before``."""
        return await self._count(
            "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
            now(),
            idle_before,
        )

    # -- pending OIDC logins ----------------------------------------------------------------

    async def put_login_flow(self, state_hash: bytes, flow: LoginFlow) -> None:
        await self._count(
            f"INSERT INTO login_flows (state_hash, {rows.LOGIN_FLOW_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            state_hash,
            flow.browser_hash,
            flow.nonce,
            flow.code_verifier,
            flow.next_path,
            flow.created_at,
        )

    async def take_login_flow(self, state_hash: bytes) -> LoginFlow | None:
        """The flow for this state, deleted in the same statement: a state works once."""

        async def run(con: Connection) -> LoginFlow | None:
            row = await con.fetchrow(
                "DELETE FROM login_flows WHERE state_hash = $1"
                f" RETURNING {rows.LOGIN_FLOW_COLUMNS}",
                state_hash,
            )
            return rows.login_flow(row) if row is not None else None

        return await self._write(run)

    async def purge_login_flows(self, *, before: float) -> int:
        return await self._count("DELETE FROM login_flows WHERE created_at <= $1", before)

    # -- OIDC subjects ----------------------------------------------------------------------

    async def user_by_subject(self, subject: str) -> User | None:
        row = await self._one("SELECT name FROM users WHERE oidc_subject = $1", subject)
        return await self.get_user(row[0]) if row is not None else None

    async def subject_of(self, user_id: int) -> str | None:
        row = await self._one("SELECT oidc_subject FROM users WHERE id = $1", user_id)
        return row[0] if row is not None else None

    async def link_subject(self, user_id: int, subject: str) -> None:
        async def run(con: Connection) -> None:
            try:
                await con.execute(
                    "UPDATE users SET oidc_subject = $1 WHERE id = $2", subject, user_id
                )
            except asyncpg.UniqueViolationError:
                raise ConflictError("that sign-in is linked to another user already") from None

        await self._write(run)

    # -- passwords --------------------------------------------------------------------------

    async def password_hash(self, name: str) -> tuple[User, str | None]:
        user = await self.get_user(name)
        row = await self._one("SELECT password_hash FROM users WHERE id = $1", user.id)
        return user, (row[0] if row is not None else None)

    async def set_password_hash(self, name: str, password_hash: str | None) -> User:
        changed = await self._count(
            "UPDATE users SET password_hash = $1 WHERE name = $2", password_hash, name
        )
        if changed == 0:
            raise NotFoundError(f"no user {name!r}")
        return await self.get_user(name)
