"""Typed configuration: one YAML file, unknown keys rejected, every problem reported at once.

Resolution order: ``--config PATH``, then ``$AUTHPROXY_CONFIG``, then ``./authproxy.yaml`` if it
exists, else the embedded defaults. ``AUTHPROXY_<PATH>`` environment variables override single
values (``AUTHPROXY_UPSTREAMS__LOCAL__API_KEY``: ``__`` separates levels, a list element is named
by its ``name`` or its index), which is how secrets stay out of the file.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from authproxy.config_login import Oidc, PasswordLogin, Sessions

ENV_PREFIX = "AUTHPROXY_"
DEFAULT_CONFIG_NAME = "authproxy.yaml"
ADMIN_ROLE = "admin"


class ConfigError(Exception):
    """All problems found in a configuration, one ``path: problem`` line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


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

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not a URL (want http://host:port)")
        if parts.query or parts.fragment:
            raise ValueError("must not carry a query or fragment")
        return value.rstrip("/")

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


class Timeouts(_Strict):
    connect: float = Field(default=5.0, gt=0)
    first_byte: float = Field(default=600.0, gt=0)
    idle: float = Field(default=300.0, gt=0)


class HealthChecks(_Strict):
    """Active checks of every upstream's `health_path` (see health.py for the state machine)."""

    interval: float = Field(default=5.0, gt=0)
    timeout: float = Field(default=2.0, gt=0)
    unhealthy_after: int = Field(default=2, ge=1)
    healthy_after: int = Field(default=2, ge=1)


class Quotas(_Strict):
    timezone: str = "UTC"  # where a "day" and a "month" of token quota begin
    default_max_tokens: int = Field(default=1024, ge=1)  # reserved when a request names none
    clamp_max_tokens: bool = True  # lower max_tokens to what remains instead of overshooting

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
    discover_interval: float = Field(default=30.0, gt=0)
    health: HealthChecks = Field(default_factory=HealthChecks)
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
        problems += _alias_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def db_path(self) -> Path:
        return self.data_dir / "authproxy.db"

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


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for item in err.errors():
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        msg = msg.removeprefix("Value error, ")
        problems.append(f"{_loc(tuple(item['loc']))}: {msg}")
    return problems


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    problems = []
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        node: Any = raw
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, list):
                match = [
                    e
                    for e in node
                    if isinstance(e, dict) and str(e.get("name", "")).lower() == part
                ]
                if not match and part.isdigit() and int(part) < len(node):
                    match = [node[int(part)]]
                if not match or last:
                    problems.append(f"{name}: no list element named `{part}`")
                    break
                node = match[0]
                continue
            if not isinstance(node, dict):
                problems.append(f"{name}: cannot set below a plain value")
                break
            if last:
                node[part] = yaml.safe_load(value) if value.strip() else value
            else:
                node = node.setdefault(part, {})
    return problems


def _defaults_as_raw() -> dict[str, Any]:
    return Config().model_dump(mode="json", exclude_none=False)


def resolve_path(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get(ENV_PREFIX + "CONFIG"):
        return Path(env[ENV_PREFIX + "CONFIG"])
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.exists() else None


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Load, apply environment overrides, validate; ``ConfigError`` lists every problem."""
    env = os.environ if env is None else env
    file = resolve_path(path, env)
    source = str(file) if file else "embedded defaults"
    raw: dict[str, Any]
    if file is None:
        raw = {}
    else:
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(source, [f"cannot read: {exc.strerror or exc}"]) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(source, [f"not valid YAML: {exc}".replace("\n", " ")]) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(source, ["(top level): must be a mapping of keys"])
        raw = loaded
    env_overrides = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    if env_overrides:
        merged = _defaults_as_raw()
        merged.update(raw)
        raw = merged
    problems = _apply_env(raw, env)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, problems + _format_errors(exc)) from None
    if problems:
        raise ConfigError(source, problems)
    if file is not None and not config.data_dir.is_absolute():
        # A relative data_dir in a file is relative to that file, not to the cwd.
        config = config.model_copy(update={"data_dir": (file.parent / config.data_dir)})
    return config
