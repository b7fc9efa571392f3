"""Service keys acting for people: Open WebUI (or any trusted front end) in front, each person
authorized, limited and charged as themselves.

A key made with ``keys create USER --acts-for-users`` may name the person a request is for
with Open WebUI's forwarded user headers (``forwarded_person.py``). The request then runs as
that person — their role, model access, quotas, usage rows (which also name the service key)
— found by e-mail address; an unknown address gets a user of the default role (or a 403 with
``acts_for_users.unknown_people: reject``), a disabled person a 403. Without the headers the
service key is an ordinary key of its own user (Open WebUI lists models at start that way).

What a service key may not do:

- be an admin's: its user may not have the admin role (refused when the key is made, and at
  every request should the user be promoted later);
- make anyone an admin or act as one: the role header means nothing here, and a person who is
  an admin here is served with the default role (their own quota overrides still apply), so
  no request that came through a service key ever has the admin role — every admin-only path
  stays closed to it.

Any other credential carrying the headers is not believed: they are ignored (the default) or
refused (``acts_for_users.foreign_headers: refuse``). Refusals are audited (at most one line a
minute per service, person and reason), as is every person made here, naming both.
"""

from __future__ import annotations

import time
from typing import Protocol

from aiohttp import web

from authproxy import appkeys as K
from authproxy.auth.forwarded_person import (
    EMAIL,
    ForwardedPerson,
    forwarded_person,
    names_a_person,
)
from authproxy.auth.people import PeopleIndex
from authproxy.auth.principal import Principal
from authproxy.clock import now
from authproxy.config.schema import ADMIN_ROLE, ActsForUsers
from authproxy.errors import PermissionDenied, ServiceUnavailable
from authproxy.store.base import ConflictError, StoreError
from authproxy.store.contracts import UserStore
from authproxy.store.records import AuditEntry, User
from authproxy.text import valid_user_name

__all__ = ["AUDIT_EVERY", "ActingFor", "AuditSink"]

AUDIT_EVERY = 60.0  # seconds between two audit lines of one refusal (a busy front end retries)
_MAX_REMEMBERED = 10_000


class AuditSink(Protocol):
    """Where the audit lines go (the batched usage writer)."""

    def audit(self, entry: AuditEntry) -> None: ...


class ActingFor:
    def __init__(
        self,
        *,
        settings: ActsForUsers,
        default_role: str,
        people: PeopleIndex,
        store: UserStore,
        audit: AuditSink,
    ) -> None:
        self._settings = settings
        self._default_role = default_role
        self._people = people
        self._store = store
        self._audit = audit
        self._refusals: dict[tuple[str, str, str], float] = {}

    async def resolve(self, request: web.Request, principal: Principal) -> Principal:
        """Who the request runs as: the person a service key names, else the principal."""
        if not principal.acts_for_users:
            if self._settings.foreign_headers == "refuse" and names_a_person(request.headers):
                target = request.headers.get(EMAIL)
                self._refused(request, principal.user_name, target, "foreign_user_headers")
                raise PermissionDenied(
                    "only a service key may name the person a request is for"
                    " (X-OpenWebUI-User-* headers); send the request without them",
                    code="foreign_user_headers",
                )
            return principal  # whatever it claims, it is not believed (nor forwarded)
        if principal.role == ADMIN_ROLE:
            raise PermissionDenied(
                f"the service key's user {principal.user_name!r} is an admin; a service key's"
                " user may not be one (give the service a user of its own)",
                code="service_key_admin",
            )
        person = forwarded_person(request.headers)
        if person is None:
            return principal  # the service on its own account
        service = f"service:{principal.user_name}"
        user = await self._person(request, principal, person, service)
        if user.disabled:
            self._refused(request, service, user.name, "person_disabled")
            raise PermissionDenied(f"the user {user.name!r} is disabled", code="person_disabled")
        role = self._default_role if user.role == ADMIN_ROLE else user.role
        if role == ADMIN_ROLE:
            self._refused(request, service, user.name, "person_is_admin")
            raise PermissionDenied(
                f"{user.name!r} is an admin here and a service key never acts as one",
                code="person_is_admin",
            )
        return Principal(
            user_id=user.id,
            user_name=user.name,
            role=role,
            key_id=principal.key_id,
            via=principal.via,
            service=principal.user_name,
        )

    async def _person(
        self, request: web.Request, principal: Principal, person: ForwardedPerson, service: str
    ) -> User:
        found = self._people.find(person.email)
        if len(found) > 1:
            self._refused(request, service, person.email, "ambiguous_person")
            raise PermissionDenied(
                f"several users here have the e-mail address {person.email}; an admin must"
                " give each its own",
                code="ambiguous_person",
            )
        if found:
            return found[0]
        if self._settings.unknown_people == "reject":
            self._refused(request, service, person.email, "unknown_person")
            raise PermissionDenied(
                f"there is no user with the e-mail address {person.email} here",
                code="unknown_person",
            )
        return await self._create(request, principal, person, service)

    async def _create(
        self, request: web.Request, principal: Principal, person: ForwardedPerson, service: str
    ) -> User:
        name, role = person.email, self._default_role
        if role == ADMIN_ROLE or not valid_user_name(name):
            why = "the default role is admin" if role == ADMIN_ROLE else "the address is too long"
            self._refused(request, service, name, "cannot_create_person")
            raise PermissionDenied(
                f"no user has the e-mail address {name} and none can be made for it ({why});"
                " an admin can add one",
                code="unknown_person",
            )
        try:
            user = await self._store.create_user(name=name, role=role, email=name)
        except ConflictError:  # the name exists: made a moment ago by a parallel request?
            user = await self._store.get_user(name)
            if (user.email or "").strip().lower() != name:
                self._refused(request, service, name, "person_name_taken")
                raise PermissionDenied(
                    f"a user named {name!r} exists here without that e-mail address",
                    code="person_name_taken",
                ) from None
        except StoreError:
            raise ServiceUnavailable(
                "the database cannot take a new user right now; try again"
            ) from None
        else:
            detail = f"role={role} key_id={principal.key_id}" + "".join(
                f" front_end_{label}={value!r}"
                for label, value in (("name", person.name), ("id", person.front_end_id))
                if value
            )
            self._audit.audit(
                AuditEntry(now(), service, "user.add", name, detail, request.get(K.CLIENT))
            )
        self._people.add(user)
        return user

    def _refused(self, request: web.Request, actor: str, target: str | None, reason: str) -> None:
        shown = "".join(c for c in (target or "") if c.isprintable())[:100] or None
        mono, remember = time.monotonic(), (actor, shown or "", reason)
        if mono - self._refusals.get(remember, -AUDIT_EVERY) < AUDIT_EVERY:
            return
        if len(self._refusals) >= _MAX_REMEMBERED:
            self._refusals.clear()
        self._refusals[remember] = mono
        source = request.get(K.CLIENT)
        self._audit.audit(
            AuditEntry(now(), actor, "auth.refused", shown, f"reason={reason}", source)
        )
