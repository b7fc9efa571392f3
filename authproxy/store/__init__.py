from authproxy.store.base import ConflictError, NotFoundError, Store, StoreError
from authproxy.store.sqlite import SqliteStore, open_store

__all__ = ["ConflictError", "NotFoundError", "SqliteStore", "Store", "StoreError", "open_store"]
