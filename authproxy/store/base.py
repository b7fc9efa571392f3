"""The store interface the gateway, the CLI and the TUI depend on.

SQLite is the embedded implementation; another backend (PostgreSQL for several replicas) only
has to satisfy this protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from authproxy.store.login_base import LoginStore
from authproxy.store.records import (
    ActiveKey,
    ApiKey,
    AuditEntry,
    ModelSetting,
    QuotaOverride,
    UsageBucket,
    UsageRow,
    UsageSummary,
    User,
)


class StoreError(Exception):
    pass


class NotFoundError(StoreError):
    pass


class ConflictError(StoreError):
    pass


class Store(LoginStore, Protocol):
    async def close(self) -> None: ...
    async def ping(self) -> None: ...

    # Change detection: bumped by the database itself on every change to who may do what.
    async def auth_epoch(self) -> int: ...
    async def active_keys(self) -> list[ActiveKey]: ...

    async def create_user(self, *, name: str, role: str, email: str | None) -> User: ...
    async def get_user(self, name: str) -> User: ...
    async def list_users(self) -> list[User]: ...
    async def set_user_disabled(self, name: str, disabled: bool) -> User: ...
    async def set_user_role(self, name: str, role: str) -> User: ...

    async def create_key(
        self,
        *,
        user_id: int,
        key_hash: bytes,
        prefix: str,
        label: str | None,
        expires_at: float | None,
        max_active: int | None = None,  # refuse (ConflictError) if the user has this many
    ) -> ApiKey: ...
    async def list_keys(self, user_id: int | None = None) -> list[ApiKey]: ...
    async def revoke_key(self, key_id: int) -> ApiKey: ...
    async def touch_keys(self, last_used: dict[int, float]) -> None: ...

    async def quota_overrides(self) -> dict[int, QuotaOverride]: ...
    async def set_quota(self, override: QuotaOverride) -> QuotaOverride: ...

    async def list_model_settings(self) -> list[ModelSetting]: ...
    async def set_model_enabled(self, name: str, enabled: bool) -> ModelSetting: ...

    async def insert_usage(
        self, rows: Sequence[UsageRow], audit: Sequence[AuditEntry] = ()
    ) -> None: ...
    async def token_totals_since(self, since: float) -> dict[int, int]: ...
    async def usage_summary(
        self, *, since: float, user_id: int | None = None
    ) -> list[UsageSummary]: ...
    async def usage_rows(self, *, since: float = 0.0) -> list[UsageRow]: ...
    async def usage_timeline(
        self, *, since: float, until: float, width: float
    ) -> list[UsageBucket]: ...

    async def add_audit(self, entry: AuditEntry) -> None: ...
    async def list_audit(self, *, since: float = 0.0, limit: int = 1000) -> list[AuditEntry]: ...
    async def audit_counts(self, *, since: float) -> dict[str, int]: ...
