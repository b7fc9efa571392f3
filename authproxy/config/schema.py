"""Typed configuration: the models of the one YAML file, unknown keys rejected.

Finding, reading and validating the file (and ``AUTHPROXY_*`` overrides) is ``load``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from authproxy.config.login import Oidc, PasswordLogin, Sessions

__all__ = [
    "ADMIN_ROLE",
    "ActsForUsers",
    "AuthThrottle",
    "Config",
    "HealthChecks",
    "Listen",
    "PromptEstimate",
    "Queue",
    "Quotas",
    "Role",
    "Timeouts",
    "Upstream",
]

ADMIN_ROLE = "admin"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Listen(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8400, ge=0, le=65535)


class Upstream(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    url: str
    models: list[str] = Field(default_factory=list)
    discover: bool = False
    api_key: SecretStr | None = None
    health_path: str = "/health"
    # At most this many requests in flight to it, the rest wait in the fair queue (queue/);
    # `auto`: llama-server's slots (/props total_slots); null: no queue, as before.
    max_inflight: int | Literal["auto"] | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not a URL (want http://host:port)")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")

    @field_validator("max_inflight", mode="before")
    @classmethod
    def _capacity(cls, value: object) -> object:
        if value is None or value == "auto" or (type(value) is int and value >= 1):
            return value
        raise ValueError("want a whole number of at least 1, `auto` (llama-server's slots) or null")

    @model_validator(mode="after")
    def _has_models(self) -> Upstream:
        if not self.models and not self.discover:
            raise ValueError("list `models` or set `discover: true`")
        return self


class Role(_Strict):
    models: list[str] = Field(default_factory=lambda: ["*"])
    requests_per_minute: int | None = Field(default=None, ge=1)
    max_concurrent: int | None = Field(default=None, ge=1)
    tokens_per_day: int | None = Field(default=None, ge=1)
    tokens_per_month: int | None = Field(default=None, ge=1)
    share: float = Field(default=1.0, gt=0)  # weight in the fair queue: 2 = twice the service


class Queue(_Strict):
    """The fair queue in front of every upstream with a ``max_inflight`` (``queue/``)."""

    timeout: float = Field(default=120.0, gt=0)  # seconds a request may wait, then 503
    max_per_user: int = Field(default=32, ge=0)  # a user's requests waiting per upstream, then 429
    output_weight: float = Field(default=2.0, ge=0)  # service = prompt + this × output tokens


class Timeouts(_Strict):
    connect: float = Field(default=5.0, gt=0)
    first_byte: float = Field(default=600.0, gt=0)
    idle: float = Field(default=300.0, gt=0)
    # A client that pauses longer than this while sending its request body gets a 408.
    client_body: float = Field(default=60.0, gt=0)


class HealthChecks(_Strict):
    """Active checks of every upstream's `health_path` (the state machine: upstreams/health.py)."""

    interval: float = Field(default=5.0, gt=0)
    timeout: float = Field(default=2.0, gt=0)
    unhealthy_after: int = Field(default=2, ge=1)
    healthy_after: int = Field(default=2, ge=1)


class PromptEstimate(_Strict):
    """The prompt estimate (``proxy/prompt_estimate.py``): bytes a token stands for at least (1: an
    upper bound), and the tokens a chat template may add beyond the body's own bytes."""

    bytes_per_token: float = Field(default=1.0, ge=1.0)  # above 1 the bound becomes a guess
    per_message: int = Field(default=8, ge=0)  # each message, prompt or embeddings input
    per_request: int = Field(default=64, ge=0)  # BOS, a default system prompt, generation prompt
    per_media: int = Field(default=2048, ge=0)  # each inline (base64) image or audio clip


