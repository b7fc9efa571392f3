"""Copy a SQLite installation into an empty PostgreSQL database (``authproxy db copy``):
every table, ids kept (so keys, sessions and usage stay linked and nobody gets a new key),
then the identity sequences moved past the copied ids.

Both databases are opened through the store first, so both are at the current schema; the
tables and columns are the same on both (``migrations.py``, ``migrations_postgres.py``), and
values are converted by the PostgreSQL column's type (SQLite keeps flags as 0/1).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiosqlite

from authproxy.store.base import StoreError
from authproxy.store.migrations import QUOTA_TABLES
from authproxy.store.postgres import PostgresStore
from authproxy.store.postgres_core import Connection

__all__ = ["CHUNK", "NOT_COPIED", "TABLES", "copy_sqlite_to_postgres"]

# Parents before children (foreign keys); what is not copied is the database's own bookkeeping.
TABLES = (
    "users",
    "api_keys",
    "models",
    "quotas",
    "usage",
    "audit",
    "sessions",
    "login_flows",
    "responses",
)
# The quota ledger is rebuilt from the usage table by the first gateway that keeps it.
NOT_COPIED = ("meta", "schema_version", *QUOTA_TABLES)
CHUNK = 5000  # rows per COPY batch: a large usage table never sits in memory whole

_CONVERT: dict[str, Callable[[Any], Any]] = {
    "boolean": bool,
    "bytea": bytes,
    "double precision": float,
}


async def copy_sqlite_to_postgres(source: Path, target: PostgresStore) -> dict[str, int]:
    """Copy every row of ``source`` into ``target`` (which must be empty), in one transaction;
    the number of rows per table."""

    async def run(con: Connection) -> dict[str, int]:
        columns = await _target_columns(con)
        await _refuse_unknown_or_filled(con, columns, target.where)
        counts = {}
        try:
            async with aiosqlite.connect(f"file:{source}?mode=ro", uri=True) as db:
                for table in TABLES:
                    counts[table] = await _copy_table(db, con, table, columns[table])
        except sqlite3.Error as exc:
            raise StoreError(f"{source}: {exc}") from exc
        for table in TABLES:
            if "id" in (name for name, _type in columns[table]):
                await con.execute(
                    "SELECT setval(pg_get_serial_sequence($1, 'id'),"
                    f" COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table}",
                    table,
                )
        return counts

    return await target._write(run)


async def _target_columns(con: Connection) -> dict[str, list[tuple[str, str]]]:
    rows = await con.fetch(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    )
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, column, data_type in rows:
        columns.setdefault(table, []).append((column, data_type))
    return columns


async def _refuse_unknown_or_filled(
    con: Connection, columns: dict[str, list[tuple[str, str]]], where: str
) -> None:
    unknown = sorted(set(columns) - set(TABLES) - set(NOT_COPIED))
    if unknown:  # a table this version does not know how to copy: refuse rather than drop it
        raise StoreError(f"{where}: unexpected table(s) {', '.join(unknown)}")
    for table in TABLES:
        if await con.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            raise StoreError(
                f"{where} is not empty ({table} has rows): db copy fills only an empty database"
            )


async def _copy_table(
    db: aiosqlite.Connection, con: Connection, table: str, columns: list[tuple[str, str]]
) -> int:
    names = [name for name, _type in columns]
    converters = [_CONVERT.get(data_type) for _name, data_type in columns]
    copied = 0
    async with db.execute(f"SELECT {', '.join(names)} FROM {table}") as cursor:
        while rows := await cursor.fetchmany(CHUNK):
            records = [
                tuple(
                    v if v is None or convert is None else convert(v)
                    for v, convert in zip(row, converters, strict=True)
                )
                for row in rows
            ]
            await con.copy_records_to_table(table, records=records, columns=names)
            copied += len(records)
    return copied
