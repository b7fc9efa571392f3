"""The admin service: every administrative action, shared by the CLI and the TUI.

Neither front end talks SQL of its own; every action here is recorded in the audit table with
who did it and from where.
"""

from __future__ import annotations

from dataclasses import dataclass

from authproxy.admin.gateway_status import GatewayStatus, gateway_status, metrics_url
from authproxy.admin.reports import Dashboard, build_dashboard
from authproxy.auth.keys import KeyHasher, display_prefix, generate_key
from authproxy.clock import now
from authproxy.config.schema import ADMIN_ROLE, Config
from authproxy.limits.quota import Limits, resolve_limits
from authproxy.limits.windows import CalendarWindows
from authproxy.store.base import ConflictError, Store
from authproxy.store.records import (
    UNLIMITED,
    ApiKey,
    AuditEntry,
    ModelSetting,
    QuotaOverride,
    Session,
    UsageSummary,
    User,
)
from authproxy.text import valid_user_name
from authproxy.upstreams.status import (
    ModelOverview,
    UpstreamHealth,
    model_overview,
    upstream_health,
)

__all__ = ["QUOTA_FIELDS", "AdminError", "AdminService", "NewKey", "UserUsage", "valid_user_name"]


class AdminError(Exception):
    """A refusal with a one-line reason for the person at the keyboard."""


@dataclass(frozen=True, slots=True)
class UserUsage:
    """One user's consumption against their limits."""

    user: User
    limits: Limits
    override: QuotaOverride | None
    tokens_today: int
    tokens_month: int
    requests: int  # since the report's start
    prompt_tokens: int
    completion_tokens: int


QUOTA_FIELDS = ("requests_per_minute", "max_concurrent", "tokens_per_day", "tokens_per_month")


@dataclass(frozen=True, slots=True)
class NewKey:
    record: ApiKey
    secret: str  # the full key: shown once, never stored, never logged


