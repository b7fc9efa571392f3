"""The store's interface, one protocol per concern, so that each part of the gateway depends on
what it uses and a backend is written against small contracts:

- ``ChangeStore``: the change counter the gateways poll (``StoreWatch``);
- ``KeyStore``: API keys, and the active ones the key index holds;
- ``UserStore``: users and their roles;
- ``ModelStore``: the admin's enable / disable switches of models;
- ``QuotaStore``: per-user quota overrides;
- ``QuotaLedgerStore``: quotas kept in the database for several gateways (leases, counters);
- ``ChangeFeed``: change notifications pushed by the database (PostgreSQL's LISTEN), if any;
- ``UsageStore``: usage rows and what is read back from them;
- ``AuditStore``: the audit log;
- ``ResponseStore``: who created which stored response (the Responses API's ids);
- ``LoginStore``: browser sessions, pending OIDC logins, OIDC subjects and password hashes
  (session ids and OIDC ``state`` values reach it only as SHA-256 digests).

``Store`` (``base.py``) is all of them: what the backends implement and the admin service uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from authproxy.store.quota_records import QuotaAnswer, QuotaAsk, QuotaSettle, Window
from authproxy.store.records import (
    ActiveKey,
    ApiKey,
    AuditEntry,
    LoginFlow,
    ModelSetting,
    QuotaOverride,
    ResponseOwner,
    Session,
    UsageBucket,
    UsageRow,
    UsageSummary,
    User,
)

__all__ = [
    "AuditStore",
    "ChangeFeed",
    "ChangeStore",
    "KeyStore",
    "LoginStore",
    "ModelStore",
    "QuotaLedgerStore",
    "QuotaStore",
    "ResponseStore",
    "UsageStore",
    "UserStore",
]


class ChangeStore(Protocol):
    # Bumped by the database itself on every change to who may do what: keys, users, models,
    # quotas, whoever makes it.
    async def auth_epoch(self) -> int: ...


@runtime_checkable
class ChangeFeed(Protocol):
    # While inside: ``on_change(table)`` for every committed change ``auth_epoch`` counts, and
    # ``on_lost()`` once if the connection that listens is lost (then leave and listen again).
    # Not guaranteed delivery: pair it with a periodic ``auth_epoch`` check.
    def listen(
        self, on_change: Callable[[str], None], on_lost: Callable[[], None] = ...
    ) -> AbstractAsyncContextManager[None]: ...


class KeyStore(Protocol):
    async def active_keys(self) -> list[ActiveKey]: ...
    async def create_key(
        self,
        *,
        user_id: int,
        key_hash: bytes,
        prefix: str,
        label: str | None,
        expires_at: float | None,
        max_active: int | None = None,  # refuse (ConflictError) if the user has this many
        acts_for_users: bool = False,  # a service key (it may name the person it acts for)
    ) -> ApiKey: ...
    async def list_keys(self, user_id: int | None = None) -> list[ApiKey]: ...
    async def revoke_key(self, key_id: int) -> ApiKey: ...
    async def touch_keys(self, last_used: dict[int, float]) -> None: ...


class UserStore(Protocol):
    async def create_user(self, *, name: str, role: str, email: str | None) -> User: ...
    async def get_user(self, name: str) -> User: ...
    async def list_users(self) -> list[User]: ...
    async def set_user_disabled(self, name: str, disabled: bool) -> User: ...
    async def set_user_role(self, name: str, role: str) -> User: ...


class ModelStore(Protocol):
    async def list_model_settings(self) -> list[ModelSetting]: ...
    async def set_model_enabled(self, name: str, enabled: bool) -> ModelSetting: ...


class QuotaStore(Protocol):
    async def quota_overrides(self) -> dict[int, QuotaOverride]: ...
    async def set_quota(self, override: QuotaOverride) -> QuotaOverride: ...


class QuotaLedgerStore(Protocol):
    # Quotas in the database, exact across gateways (``quota_records.py``). Counters of tokens
    # are kept by the gateways that share them (``quota_begin(shared=True)``); a gateway that
    # counts in its own memory says so (``shared=False``) and the next shared one rebuilds them
    # from the usage table.
    async def quota_begin(self, *, shared: bool, now: float) -> None: ...
    # One atomic step: ``settles`` (the caller's finished requests of the same user) first.
    async def quota_admit(
        self, ask: QuotaAsk, settles: Sequence[QuotaSettle] = ()
    ) -> QuotaAnswer: ...
    async def quota_settle(self, settles: Sequence[QuotaSettle]) -> None: ...
    async def quota_renew(self, lease_ids: Sequence[int], *, expires_at: float) -> int: ...
    async def quota_used(self, user_id: int, *, day: Window, month: Window) -> tuple[int, int]: ...
    async def quota_reap(self, *, now: float) -> None: ...  # forget what no longer counts


class UsageStore(Protocol):
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


class AuditStore(Protocol):
    async def add_audit(self, entry: AuditEntry) -> None: ...
    async def list_audit(self, *, since: float = 0.0, limit: int = 1000) -> list[AuditEntry]: ...
    async def audit_counts(self, *, since: float) -> dict[str, int]: ...


class ResponseStore(Protocol):
    # The first creator recorded for an id keeps it: recording it again changes nothing.
    async def record_response(self, owner: ResponseOwner) -> None: ...
    async def response_owner(self, response_id: str) -> ResponseOwner | None: ...
    async def forget_response(self, response_id: str) -> None: ...


class LoginStore(Protocol):
    async def create_session(
        self,
        *,
        id_hash: bytes,
        user_id: int,
        via: str,
        expires_at: float,
        source: str | None,
        user_agent: str | None,
    ) -> int: ...
    async def find_session(self, id_hash: bytes) -> Session | None: ...
    async def touch_session(self, session_id: int, ts: float) -> None: ...
    async def delete_session(self, id_hash: bytes) -> bool: ...
    async def delete_user_sessions(self, user_id: int) -> int: ...
    async def list_sessions(self, user_id: int | None = None) -> list[Session]: ...
    async def purge_sessions(self, *, idle_before: float) -> int: ...

    async def put_login_flow(self, state_hash: bytes, flow: LoginFlow) -> None: ...
    async def take_login_flow(self, state_hash: bytes) -> LoginFlow | None: ...
    async def purge_login_flows(self, *, before: float) -> int: ...

    async def user_by_subject(self, subject: str) -> User | None: ...
    async def subject_of(self, user_id: int) -> str | None: ...
    async def link_subject(self, user_id: int, subject: str) -> None: ...

    async def password_hash(self, name: str) -> tuple[User, str | None]: ...
    async def set_password_hash(self, name: str, password_hash: str | None) -> User: ...
