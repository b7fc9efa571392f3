"""The admin service: every administrative action, shared by the CLI and the TUI.

Neither front end talks SQL of its own; every action here is recorded in the audit table with
who did it and from where.
"""

from __future__ import annotations

from dataclasses import dataclass

from authproxy.clock import now
from authproxy.config import ADMIN_ROLE, Config
from authproxy.keys import KeyHasher, display_prefix, generate_key
from authproxy.store.base import ConflictError, Store
from authproxy.store.records import ApiKey, AuditEntry, ModelSetting, UsageSummary, User


class AdminError(Exception):
    """A refusal with a one-line reason for the person at the keyboard."""


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
        if not name or len(name) > 64 or not name.isprintable() or name.strip() != name:
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
        self, user_name: str, *, label: str | None = None, expires_in: float | None = None
    ) -> NewKey:
        user = await self._store.get_user(user_name)
        if user.disabled:
            raise AdminError(f"user {user_name!r} is disabled; enable it first")
        secret = generate_key()
        record = await self._store.create_key(
            user_id=user.id,
            key_hash=self._hasher.digest(secret),
            prefix=display_prefix(secret),
            label=label,
            expires_at=now() + expires_in if expires_in else None,
        )
        await self._audit("key.create", user_name, f"key_id={record.id}")
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

    # -- usage ------------------------------------------------------------------------------

    async def usage(self, *, since: float, user_name: str | None = None) -> list[UsageSummary]:
        user_id = (await self._store.get_user(user_name)).id if user_name else None
        return await self._store.usage_summary(since=since, user_id=user_id)

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
