"""Which store a configuration names (``database:``), and the check that the server secret is
the one the database's keys were hashed under.

``database: null`` is SQLite in ``data_dir``; a ``postgresql://`` URL is PostgreSQL. Every
gateway, CLI command and TUI opens the store here, with the secret: the first open stores a
fingerprint of it (an HMAC of a fixed label, which tells nothing of the secret), every later
open compares, so a replica started with another secret refuses to start instead of turning
every key away.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, overload

from authproxy.store.base import Store, StoreError
from authproxy.store.sqlite import SqliteStore
from authproxy.store.sqlite import open_store as open_sqlite

if TYPE_CHECKING:
    from authproxy.store.postgres import PostgresStore

__all__ = [
    "FINGERPRINT_NAME",
    "POSTGRES_SCHEMES",
    "MetaStore",
    "SecretMismatchError",
    "check_secret",
    "is_postgres_url",
    "open_store",
    "secret_fingerprint",
]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
FINGERPRINT_NAME = "secret_fingerprint"
_FINGERPRINT_LABEL = b"authproxy secret fingerprint v1"


class SecretMismatchError(StoreError):
    pass


def is_postgres_url(text: str) -> bool:
    return text.startswith(POSTGRES_SCHEMES)


def secret_fingerprint(secret: bytes) -> int:
    """64 bits of an HMAC under the secret (a signed int: it fits the ``meta`` table)."""
    mac = hmac.new(secret, _FINGERPRINT_LABEL, hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big", signed=True)


class MetaStore(Protocol):
    """What both backends have beyond ``Store``: a write-once value in the ``meta`` table."""

    async def claim_meta(self, name: str, value: int) -> int: ...


async def check_secret(store: MetaStore, secret: bytes) -> None:
    """Store the secret's fingerprint if the database has none; refuse another secret."""
    fingerprint = secret_fingerprint(secret)
    if await store.claim_meta(FINGERPRINT_NAME, fingerprint) != fingerprint:
        raise SecretMismatchError(
            "the server secret (secret.key or AUTHPROXY_SECRET) is not the one this database's"
            " keys were made under; give every gateway the same secret"
        )


@overload
async def open_store(where: Path, *, secret: bytes | None = None) -> SqliteStore: ...
@overload
async def open_store(where: str | Path, *, secret: bytes | None = None) -> Store: ...
async def open_store(where: str | Path, *, secret: bytes | None = None) -> Store:
    """SQLite for a path, PostgreSQL for a ``postgresql://`` URL; with ``secret``, checked
    against the database's fingerprint (and the fingerprint stored on first use)."""
    store: SqliteStore | PostgresStore
    if isinstance(where, Path):
        store = await open_sqlite(where)
    elif is_postgres_url(where):
        from authproxy.store.postgres import open_postgres  # asyncpg only when it is used

        store = await open_postgres(where)
    else:
        raise StoreError("database: want a postgresql://… URL, or null for SQLite in data_dir")
    if secret is not None:
        try:
            await check_secret(store, secret)
        except BaseException:
            await store.close()
            raise
    return store
