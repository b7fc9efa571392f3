"""The store: SQLite or PostgreSQL behind one interface (``base.Store``), opened by
``open_store``."""

from authproxy.store.base import ConflictError, NotFoundError, Store, StoreError
from authproxy.store.dispatch import SecretMismatchError, is_postgres_url, open_store
from authproxy.store.sqlite import SqliteStore

__all__ = [
    "ConflictError",
    "NotFoundError",
    "SecretMismatchError",
    "SqliteStore",
    "Store",
    "StoreError",
    "is_postgres_url",
    "open_store",
]