class Quotas(_Strict):
    timezone: str = "UTC"  # where a "day" and a "month" of token quota begin
    default_max_tokens: int = Field(default=1024, ge=1)  # written when a request names none
    clamp_max_tokens: bool = True  # lower the limit to what remains instead of overshooting
    # Outputs per request (n, n_cmpl, best_of, several prompts): more is a 400. Above 1 they
    # are charged what they reserved: llama-server reports the first output's usage only.
    max_outputs: int = Field(default=1, ge=1)
    prompt_estimate: PromptEstimate = Field(default_factory=PromptEstimate)
    # Several gateways: a request's hold on the shared quota lapses this long after its
    # gateway stopped renewing it (a crash); renewed every third of it.
    lease_seconds: float = Field(default=30.0, gt=0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class AuthThrottle(_Strict):
    max_failures: int = Field(default=20, ge=1)  # failed authentications per address ...
    window: float = Field(default=60.0, gt=0)  # ... within this many seconds ...
    block: float = Field(default=300.0, ge=0)  # ... refuse that address for this long


class ActsForUsers(_Strict):
    """Service keys (``keys create --acts-for-users``) naming a person with Open WebUI's
    forwarded user headers (``auth/acting_for.py``)."""

    unknown_people: Literal["create", "reject"] = "create"  # create: with the default role
    # The same headers on any other credential: not believed (ignore), or a 403 (refuse).
    foreign_headers: Literal["ignore", "refuse"] = "ignore"


def _default_upstreams() -> list[Upstream]:
    return [Upstream(name="local", url="http://127.0.0.1:8080", discover=True)]


def _default_roles() -> dict[str, Role]:
    return {
        ADMIN_ROLE: Role(models=["*"]),
        "user": Role(
            models=["*"],
            requests_per_minute=60,
            max_concurrent=4,
            tokens_per_day=200_000,
            tokens_per_month=4_000_000,
        ),
    }


class Config(_Strict):
    listen: Listen = Field(default_factory=Listen)
    data_dir: Path = Path("./data")
    # null: SQLite in data_dir; postgresql://… for several gateways (AUTHPROXY_DATABASE)
    database: SecretStr | None = None
    workers: int = Field(default=1, ge=1, le=256)  # gateway processes on one port (Linux)
    upstreams: list[Upstream] = Field(default_factory=_default_upstreams, min_length=1)
    roles: dict[str, Role] = Field(default_factory=_default_roles)
    default_role: str = "user"
    oidc: Oidc | None = None
    sessions: Sessions = Field(default_factory=Sessions)
    password_login: PasswordLogin = Field(default_factory=PasswordLogin)
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    max_request_mb: float = Field(default=32, gt=0)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    quotas: Quotas = Field(default_factory=Quotas)
    auth_throttle: AuthThrottle = Field(default_factory=AuthThrottle)
    acts_for_users: ActsForUsers = Field(default_factory=ActsForUsers)
    discover_interval: float = Field(default=30.0, gt=0)
    health: HealthChecks = Field(default_factory=HealthChecks)
    queue: Queue = Field(default_factory=Queue)
    model_aliases: dict[str, str] = Field(default_factory=dict)
    shutdown_grace: float = Field(default=30.0, ge=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        bad = []
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                bad.append(item)
        if bad:
            raise ValueError(f"not an address or network: {', '.join(bad)}")
        return value

    @field_validator("database")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):  # the value itself is never echoed: it may hold a password
            raise ValueError("want a postgresql://… URL, or null for SQLite in data_dir")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        problems = []
        if ADMIN_ROLE not in self.roles:
            problems.append(f"roles: the `{ADMIN_ROLE}` role must be defined")
        if self.default_role not in self.roles:
            problems.append(f"default_role: `{self.default_role}` is not a defined role")
        if self.oidc is not None:
            mapped = [*self.oidc.roles_map.values(), self.oidc.default_role or self.default_role]
            unknown = sorted({r for r in mapped if r not in self.roles})
            if unknown:
                problems.append(f"oidc: role(s) {', '.join(unknown)} not defined in `roles`")
        names = [u.name for u in self.upstreams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"upstreams: duplicate name {', '.join(dupes)}")
        queued = [u.name for u in self.upstreams if u.max_inflight is not None]
        if self.workers > 1 and queued:  # each worker would let max_inflight through
            problems.append(
                f"workers: {self.workers} with max_inflight on {', '.join(queued)}: the fair"
                " queue is one per gateway process; use workers: 1 with a queue"
            )
        problems += _alias_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "authproxy.db"

    @property
    def store_location(self) -> Path | str:
        """Where the store is: the PostgreSQL URL if one is set, else the SQLite file."""
        return self.database.get_secret_value() if self.database else self.db_path

    @property
    def secret_path(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)


def _alias_problems(config: Config) -> list[str]:
    """An alias is a second public name, never a chain and never hiding a configured model id
    (the real id would become unreachable); a target is checked where it can be known."""
    static = {m for u in config.upstreams for m in u.models}
    discovering = any(u.discover for u in config.upstreams)
    problems = []
    for alias, target in config.model_aliases.items():
        where = f"model_aliases.{alias}"
        if not alias or not target:
            problems.append(f"{where}: alias and model id must not be empty")
        elif alias in static:
            problems.append(f"{where}: shadows the model {alias!r} an upstream lists")
        elif target in config.model_aliases:
            problems.append(f"{where}: points to another alias ({target!r}); name the model id")
        elif target not in static and not discovering:
            problems.append(f"{where}: no upstream lists the model {target!r}")
    return problems
