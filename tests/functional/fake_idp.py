"""A small, scriptable OpenID provider on loopback, for the refusals a real one never produces.

It serves discovery, a JWKS with one throwaway RSA key, an authorization endpoint that logs the
configured person in at once (redirecting back with a code), a token endpoint that checks the
client secret and PKCE and accepts each code once, and userinfo. Every ID token is minted here
with joserfc (the JOSE library authlib delegates to), and ``tamper`` changes what goes into the
next ones: another nonce or audience, an old expiry, the signature of another key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "authproxy-test"
CLIENT_SECRET = "test-secret-not-real"


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class Person:
    sub: str
    name: str
    groups: list[str] = field(default_factory=lambda: ["staff"])
    extra: dict[str, Any] = field(default_factory=dict)  # more (or other) claims
    drop: tuple[str, ...] = ()  # claims this provider doesn't send (Google: preferred_username)

    def claims(self) -> dict[str, Any]:
        claims = {
            "sub": self.sub,
            "preferred_username": self.name,
            "email": f"{self.name}@example.test",
            "groups": self.groups,
            **self.extra,
        }
        return {k: v for k, v in claims.items() if k not in self.drop}


@dataclass
class _Grant:
    person: Person
    nonce: str
    challenge: str
    redirect_uri: str
    used: bool = False


class FakeIdp:
    def __init__(self) -> None:
        self.key = new_key("k1")
        self.person = Person("sub-olivia", "olivia")
        self.tamper: dict[str, Any] = {}  # claim overrides for the next ID tokens
        self.sign_with: RSAKey | None = None  # another key (same kid unless it says otherwise)
        self.token_requests = 0
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, Person] = {}
        self.base_url = ""

    @property
    def issuer(self) -> str:
        return self.base_url

    def settings(self, redirect_url: str, **extra: Any) -> dict[str, Any]:
        """The gateway's `oidc:` config section for this provider."""
        return {
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_url": redirect_url,
            "scopes": ["openid", "email", "profile", "groups"],
            "roles_map": {"llm-admins": "admin"},
            **extra,
        }

    def mint(self, claims: dict[str, Any], *, key: RSAKey | None = None) -> str:
        """A signed JWT with the usual iss/aud/iat/exp, ``claims`` on top."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, **claims}
        signer = key or self.key
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, body, signer)

    # -- endpoints ------------------------------------------------------------------------

    async def _discovery(self, request: web.Request) -> web.Response:
        b = self.base_url
        return web.json_response(
            {
                "issuer": b,
                "authorization_endpoint": b + "/authorize",
                "token_endpoint": b + "/token",
                "jwks_uri": b + "/jwks",
                "userinfo_endpoint": b + "/userinfo",
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        assert q["client_id"] == CLIENT_ID and q["response_type"] == "code"
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(16)
        self._grants[code] = _Grant(self.person, q["nonce"], q["code_challenge"], q["redirect_uri"])
        back = urlencode({"code": code, "state": q["state"], "iss": self.issuer})
        raise web.HTTPFound(f"{q['redirect_uri']}?{back}")

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self._grants.get(str(form.get("code")))
        if grant is None or grant.used:
            return web.json_response({"error": "invalid_grant"}, status=400)
        grant.used = True
        verifier = str(form.get("code_verifier", ""))
        digest = hashlib.sha256(verifier.encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return web.json_response({"error": "invalid_grant", "pkce": "mismatch"}, status=400)
        if form.get("redirect_uri") != grant.redirect_uri:
            return web.json_response({"error": "invalid_grant"}, status=400)
        access = secrets.token_urlsafe(16)
        self._access[access] = grant.person
        claims = {"sub": grant.person.sub, "nonce": grant.nonce, **self.tamper}
        id_token = self.mint(claims, key=self.sign_with)
        return web.json_response(
            {"access_token": access, "token_type": "Bearer", "id_token": id_token}
        )

    async def _userinfo(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        person = self._access.get(token)
        if person is None:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response(person.claims())

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/userinfo", self._userinfo)
        return app


@contextlib.asynccontextmanager
async def running_idp() -> AsyncIterator[FakeIdp]:
    idp = FakeIdp()
    runner = web.AppRunner(idp.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        idp.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        yield idp
    finally:
        await runner.cleanup()
