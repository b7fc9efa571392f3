"""SQLite implementation of the store: WAL, busy timeout, foreign keys, one write path.

``SqliteStore`` is one class to the outside, built from one core and four query mixins, each a
concern of its own:

- ``sqlite_core``: the connection, migrations and the one write path (``_write``);
- ``sqlite_users``: the auth index, users, keys, model switches;
- ``sqlite_usage``: quota overrides, usage rows, the audit log;
- ``sqlite_login``: browser sessions, pending OIDC logins, subjects, password hashes;
- ``sqlite_responses``: who created which stored response;
- ``sqlite_quota``: the quota ledger (leases and counters of several gateway processes).

Mixins rather than composition: the mixins share the core's one connection and write lock
without forwarding every method of the ``Store`` protocol by hand.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from authproxy.store.base import StoreError
from authproxy.store.sqlite_login import LoginQueries
from authproxy.store.sqlite_quota import QuotaQueries
from authproxy.store.sqlite_responses import ResponseQueries
from authproxy.store.sqlite_usage import UsageQueries

__all__ = ["SqliteStore", "open_store"]


class SqliteStore(LoginQueries, UsageQueries, ResponseQueries, QuotaQueries):
    """The ``Store`` on one SQLite file (``LoginQueries`` builds on ``UserQueries``)."""


async def open_store(path: Path) -> SqliteStore:
    try:
        return await SqliteStore.open(path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: {exc}") from exc
