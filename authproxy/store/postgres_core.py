"""The PostgreSQL connection pool: opening, migrations (once, under an advisory lock, however
many processes open a fresh database at the same time), the one write path every query module of
``PostgresStore`` uses, and change notifications (LISTEN).

``PostgresCore`` is the base of the query mixins (``postgres_users``, ``postgres_usage``,
``postgres_login``); ``PostgresStore`` in ``postgres.py`` puts them together as one class.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Self, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from authproxy.store.base import StoreError
from authproxy.store.migrations_postgres import CHANNEL, MIGRATIONS_POSTGRES

__all__ = [
    "COMMAND_TIMEOUT",
    "CONNECT_TIMEOUT",
    "DRIVER_ERRORS",
    "MIGRATION_LOCK",
    "POOL_SIZE",
    "Connection",
    "PostgresCore",
    "changed_rows",
    "marks",
    "redact",
]

T = TypeVar("T")
Connection: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"  # annotations only

POOL_SIZE = 8  # connections per process; the request path itself never waits on one
CONNECT_TIMEOUT = 10.0  # seconds: a CLI command against a dead server fails in this time
COMMAND_TIMEOUT = 60.0
MIGRATION_LOCK = 0x6175_7468_7072_6F78  # "authprox": the advisory lock key of migrations

# What a database that is down, unreachable or refusing us raises; wrapped in StoreError.
DRIVER_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,  # a connection cut in the middle of a query
    OSError,
    TimeoutError,
)
# ... and of those, what says the connections may be broken: the pool makes new ones.
_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up
)


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``: the form every message uses."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    except ValueError:
        return "(an unreadable database URL)"


def marks(count: int) -> str:
    """``count`` parameter placeholders, as PostgreSQL writes them: ``$1, $2, $3``."""
    return ", ".join(f"${n}" for n in range(1, count + 1))


def changed_rows(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3`` or ``DELETE 0``."""
    return int(status.rsplit(" ", 1)[-1])


class PostgresCore:
    """All writes go through ``_write``: one pooled connection, one transaction each."""

    def __init__(self, *, pool: asyncpg.Pool[asyncpg.Record], url: str) -> None:
        self._pool = pool
        self._url = url
        self.where = redact(url)

    @classmethod
    async def open(cls, url: str) -> Self:
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=0,  # no background reconnects (and their tracebacks) while it is down
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT,
                command_timeout=COMMAND_TIMEOUT,
            )
        except (*DRIVER_ERRORS, ValueError) as exc:
            raise StoreError(f"database {redact(url)}: {_reason(exc)}") from None
        store = cls(pool=pool, url=url)
        try:
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self) -> None:
        await self._one("SELECT 1")

    async def _migrate(self) -> None:
        async def run(con: Connection) -> None:
            # Held to the end of this transaction: a second process waits here, then finds
            # the schema current and does nothing.
            await con.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            version = await con.fetchval("SELECT version FROM schema_version") or 0
            if version > len(MIGRATIONS_POSTGRES):
                raise StoreError(
                    f"database schema {version} is newer than this authproxy"
                    f" ({len(MIGRATIONS_POSTGRES)})"
                )
            if version == len(MIGRATIONS_POSTGRES):
                return
            for statements in MIGRATIONS_POSTGRES[version:]:
                for statement in statements:
                    await con.execute(statement)
            await con.execute("DELETE FROM schema_version")
            await con.execute(
                "INSERT INTO schema_version (version) VALUES ($1)", len(MIGRATIONS_POSTGRES)
            )

        await self._write(run)

    async def _failed(self, exc: BaseException) -> StoreError:
        """The StoreError for a driver error; the pool's connections are replaced if the
        error says they may be broken (the server restarted, a connection was cut)."""
        if not isinstance(exc, asyncpg.PostgresError) or isinstance(exc, _CONNECTION_ERRORS):
            await self._pool.expire_connections()
        return StoreError(f"database {self.where}: {_reason(exc)}")

    async def _write(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        try:
            async with self._pool.acquire() as con, con.transaction():
                return await fn(con)
        except DRIVER_ERRORS as exc:
            raise await self._failed(exc) from exc

    async def _one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        try:
            return await self._pool.fetchrow(sql, *args)
        except DRIVER_ERRORS as exc:
            raise await self._failed(exc) from exc

    async def _all(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self._pool.fetch(sql, *args)
        except DRIVER_ERRORS as exc:
            raise await self._failed(exc) from exc

    async def claim_meta(self, name: str, value: int) -> int:
        """Store ``value`` under ``name`` unless a value is there; return the stored one."""

        async def run(con: Connection) -> int:
            await con.execute(
                "INSERT INTO meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                name,
                value,
            )
            # A statement of its own: in READ COMMITTED it sees a row another process
            # committed while this INSERT waited on it.
            return int(await con.fetchval("SELECT value FROM meta WHERE name = $1", name))

        return await self._write(run)

    @asynccontextmanager
    async def listen(
        self, on_change: Callable[[str], None], on_lost: Callable[[], None] = lambda: None
    ) -> AsyncIterator[None]:
        """While inside: ``on_change(table)`` for every change to users, keys, models or quotas
        that any process commits, and ``on_lost()`` once if this connection is lost (leave,
        then listen again). Not guaranteed delivery (a lost connection loses what was sent
        meanwhile): pair it with a periodic check of ``auth_epoch``."""

        def deliver(_con: object, _pid: int, _channel: str, payload: object) -> None:
            on_change(str(payload))

        def lost(_con: object) -> None:
            on_lost()

        try:
            con = await asyncpg.connect(self._url, timeout=CONNECT_TIMEOUT)
        except DRIVER_ERRORS as exc:
            raise StoreError(f"database {self.where}: {_reason(exc)}") from exc
        try:
            con.add_termination_listener(lost)
            await con.add_listener(CHANNEL, deliver)
            yield
        finally:
            con.remove_termination_listener(lost)
            with contextlib.suppress(*DRIVER_ERRORS):
                await con.close(timeout=2)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, ValueError):
        return "not a valid postgresql:// URL"
    return str(exc) or type(exc).__name__
