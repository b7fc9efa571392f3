"""Checking tokens from the OIDC provider: signature against its JWKS, then the claims.

Signatures are checked with joserfc (the JOSE library authlib itself uses for this since 1.7)
with the algorithms the provider announces and never ``none``; ID token claims are checked by
authlib's ``CodeIDToken`` (essential claims, nonce, azp, at_hash) with ``iss`` and ``aud`` pinned,
and ``exp`` / ``iat`` / ``nbf`` allowed the configured clock skew and no more.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from authlib.oauth2.claims import JWTClaims
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

__all__ = [
    "SAFE_ALGORITHMS",
    "TokenRefused",
    "UnknownSigningKey",
    "allowed_algorithms",
    "check_bearer_token",
    "check_id_token",
]

SAFE_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class TokenRefused(Exception):
    """The token is not acceptable; the message says why (never the token itself)."""


class UnknownSigningKey(TokenRefused):
    """Signed with a key id the JWKS does not list: refetching the JWKS may help, once."""


def allowed_algorithms(announced: Collection[str] | None) -> list[str]:
    """The provider's announced ID token algorithms that we accept (RS256 if it names none)."""
    chosen = [a for a in (announced or ["RS256"]) if a in SAFE_ALGORITHMS]
    if not chosen:
        raise TokenRefused(f"the provider signs with none of {sorted(SAFE_ALGORITHMS)}")
    return chosen


def _verified(token: str, keys: KeySet, algorithms: list[str]) -> jwt.Token:
    if token.count(".") != 2:
        raise TokenRefused("not a signed JWT")
    try:
        return jwt.decode(
            token, keys, registry=JWSRegistry(algorithms=algorithms, strict_check_header=False)
        )
    except InvalidKeyIdError:
        raise UnknownSigningKey("signed by a key the provider does not list") from None
    except BadSignatureError:
        raise TokenRefused("bad signature (not signed by the provider's keys)") from None
    except JoseError as exc:
        raise TokenRefused(f"unreadable token ({exc.error})") from None


def _check(claims: JWTClaims, leeway: float) -> None:
    try:
        claims.validate(leeway=int(leeway))
    except ExpiredTokenError:
        raise TokenRefused("the token has expired") from None
    except ClaimError as exc:
        raise TokenRefused(f"claim refused: {exc.description or exc.error}") from None


def _pinned(issuer: str, audience: str) -> dict[str, Any]:
    return {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
        "sub": {"essential": True},
    }


def check_id_token(
    id_token: str,
    *,
    keys: KeySet,
    algorithms: list[str],
    issuer: str,
    client_id: str,
    nonce: str,
    access_token: str | None,
    leeway: float,
) -> dict[str, Any]:
    """The ID token's claims, once signature, iss, aud, exp, iat, nonce and azp all check out."""
    token = _verified(id_token, keys, algorithms)
    params: dict[str, Any] = {"nonce": nonce, "client_id": client_id}
    if access_token:
        params["access_token"] = access_token
    claims = CodeIDToken(token.claims, token.header, _pinned(issuer, client_id), params)
    if "nonce" not in claims:  # authlib only compares it when present; we always sent one
        raise TokenRefused("claim refused: the ID token carries no nonce")
    _check(claims, leeway)
    return dict(claims)


def check_bearer_token(
    token: str,
    *,
    keys: KeySet,
    algorithms: list[str],
    issuer: str,
    audience: str,
    leeway: float,
) -> dict[str, Any]:
    """The claims of an IdP-issued JWT access token for API calls: signature, iss, aud, exp."""
    verified = _verified(token, keys, algorithms)
    claims = JWTClaims(verified.claims, verified.header, _pinned(issuer, audience))
    _check(claims, leeway)
    return dict(claims)
