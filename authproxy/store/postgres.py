"""PostgreSQL implementation of the store, for several gateway processes or machines on one
database: a connection pool, numbered migrations, one write path, LISTEN/NOTIFY.

``PostgresStore`` is one class to the outside, built like ``SqliteStore`` from one core and
four query mixins with the same concerns:

- ``postgres_core``: the pool, migrations, the one write path (``_write``), ``listen``;
- ``postgres_users``: the auth index, users, keys, model switches;
- ``postgres_usage``: quota overrides, usage rows, the audit log;
- ``postgres_login``: browser sessions, pending OIDC logins, subjects, password hashes;
- ``postgres_responses``: who created which stored response;
- ``postgres_quota``: the quota ledger (leases and counters of several gateways).

Same tables and meaning as SQLite (``migrations_postgres``); the contract tests in
``tests/store`` run every method against both.
"""

from __future__ import annotations

from authproxy.store.postgres_login import LoginQueries
from authproxy.store.postgres_quota import QuotaQueries
from authproxy.store.postgres_responses import ResponseQueries
from authproxy.store.postgres_usage import UsageQueries

__all__ = ["PostgresStore", "open_postgres"]


class PostgresStore(LoginQueries, UsageQueries, ResponseQueries, QuotaQueries):
    """The ``Store`` on one PostgreSQL database (``LoginQueries`` builds on ``UserQueries``)."""


async def open_postgres(url: str) -> PostgresStore:
    """Connect, migrate; ``StoreError`` (password never shown) if the database is unusable."""
    return await PostgresStore.open(url)