class AdminService:
    def __init__(
        self, *, store: Store, hasher: KeyHasher, config: Config, actor: str, source: str
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._config = config
        self.actor = actor
        self.source = source

    @property
    def config(self) -> Config:
        """The configuration this service runs under (roles, upstreams, time zone)."""
        return self._config

    async def _audit(self, action: str, target: str | None, detail: str | None = None) -> None:
        await self._store.add_audit(
            AuditEntry(now(), self.actor, action, target, detail, self.source)
        )

    def _check_role(self, role: str) -> None:
        if role not in self._config.roles:
            known = ", ".join(sorted(self._config.roles))
            raise AdminError(f"unknown role {role!r} (configured roles: {known})")

    # -- users ------------------------------------------------------------------------------

    async def add_user(
        self, name: str, *, role: str | None = None, email: str | None = None
    ) -> User:
        role = role or self._config.default_role
        self._check_role(role)
        if not valid_user_name(name):
            raise AdminError(f"invalid user name {name!r}")
        try:
            user = await self._store.create_user(name=name, role=role, email=email)
        except ConflictError as exc:
            raise AdminError(str(exc)) from None
        await self._audit("user.add", name, f"role={role}")
        return user

    async def list_users(self) -> list[User]:
        return await self._store.list_users()

    async def set_disabled(self, name: str, disabled: bool) -> User:
        user = await self._store.set_user_disabled(name, disabled)
        await self._audit("user.disable" if disabled else "user.enable", name)
        return user

    async def set_role(self, name: str, role: str) -> User:
        self._check_role(role)
        user = await self._store.set_user_role(name, role)
        await self._audit("user.role", name, f"role={role}")
        return user

    # -- keys -------------------------------------------------------------------------------

    async def create_key(
        self,
        user_name: str,
        *,
        label: str | None = None,
        expires_in: float | None = None,
        max_active: int | None = None,
        acts_for_users: bool = False,
    ) -> NewKey:
        """A new key; ``acts_for_users`` makes it a service key, which may name the person a
        request is for (Open WebUI's forwarded user headers; ``auth/acting_for.py``)."""
        user = await self._store.get_user(user_name)
        if user.disabled:
            raise AdminError(f"user {user_name!r} is disabled; enable it first")
        if acts_for_users and user.role == ADMIN_ROLE:
            raise AdminError(
                f"{user_name!r} is an admin, and a service key's user may not be one:"
                " give the service a user of its own (e.g. `authproxy users add openwebui`)"
            )
        secret = generate_key()
        try:
            record = await self._store.create_key(
                user_id=user.id,
                key_hash=self._hasher.digest(secret),
                prefix=display_prefix(secret),
                label=label,
                expires_at=now() + expires_in if expires_in else None,
                max_active=max_active,
                acts_for_users=acts_for_users,
            )
        except ConflictError as exc:  # max_active reached
            raise AdminError(f"{user_name}: {exc}") from None
        detail = f"key_id={record.id}" + (" acts_for_users" if acts_for_users else "")
        await self._audit("key.create", user_name, detail)
        return NewKey(record, secret)

    async def list_keys(self, user_name: str | None = None) -> list[ApiKey]:
        user_id = (await self._store.get_user(user_name)).id if user_name else None
        return await self._store.list_keys(user_id)

    async def revoke_key(self, key_id: int) -> ApiKey:
        try:
            record = await self._store.revoke_key(key_id)
        except ConflictError as exc:
            raise AdminError(str(exc)) from None
        await self._audit("key.revoke", record.user_name, f"key_id={key_id}")
        return record

    # -- models -----------------------------------------------------------------------------

    async def model_settings(self) -> list[ModelSetting]:
        return await self._store.list_model_settings()

    async def set_model_enabled(self, name: str, enabled: bool) -> ModelSetting:
        setting = await self._store.set_model_enabled(name, enabled)
        await self._audit("model.enable" if enabled else "model.disable", name)
        return setting

    async def models_overview(self, *, timeout: float = 3.0) -> ModelOverview:
        """Configured and discovered models (asks discovering engines), enabled or not, and
        which roles may use each."""
        enabled = {s.name: s.enabled for s in await self._store.list_model_settings()}
        return await model_overview(self._config, enabled, timeout=timeout)

    async def upstream_health(self, *, timeout: float = 2.0) -> list[UpstreamHealth]:
        return await upstream_health(self._config, timeout=timeout)

    async def gateway_status(self, *, timeout: float = 2.0) -> GatewayStatus:
        """Open streams, quota rejections and upstream state from the gateway on this host
        (its /metrics, read from loopback like a local Prometheus)."""
        return await gateway_status(metrics_url(self._config), timeout=timeout)

    # -- quotas -----------------------------------------------------------------------------

    async def set_quota(self, user_name: str, **changes: int | None) -> Limits:
        """Change some of a user's overrides: an int sets it (UNLIMITED = no limit), None
        returns it to the role's default; fields not named stay as they are."""
        unknown = set(changes) - set(QUOTA_FIELDS)
        if unknown:
            raise AdminError(f"unknown quota field(s): {', '.join(sorted(unknown))}")
        user = await self._store.get_user(user_name)
        current = (await self._store.quota_overrides()).get(user.id) or QuotaOverride(user.id)
        values = {f: getattr(current, f) for f in QUOTA_FIELDS} | changes
        override = QuotaOverride(user.id, **values)
        await self._store.set_quota(override)
        shown = {None: "role", UNLIMITED: "unlimited"}
        detail = " ".join(f"{k}={shown.get(v, v)}" for k, v in sorted(changes.items()))
        await self._audit("user.quota", user_name, detail)
        return resolve_limits(self._config.roles.get(user.role), override)

    # -- usage ------------------------------------------------------------------------------

    async def usage(self, *, since: float, user_name: str | None = None) -> list[UsageSummary]:
        user_id = (await self._store.get_user(user_name)).id if user_name else None
        return await self._store.usage_summary(since=since, user_id=user_id)

    async def usage_against_quotas(
        self, *, since: float, user_name: str | None = None, at: float | None = None
    ) -> list[UserUsage]:
        """Each user's tokens today and this month (calendar ones, as of ``at``, default now)
        against their limits, and their requests since ``since``."""
        users = (
            [await self._store.get_user(user_name)] if user_name else await self._store.list_users()
        )
        windows = CalendarWindows(timezone=self._config.quotas.timezone)
        t = now() if at is None else at
        today = await self._store.token_totals_since(windows.day(t)[0])
        month = await self._store.token_totals_since(windows.month(t)[0])
        overrides = await self._store.quota_overrides()
        per_user: dict[str, list[UsageSummary]] = {}
        for s in await self._store.usage_summary(since=since):
            per_user.setdefault(s.user_name, []).append(s)
        report = []
        for user in users:
            rows = per_user.get(user.name, [])
            report.append(
                UserUsage(
                    user=user,
                    limits=resolve_limits(
                        self._config.roles.get(user.role), overrides.get(user.id)
                    ),
                    override=overrides.get(user.id),
                    tokens_today=today.get(user.id, 0),
                    tokens_month=month.get(user.id, 0),
                    requests=sum(r.requests for r in rows),
                    prompt_tokens=sum(r.prompt_tokens for r in rows),
                    completion_tokens=sum(r.completion_tokens for r in rows),
                )
            )
        return report

    async def dashboard(self, *, at: float, window: float = 3600.0) -> Dashboard:
        """Requests and tokens per minute over the last ``window`` seconds before ``at``."""
        return await build_dashboard(self._store, at=at, window=window)

    async def audit_log(self, *, since: float, limit: int = 1000) -> list[AuditEntry]:
        return await self._store.list_audit(since=since, limit=limit)

    # -- passwords and browser sessions ------------------------------------------------------

    async def set_password(self, name: str, password_hash: str | None) -> User:
        """Set (a hash made by ``passwords.hash_password``) or clear a user's password; a
        change ends the user's browser sessions."""
        user = await self._store.set_password_hash(name, password_hash)
        ended = await self._store.delete_user_sessions(user.id)
        action = "user.passwd" if password_hash else "user.passwd_clear"
        await self._audit(action, name, f"sessions_ended={ended}")
        return user

    async def list_sessions(self, user_name: str | None = None) -> list[Session]:
        user_id = (await self._store.get_user(user_name)).id if user_name else None
        await self._store.purge_sessions(idle_before=now() - self._config.sessions.idle_timeout)
        return await self._store.list_sessions(user_id)

    async def end_sessions(self, user_name: str) -> int:
        """End every browser session of a user, at once; the number ended."""
        user = await self._store.get_user(user_name)
        ended = await self._store.delete_user_sessions(user.id)
        await self._audit("session.revoke", user_name, f"sessions_ended={ended}")
        return ended

    # -- first start ------------------------------------------------------------------------

    async def init_admin(self, name: str = "admin") -> NewKey:
        users = await self._store.list_users()
        if any(u.role == ADMIN_ROLE for u in users):
            raise AdminError(
                "already initialised: an admin exists (create another key with"
                " `authproxy keys create NAME`)"
            )
        await self.add_user(name, role=ADMIN_ROLE)
        return await self.create_key(name, label="created by init")
