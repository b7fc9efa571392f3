"""``authproxy db copy``: move the SQLite installation in data_dir to PostgreSQL, so a team can
grow to several gateways without re-issuing a key."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from authproxy.admin.service import AdminError
from authproxy.auth.secret import ServerSecret
from authproxy.config.schema import Config
from authproxy.store import is_postgres_url, open_store
from authproxy.store.dispatch import check_secret

__all__ = ["add_parser", "cmd_db"]

_WHAT = {
    "users": "users",
    "api_keys": "keys",
    "models": "model settings",
    "quotas": "quota overrides",
    "usage": "usage rows",
    "audit": "audit entries",
    "sessions": "browser sessions",
    "login_flows": "pending logins",
    "responses": "stored responses",
}


def add_parser(sub: Any, common: argparse.ArgumentParser, parser_class: type[Any]) -> None:
    db = sub.add_parser("db", parents=[common], help="the database: copy SQLite to PostgreSQL")
    d = db.add_subparsers(dest="action", required=True, metavar="ACTION", parser_class=parser_class)
    copy = d.add_parser(
        "copy",
        parents=[common],
        help="copy users, keys, usage, audit and sessions from the SQLite file in data_dir"
        " into an empty PostgreSQL database (ids and keys kept)",
    )
    copy.add_argument(
        "--to",
        metavar="URL",
        default=None,
        help="postgresql://user@host/db (default: the configured `database`); the password"
        " may also come from PGPASSWORD or ~/.pgpass",
    )


async def cmd_db(config: Config, args: argparse.Namespace) -> None:
    from authproxy.store.postgres import open_postgres  # asyncpg only for this command
    from authproxy.store.postgres_copy import copy_sqlite_to_postgres

    target = args.to or (config.database.get_secret_value() if config.database else None)
    if target is None:
        raise AdminError("name the PostgreSQL database: --to postgresql://… (or set `database`)")
    if not is_postgres_url(target):
        raise AdminError("--to: want a postgresql://… URL")
    if not config.db_path.exists():
        raise AdminError(f"no SQLite database at {config.db_path} to copy")
    # The secret the keys were hashed under: checked against the source, remembered by the
    # target (its fingerprint), so the gateways on PostgreSQL accept the same keys.
    secret = ServerSecret.load(config.secret_path, create=False).value
    source = await open_store(config.db_path, secret=secret)  # brings it to the current schema
    await source.close()
    store = await open_postgres(target)
    try:
        await check_secret(store, secret)
        counts = await copy_sqlite_to_postgres(config.db_path, store)
        where = store.where
    finally:
        await store.close()
    print(", ".join(f"{counts[table]} {what}" for table, what in _WHAT.items()))
    print(
        f"copied {config.db_path} to {where}; point `database:` (or AUTHPROXY_DATABASE) at it",
        file=sys.stderr,
    )
