"""The whole store interface and its errors.

SQLite is the embedded implementation, PostgreSQL the one for several replicas; both satisfy
``Store``, the union of the per-concern protocols in ``contracts.py``. Everything else in the
gateway takes the protocol of the concern it uses.
"""

from __future__ import annotations

from typing import Protocol

from authproxy.store.contracts import (
    AuditStore,
    ChangeStore,
    KeyStore,
    LoginStore,
    ModelStore,
    QuotaLedgerStore,
    QuotaStore,
    ResponseStore,
    UsageStore,
    UserStore,
)

__all__ = ["ConflictError", "NotFoundError", "Store", "StoreError"]


class StoreError(Exception):
    pass


class NotFoundError(StoreError):
    pass


class ConflictError(StoreError):
    pass


class Store(
    ChangeStore,
    KeyStore,
    UserStore,
    ModelStore,
    QuotaStore,
    QuotaLedgerStore,
    UsageStore,
    AuditStore,
    LoginStore,
    ResponseStore,
    Protocol,
):
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
