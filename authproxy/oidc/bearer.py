"""Optional: API calls with a JWT issued by the OIDC provider (``oidc.accept_bearer_tokens``).

The token's signature is checked against the provider's JWKS, its ``iss`` pinned, its ``aud``
must be ``oidc.bearer_audience`` (default: the client id) and ``exp`` is honoured with the
configured clock skew. It then acts as the user linked to its ``sub``, under the same rules as a
browser sign-in (unknown users created or refused, disabled users refused).
"""

from __future__ import annotations

from aiohttp import web

from authproxy import appkeys as K
from authproxy.auth.keys import KEY_PREFIX
from authproxy.auth.principal import Principal
from authproxy.errors import AuthenticationFailed
from authproxy.oidc.client import OidcClient, OidcError
from authproxy.oidc.tokens import TokenRefused
from authproxy.oidc.users import LoginRefused, OidcUsers

__all__ = ["MAX_TOKEN_CHARS", "JwtAuthenticator"]

MAX_TOKEN_CHARS = 16384


class JwtAuthenticator:
    def __init__(self, *, oidc: OidcClient, users: OidcUsers) -> None:
        self._oidc = oidc
        self._users = users

    async def authenticate(self, request: web.Request) -> Principal | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or token.startswith(KEY_PREFIX) or token.count(".") != 2:
            return None
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthenticationFailed("bearer token too long", code="invalid_token")
        try:
            claims = await self._oidc.bearer_claims(token)
        except TokenRefused as exc:
            raise AuthenticationFailed(
                f"bearer token refused: {exc}", code="invalid_token"
            ) from None
        except OidcError as exc:
            raise AuthenticationFailed(
                f"bearer token cannot be checked now: {exc}", code="invalid_token"
            ) from None
        try:
            user = await self._users.user_for(claims, source=request[K.CLIENT], sync_role=False)
        except LoginRefused as exc:
            raise AuthenticationFailed(
                f"bearer token refused: {exc}", code="invalid_token"
            ) from None
        return Principal(
            user_id=user.id, user_name=user.name, role=user.role, key_id=None, via="jwt"
        )
