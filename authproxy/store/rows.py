"""What the two backends share of their queries: the column lists and SELECTs (the same tables
and columns on both, ``migrations.py`` / ``migrations_postgres.py``), and the mapping between a
database row and a record.

A row is a tuple from aiosqlite or an ``asyncpg.Record``; the mappers take either. SQLite keeps
flags as 0/1 and may hand BLOBs back as memoryviews, PostgreSQL has BOOLEAN and BYTEA, so a
flag goes through ``bool`` and a digest through ``bytes``: the same record either way. Records
go into an INSERT as ``values(record)``, their fields in the order of the column list (SQLite
stores a Python bool as 1 / 0).

What stays per dialect, in the ``sqlite_*`` and ``postgres_*`` mixins: placeholders (``?`` and
``$n``), how a write learns its row (``lastrowid`` / ``rowcount`` or ``RETURNING`` / the command
status), locking (``BEGIN IMMEDIATE`` or ``SELECT … FOR UPDATE``), the driver's error classes,
and the SQL where the dialects differ (casts of sums, the timeline's empty slices).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields
from operator import attrgetter
from typing import Any, Protocol

from authproxy.store.records import (
    ActiveKey,
    ApiKey,
    AuditEntry,
    LoginFlow,
    ModelSetting,
    QuotaOverride,
    Session,
    UsageRow,
    UsageSummary,
    User,
)

__all__ = [
    "ACTIVE_KEYS",
    "AUDIT_COLUMNS",
    "KEY_SELECT",
    "LOGIN_FLOW_COLUMNS",
    "QUOTA_COLUMNS",
    "SESSION_SELECT",
    "USAGE_COLUMNS",
    "USER_COLUMNS",
    "Row",
    "active_key",
    "api_key",
    "audit_entry",
    "login_flow",
    "model_setting",
    "quota",
    "session",
    "usage",
    "usage_summary",
    "user",
    "values",
]


class Row(Protocol):
    """One database row (an aiosqlite tuple, an asyncpg Record), columns in SELECT order."""

    def __getitem__(self, index: int, /) -> Any: ...
    def __iter__(self) -> Iterator[Any]: ...


USER_COLUMNS = "id, name, role, email, disabled, created_at"
KEY_SELECT = (
    "SELECT k.id, k.user_id, u.name, k.prefix, k.label, k.created_at, k.expires_at,"
    " k.revoked_at, k.last_used_at, k.acts_for_users"
    " FROM api_keys k JOIN users u ON u.id = k.user_id"
)
ACTIVE_KEYS = (
    "SELECT k.key_hash, k.id, u.id, u.name, u.role, k.expires_at, k.acts_for_users"
    " FROM api_keys k JOIN users u ON u.id = k.user_id"
    " WHERE k.revoked_at IS NULL AND NOT u.disabled"
)
SESSION_SELECT = (
    "SELECT s.id, s.user_id, u.name, u.role, u.disabled, s.via, s.created_at, s.last_seen_at,"
    " s.expires_at, s.source, s.user_agent FROM sessions s JOIN users u ON u.id = s.user_id"
)
# In the order of the records' fields, so that `values(record)` fills them.
USAGE_COLUMNS = (
    "ts, request_id, user_id, key_id, model, upstream, endpoint, status, prompt_tokens,"
    " completion_tokens, duration_ms, ttft_ms, stream, usage_source"
)
AUDIT_COLUMNS = "ts, actor, action, target, detail, source"
QUOTA_COLUMNS = "user_id, requests_per_minute, max_concurrent, tokens_per_day, tokens_per_month"
LOGIN_FLOW_COLUMNS = "browser_hash, nonce, code_verifier, next_path, created_at"


def values(record: UsageRow | AuditEntry | QuotaOverride) -> tuple[Any, ...]:
    """A record's fields, in the order of its column list. A usage row is a named tuple: it is
    its values. The others are flat dataclasses, so no deep copy (``dataclasses.astuple``
    copies every value); one ``attrgetter`` per record type reads them all in one call."""
    if isinstance(record, UsageRow):
        return record
    kind = type(record)
    getter = _GETTERS.get(kind)
    if getter is None:
        # attrgetter of several names returns a tuple; every record has more than one field.
        getter = _GETTERS[kind] = attrgetter(*(f.name for f in fields(record)))
    found: tuple[Any, ...] = getter(record)
    return found


_GETTERS: dict[type, Callable[[Any], Any]] = {}


def user(row: Row) -> User:
    id_, name, role, email, disabled, created = row
    return User(id_, name, role, email, bool(disabled), created)


def api_key(row: Row) -> ApiKey:
    key_id, user_id, name, prefix, label, created, expires, revoked, used, acts_for_users = row
    return ApiKey(
        key_id, user_id, name, prefix, label, created, expires, revoked, used, bool(acts_for_users)
    )


def active_key(row: Row) -> ActiveKey:
    key_hash, key_id, user_id, user_name, role, expires_at, acts_for_users = row
    return ActiveKey(
        bytes(key_hash), key_id, user_id, user_name, role, expires_at, bool(acts_for_users)
    )


def model_setting(row: Row) -> ModelSetting:
    return ModelSetting(row[0], bool(row[1]))


def quota(row: Row) -> QuotaOverride:
    return QuotaOverride(*row)


def usage(row: Row) -> UsageRow:
    fields = list(row)
    fields[12] = bool(fields[12])  # stream
    return UsageRow(*fields)


def usage_summary(row: Row) -> UsageSummary:
    name, model, requests, prompt, completion = row
    return UsageSummary(name, model, requests, prompt or 0, completion or 0)


def audit_entry(row: Row) -> AuditEntry:
    return AuditEntry(*row)


def session(row: Row) -> Session:
    id_, user_id, name, role, disabled, via, created, seen, expires, source, agent = row
    return Session(
        id_, user_id, name, role, bool(disabled), via, created, seen, expires, source, agent
    )


def login_flow(row: Row) -> LoginFlow:
    browser_hash, nonce, code_verifier, next_path, created_at = row
    return LoginFlow(bytes(browser_hash), nonce, code_verifier, next_path, created_at)
