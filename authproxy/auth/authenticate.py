"""Authentication: every request, on its raw path, before anything else.

An authenticator returns None for "not mine" and raises ``AuthenticationFailed`` for "mine but
invalid". ``Authorization: Bearer sk-...`` and ``x-api-key: sk-...`` go through the very same
checks; a request that carries both must carry the same key in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from aiohttp import web

from authproxy.auth.key_index import KeyIndex
from authproxy.auth.keys import KEY_PREFIX, looks_like_key
from authproxy.auth.principal import Principal
from authproxy.errors import AuthenticationFailed
from authproxy.store.records import ActiveKey
from authproxy.store.watch import StoreWatch

__all__ = ["ApiKeyAuthenticator", "Authenticator", "authenticate", "presented_api_key"]


class Authenticator(Protocol):
    async def authenticate(self, request: web.Request) -> Principal | None: ...


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationFailed("the Authorization header must be `Bearer <key>`")
    return token.strip()


def presented_api_key(request: web.Request) -> str | None:
    """The ``sk-`` key this request presents, if any (None when it presents no such key)."""
    bearer = _bearer(request)
    header_key = request.headers.get("x-api-key")
    header_key = header_key.strip() if header_key is not None else None
    if bearer is not None and not bearer.startswith(KEY_PREFIX):
        bearer = None  # another kind of bearer token (an IdP JWT): not for this authenticator
    if bearer is not None and header_key is not None and bearer != header_key:
        raise AuthenticationFailed("Authorization and x-api-key carry different keys")
    return bearer if bearer is not None else header_key


class ApiKeyAuthenticator:
    def __init__(self, *, index: KeyIndex, watch: StoreWatch) -> None:
        self._index = index
        self._watch = watch
        # The principal of each key record, made once: a reload makes new records, and a
        # cached principal serves only the very record it was made from.
        self._principals: dict[int, tuple[ActiveKey, Principal]] = {}

    async def authenticate(self, request: web.Request) -> Principal | None:
        key = presented_api_key(request)
        if key is None:
            return None
        record = self._index.lookup(key)
        if record is None and looks_like_key(key) and await self._watch.check_if_stale():
            record = self._index.lookup(key)  # created a moment ago, by another process
        if record is None:
            raise AuthenticationFailed("invalid API key (unknown, revoked, expired or disabled)")
        cached = self._principals.get(record.key_id)
        if cached is not None and cached[0] is record:
            return cached[1]
        principal = Principal(
            user_id=record.user_id,
            user_name=record.user_name,
            role=record.role,
            key_id=record.key_id,
            via="key",
            acts_for_users=record.acts_for_users,
        )
        self._principals[record.key_id] = (record, principal)
        return principal


async def authenticate(request: web.Request, authenticators: Sequence[Authenticator]) -> Principal:
    for authenticator in authenticators:
        principal = await authenticator.authenticate(request)
        if principal is not None:
            return principal
    if "Authorization" in request.headers:
        raise AuthenticationFailed("unsupported credential in the Authorization header")
    raise AuthenticationFailed(
        "missing credentials: send `Authorization: Bearer sk-...` or `x-api-key: sk-...`",
        code="missing_api_key",
    )
