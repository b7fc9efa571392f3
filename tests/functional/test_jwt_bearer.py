"""Optional: API calls with a JWT from the provider, checked against its JWKS and audience."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .browser import browser_gateway
from .fake_idp import FakeIdp, new_key
from .helpers import CHAT, MODELS, Gateway, bearer, chat_body

AUDIENCE = "authproxy-api"


@pytest.fixture
async def sso(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[tuple[Gateway, FakeIdp]]:
    extra = {"accept_bearer_tokens": True, "bearer_audience": AUDIENCE}
    async with browser_gateway(tmp_path, engine.base_url, oidc=extra) as pair:
        yield pair


def _claims(**extra: object) -> dict[str, object]:
    return {"sub": "sub-dave", "preferred_username": "dave", "aud": AUDIENCE, **extra}


async def test_a_provider_token_acts_as_its_user(
    sso: tuple[Gateway, FakeIdp], session: aiohttp.ClientSession
) -> None:
    gw, idp = sso
    token = idp.mint(_claims())
    async with session.post(gw.url(CHAT), json=chat_body(), headers=bearer(token)) as r:
        assert r.status == 200
    [row] = await gw.usage(1)
    async with gw.admin() as admin:
        dave = next(u for u in await admin.list_users() if u.name == "dave")
    assert row.user_id == dave.id and row.key_id is None


@pytest.mark.parametrize(
    "case", ["other-audience", "id-token-audience", "expired", "other-key", "other-issuer"]
)
async def test_bad_provider_tokens_are_refused(
    sso: tuple[Gateway, FakeIdp], session: aiohttp.ClientSession, engine: FakeEngine, case: str
) -> None:
    gw, idp = sso
    token = {
        "other-audience": lambda: idp.mint(_claims(aud="someone-else")),
        "id-token-audience": lambda: idp.mint(_claims(aud=gw.config.oidc.client_id)),  # type: ignore[union-attr]
        "expired": lambda: idp.mint(_claims(exp=int(time.time()) - 3600)),
        "other-key": lambda: idp.mint(_claims(), key=new_key("k1")),
        "other-issuer": lambda: idp.mint(_claims(iss="https://evil.example")),
    }[case]()
    async with session.get(gw.url(MODELS), headers=bearer(token)) as r:
        body = await r.json()
        assert r.status == 401 and body["error"]["code"] == "invalid_token", body
    assert engine.requests == []
