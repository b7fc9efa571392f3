"""SQLite queries for browser login: sessions, pending OIDC logins, password hashes.

A mixin of ``SqliteStore`` (see ``sqlite_core``): every write goes through ``_write``.
"""

from __future__ import annotations

import sqlite3

import aiosqlite

from authproxy.clock import now
from authproxy.store import rows
from authproxy.store.base import ConflictError, NotFoundError
from authproxy.store.records import LoginFlow, Session, User
from authproxy.store.sqlite_users import UserQueries

__all__ = ["LoginQueries"]


class LoginQueries(UserQueries):
    """Builds on ``UserQueries``: sign-ins resolve to users (``get_user``)."""

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
        async def run(db: aiosqlite.Connection) -> int:
            t = now()
            cur = await db.execute(
                "INSERT INTO sessions (id_hash, user_id, via, created_at, last_seen_at,"
                " expires_at, source, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (id_hash, user_id, via, t, t, expires_at, source, user_agent),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

        return await self._write(run)

    async def find_session(self, id_hash: bytes) -> Session | None:
        row = await self._one(f"{rows.SESSION_SELECT} WHERE s.id_hash = ?", (id_hash,))
        return rows.session(row) if row is not None else None

    async def touch_session(self, session_id: int, ts: float) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            await db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", (ts, session_id))

        await self._write(run)

    async def delete_session(self, id_hash: bytes) -> bool:
        async def run(db: aiosqlite.Connection) -> bool:
            cur = await db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))
            return cur.rowcount > 0

        return await self._write(run)

    async def delete_user_sessions(self, user_id: int) -> int:
        async def run(db: aiosqlite.Connection) -> int:
            cur = await db.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))
            return cur.rowcount

        return await self._write(run)

    async def list_sessions(self, user_id: int | None = None) -> list[Session]:
        where, params = ("WHERE s.user_id = ?", (user_id,)) if user_id is not None else ("", ())
        sessions = await self._all(f"{rows.SESSION_SELECT} {where} ORDER BY s.id", params)
        return [rows.session(r) for r in sessions]

    async def purge_sessions(self, *, idle_before: float) -> int:
        """Delete sessions past their absolute end or unused since ``idle_before``."""

        async def run(db: aiosqlite.Connection) -> int:
            cur = await db.execute(
                "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?",
                (now(), idle_before),
            )
            return cur.rowcount

        return await self._write(run)

    # -- pending OIDC logins ----------------------------------------------------------------

    async def put_login_flow(self, state_hash: bytes, flow: LoginFlow) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            await db.execute(
                f"INSERT INTO login_flows (state_hash, {rows.LOGIN_FLOW_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    state_hash,
                    flow.browser_hash,
                    flow.nonce,
                    flow.code_verifier,
                    flow.next_path,
                    flow.created_at,
                ),
            )

        await self._write(run)

    async def take_login_flow(self, state_hash: bytes) -> LoginFlow | None:
        """The flow for this state, deleted in the same transaction: a state works once."""

        async def run(db: aiosqlite.Connection) -> LoginFlow | None:
            cur = await db.execute(
                f"DELETE FROM login_flows WHERE state_hash = ? RETURNING {rows.LOGIN_FLOW_COLUMNS}",
                (state_hash,),
            )
            row = await cur.fetchone()
            await cur.close()
            if row is None:
                return None
            return rows.login_flow(row)

        return await self._write(run)

    async def purge_login_flows(self, *, before: float) -> int:
        async def run(db: aiosqlite.Connection) -> int:
            cur = await db.execute("DELETE FROM login_flows WHERE created_at <= ?", (before,))
            return cur.rowcount

        return await self._write(run)

    # -- OIDC subjects ----------------------------------------------------------------------

    async def user_by_subject(self, subject: str) -> User | None:
        row = await self._one("SELECT name FROM users WHERE oidc_subject = ?", (subject,))
        return await self.get_user(row[0]) if row is not None else None

    async def subject_of(self, user_id: int) -> str | None:
        row = await self._one("SELECT oidc_subject FROM users WHERE id = ?", (user_id,))
        return row[0] if row is not None else None

    async def link_subject(self, user_id: int, subject: str) -> None:
        async def run(db: aiosqlite.Connection) -> None:
            try:
                await db.execute(
                    "UPDATE users SET oidc_subject = ? WHERE id = ?", (subject, user_id)
                )
            except sqlite3.IntegrityError:
                raise ConflictError("that sign-in is linked to another user already") from None

        await self._write(run)

    # -- passwords --------------------------------------------------------------------------

    async def password_hash(self, name: str) -> tuple[User, str | None]:
        user = await self.get_user(name)
        row = await self._one("SELECT password_hash FROM users WHERE id = ?", (user.id,))
        return user, (row[0] if row is not None else None)

    async def set_password_hash(self, name: str, password_hash: str | None) -> User:
        async def run(db: aiosqlite.Connection) -> None:
            cur = await db.execute(
                "UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name)
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"no user {name!r}")

        await self._write(run)
        return await self.get_user(name)
