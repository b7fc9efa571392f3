"""From an identity provider's claims to a gateway user: find, link, create or refuse; role.

A sign-in is matched to a user by the provider's ``sub``, never by a name alone: the first time,
a new user is created under ``username_claim``, else the e-mail address, else ``sub`` (or
refused when ``unknown_users: reject``). A user that already exists under the name so chosen
but is not linked to this ``sub`` (made with the CLI, a break-glass admin) is refused unless
``link_existing_users`` is on, so nobody becomes ``admin`` by choosing that name (or e-mail
address) at the provider. With a ``roles_map``, the provider is the source of
truth for roles: the role is recomputed at every sign-in (a user removed from the admin group
is demoted at their next login); without one, roles are managed here and new users get the
default role.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from authproxy.admin.entry import Services
from authproxy.admin.service import AdminError, AdminService, valid_user_name
from authproxy.config.login import Oidc as Settings
from authproxy.store.base import ConflictError, NotFoundError
from authproxy.store.contracts import LoginStore, UserStore
from authproxy.store.records import User

__all__ = ["LoginRefused", "OidcUserStore", "OidcUsers", "role_from_claims"]


class LoginRefused(Exception):
    """This person may not sign in; the message is shown to them, ``reason`` is audited."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def _values(claim: Any) -> list[str]:
    if isinstance(claim, str):
        return [claim]
    if isinstance(claim, list):
        return [v for v in claim if isinstance(v, str)]
    return []


def role_from_claims(settings: Settings, claims: Mapping[str, Any], fallback: str) -> str:
    """The first ``roles_map`` entry whose claim value the user has, else the default role."""
    held = set(_values(claims.get(settings.role_claim)))
    for value, role in settings.roles_map.items():
        if value in held:
            return role
    return settings.default_role or fallback


class OidcUserStore(LoginStore, UserStore, Protocol):
    """What sign-ins read: users, and the OIDC subject each is linked to."""


class OidcUsers:
    def __init__(self, *, services: Services) -> None:
        assert services.config.oidc is not None
        self._services = services
        self._store: OidcUserStore = services.store
        self._config = services.config
        self._settings = services.config.oidc

    def _admin(self, actor: str, source: str) -> AdminService:
        return self._services.admin(actor=actor, source=source)

    def username(self, claims: Mapping[str, Any]) -> str:
        """The name a first sign-in gets: ``username_claim``; a provider that sends none (Google
        sends only ``sub`` and ``email``) falls back to the e-mail address (unless the provider
        says it is unverified), then to ``sub``. The first of them that is a valid user name."""
        candidates = [self._settings.username_claim]
        if claims.get("email_verified") is not False:
            candidates.append(self._settings.email_claim)
        candidates.append("sub")
        for claim in candidates:
            value = claims.get(claim)
            if isinstance(value, str) and valid_user_name(value.strip()):
                return value.strip()
        raise LoginRefused(
            f"the identity provider sent no usable name for you (tried {', '.join(candidates)})",
            "no_username_claim",
        )

    async def user_for(
        self, claims: Mapping[str, Any], *, source: str, sync_role: bool = True
    ) -> User:
        """The enabled user these (already verified) claims belong to, or ``LoginRefused``.

        ``sync_role=False`` for API bearer tokens: access tokens often lack the role claim, and
        a role must not flap between calls; the role set at the last browser sign-in holds."""
        subject = str(claims["sub"])
        user = await self._store.user_by_subject(subject)
        if user is None:
            user = await self._link_or_create(claims, subject, source=source)
        if user.disabled:
            raise LoginRefused(f"the account {user.name!r} is disabled", "user_disabled")
        if sync_role and self._settings.roles_map:
            role = role_from_claims(self._settings, claims, self._config.default_role)
            if role != user.role:
                user = await self._admin("oidc", source).set_role(user.name, role)
        return user

    async def _link_or_create(
        self, claims: Mapping[str, Any], subject: str, *, source: str
    ) -> User:
        name = self.username(claims)
        try:
            user = await self._store.get_user(name)
        except NotFoundError:
            user = None
        if user is not None:
            linked = await self._store.subject_of(user.id)
            if linked is not None or not self._settings.link_existing_users:
                raise LoginRefused(
                    f"an account named {name!r} exists here but is not linked to your sign-in;"
                    " ask an administrator",
                    "name_taken",
                )
        elif self._settings.unknown_users == "reject":
            raise LoginRefused(f"there is no account for {name!r} here", "unknown_user")
        else:
            email = claims.get(self._settings.email_claim)
            role = role_from_claims(self._settings, claims, self._config.default_role)
            admin = self._admin(f"oidc:{name}", source)
            try:
                user = await admin.add_user(
                    name, role=role, email=email if isinstance(email, str) else None
                )
            except AdminError as exc:
                raise LoginRefused(f"cannot create your account: {exc}", "create_failed") from None
        try:
            await self._store.link_subject(user.id, subject)
        except ConflictError:
            raise LoginRefused(
                "this sign-in is linked to another account", "subject_taken"
            ) from None
        return user
