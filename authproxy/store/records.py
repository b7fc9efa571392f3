"""Plain records the store hands out; the request path sees only these, never rows or SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "UNLIMITED",
    "ActiveKey",
    "ApiKey",
    "AuditEntry",
    "LoginFlow",
    "ModelSetting",
    "QuotaOverride",
    "ResponseOwner",
    "Session",
    "UsageBucket",
    "UsageRow",
    "UsageSummary",
    "User",
]


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str
    email: str | None
    disabled: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    user_id: int
    user_name: str
    prefix: str
    label: str | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None
    acts_for_users: bool = False  # a service key: may name the person it acts for


@dataclass(frozen=True, slots=True)
class ActiveKey:
    """One usable key in the gateway's in-memory index (hash -> who)."""

    key_hash: bytes
    key_id: int
    user_id: int
    user_name: str
    role: str
    expires_at: float | None
    acts_for_users: bool = False


@dataclass(frozen=True, slots=True)
class ModelSetting:
    name: str
    enabled: bool


class UsageRow(NamedTuple):
    """One request's accounting. A named tuple: made on every request (a frozen dataclass of 14
    fields costs a call per field to make)."""

    ts: float
    request_id: str
    user_id: int | None
    key_id: int | None
    model: str | None
    upstream: str | None
    endpoint: str
    status: int
    prompt_tokens: int
    completion_tokens: int
    duration_ms: float
    ttft_ms: float | None
    stream: bool
    usage_source: str  # "engine", "estimated" or "none"


@dataclass(frozen=True, slots=True)
class UsageSummary:
    user_name: str
    model: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class UsageBucket:
    """Requests and tokens in one time slice ``[start, start + width)`` (the dashboard)."""

    start: float
    requests: int
    prompt_tokens: int
    completion_tokens: int
    errors: int  # requests answered with a status >= 400

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class QuotaOverride:
    """Per-user limits set by an admin; None = the role's default, UNLIMITED = no limit."""

    user_id: int
    requests_per_minute: int | None = None
    max_concurrent: int | None = None
    tokens_per_day: int | None = None
    tokens_per_month: int | None = None


UNLIMITED = -1


@dataclass(frozen=True, slots=True)
class AuditEntry:
    ts: float
    actor: str
    action: str
    target: str | None
    detail: str | None
    source: str | None


@dataclass(frozen=True, slots=True)
class Session:
    """A browser session, with its user as the store knows it now."""

    id: int
    user_id: int
    user_name: str
    role: str
    user_disabled: bool
    via: str  # "oidc" or "password"
    created_at: float
    last_seen_at: float
    expires_at: float  # the absolute end; the idle end is last_seen_at + the idle timeout
    source: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class LoginFlow:
    """An OIDC login under way: what the callback must find to finish it (used once)."""

    browser_hash: bytes  # SHA-256 of the login cookie of the browser that started it
    nonce: str
    code_verifier: str
    next_path: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ResponseOwner:
    """Who created a stored response (the Responses API), on which model and upstream."""

    response_id: str
    user_id: int
    model: str
    upstream: str
    created_at: float
