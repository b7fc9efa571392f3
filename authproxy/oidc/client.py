"""The OIDC relying party: discovery, JWKS, the authorization request, the code exchange.

Discovery and JWKS are fetched on first use (the gateway starts even while the provider is
down) and cached for ``metadata_ttl``; a token signed with a key id the cached JWKS lacks makes
one refetch, at most every ``JWKS_REFETCH_GAP`` seconds, so key rotation works and a stream of
made-up key ids cannot hammer the provider.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc.jwk import KeySet

from authproxy.config.login import Oidc as Settings
from authproxy.oidc.tokens import (
    TokenRefused,
    UnknownSigningKey,
    allowed_algorithms,
    check_bearer_token,
    check_id_token,
)

__all__ = ["JWKS_REFETCH_GAP", "MAX_DOCUMENT_BYTES", "OidcClient", "OidcError"]

JWKS_REFETCH_GAP = 60.0
MAX_DOCUMENT_BYTES = 1 << 20


class OidcError(Exception):
    """The login cannot go on; the message is safe to show the person logging in."""


@dataclass(frozen=True, slots=True)
class _Cached:
    value: Any
    fetched_at: float


class OidcClient:
    def __init__(self, *, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self._session = session
        self._metadata: _Cached | None = None
        self._jwks: _Cached | None = None
        self._lock = asyncio.Lock()

    # -- provider documents -----------------------------------------------------------------

    async def _get_json(self, url: str, headers: dict[str, str] | None = None) -> Any:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        try:
            async with self._session.get(url, headers=headers, timeout=timeout) as resp:
                if resp.status != 200:
                    raise OidcError(f"the identity provider answered {resp.status} for {url}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError(f"cannot reach the identity provider ({type(exc).__name__})") from None

    def _fresh(self, cached: _Cached | None) -> bool:
        return (
            cached is not None and time.monotonic() - cached.fetched_at < self.settings.metadata_ttl
        )

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if not self._fresh(self._metadata):
                issuer = self.settings.issuer.rstrip("/")
                doc = await self._get_json(issuer + "/.well-known/openid-configuration")
                if not isinstance(doc, dict) or doc.get("issuer") != self.settings.issuer:
                    raise OidcError("the provider's discovery document names another issuer")
                for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(doc.get(field), str):
                        raise OidcError(f"the provider's discovery document lacks {field}")
                self._metadata = _Cached(doc, time.monotonic())
            assert self._metadata is not None
            return dict(self._metadata.value)

    async def keys(self, *, refresh: bool = False) -> KeySet:
        meta = await self.metadata()
        async with self._lock:
            stale = not self._fresh(self._jwks)
            may_refetch = self._jwks is None or (
                time.monotonic() - self._jwks.fetched_at >= JWKS_REFETCH_GAP
            )
            if stale or (refresh and may_refetch):
                doc = await self._get_json(meta["jwks_uri"])
                try:
                    self._jwks = _Cached(KeySet.import_key_set(doc), time.monotonic())
                except Exception:
                    raise OidcError("the provider's JWKS is not a key set") from None
            assert self._jwks is not None
            keys: KeySet = self._jwks.value
            return keys

    # -- the code flow ----------------------------------------------------------------------

    async def authorization_url(self, *, state: str, nonce: str, code_verifier: str) -> str:
        meta = await self.metadata()
        params = [
            ("response_type", "code"),
            ("client_id", self.settings.client_id),
            ("redirect_uri", self.settings.redirect_url),
            ("scope", " ".join(self.settings.scopes)),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(code_verifier)),
            ("code_challenge_method", "S256"),
        ]
        url: str = add_params_to_uri(meta["authorization_endpoint"], params)
        return url

    async def exchange_code(self, code: str, code_verifier: str) -> dict[str, Any]:
        meta = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_url,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        secret = self.settings.client_secret
        method = self.settings.auth_method
        if method == "client_secret_basic" and secret is not None:
            # RFC 6749 2.3.1: both parts form-urlencoded before they are joined and encoded.
            user = quote(self.settings.client_id, safe="")
            pair = f"{user}:{quote(secret.get_secret_value(), safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self.settings.client_id
            if method == "client_secret_post" and secret is not None:
                form["client_secret"] = secret.get_secret_value()
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        try:
            async with self._session.post(
                meta["token_endpoint"], data=form, headers=headers, timeout=timeout
            ) as resp:
                body = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError(f"cannot reach the identity provider ({type(exc).__name__})") from None
        if status != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise OidcError(f"the identity provider refused the code ({error or status})")
        if not isinstance(body.get("id_token"), str):
            raise OidcError("the identity provider sent no ID token (is `openid` a scope?)")
        return body

    async def id_token_claims(self, tokens: dict[str, Any], *, nonce: str) -> dict[str, Any]:
        meta = await self.metadata()
        algorithms = allowed_algorithms(meta.get("id_token_signing_alg_values_supported"))
        access_token = tokens.get("access_token")

        def check(keys: KeySet) -> dict[str, Any]:
            return check_id_token(
                tokens["id_token"],
                keys=keys,
                algorithms=algorithms,
                issuer=self.settings.issuer,
                client_id=self.settings.client_id,
                nonce=nonce,
                access_token=access_token if isinstance(access_token, str) else None,
                leeway=self.settings.clock_skew,
            )

        try:
            try:
                return check(await self.keys())
            except UnknownSigningKey:
                return check(await self.keys(refresh=True))
        except TokenRefused as exc:
            raise OidcError(f"the ID token was refused: {exc}") from None

    async def userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """Userinfo claims (empty when the provider has no such endpoint); ``sub`` must match."""
        meta = await self.metadata()
        endpoint = meta.get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        info = await self._get_json(endpoint, {"Authorization": f"Bearer {access_token}"})
        if not isinstance(info, dict) or info.get("sub") != subject:
            raise OidcError("the provider's userinfo is about another subject")
        return info

    async def bearer_claims(self, token: str) -> dict[str, Any]:
        """Claims of an IdP-issued JWT presented as an API bearer token (raises TokenRefused)."""
        meta = await self.metadata()
        algorithms = allowed_algorithms(meta.get("id_token_signing_alg_values_supported"))

        def check(keys: KeySet) -> dict[str, Any]:
            return check_bearer_token(
                token,
                keys=keys,
                algorithms=algorithms,
                issuer=self.settings.issuer,
                audience=self.settings.audience_for_bearer,
                leeway=self.settings.clock_skew,
            )

        try:
            return check(await self.keys())
        except UnknownSigningKey:
            return check(await self.keys(refresh=True))
