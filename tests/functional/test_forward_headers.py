"""What crosses the gateway: an allow-list of the client's headers (never a credential, a
hop-by-hop header or a routing hint), the canonical encoding of the body the gateway checked,
on the endpoint's canonical path, with the upstream's own key."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from fakes.engine import FakeEngine, running_engine

from .helpers import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MESSAGES,
    Gateway,
    bearer,
    chat_body,
    running_gateway,
)
from .wire import raw_request

NEVER_FORWARDED = {
    "authorization",
    "x-api-key",
    "cookie",
    "proxy-authorization",
    "proxy-connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "x-hop-secret",  # named in Connection: hop-by-hop for this request
    # Not on the allow-list: other credentials, and hints a server behind the engine might obey.
    "api-key",
    "x-auth-token",
    "x-original-url",
    "x-http-method-override",
    "x-forwarded-prefix",
    "openai-organization",
    "x-custom",
}


async def test_credentials_and_hop_by_hop_headers_never_reach_the_engine(
    gateway: Gateway, engine: FakeEngine
) -> None:
    key = gateway.accounts.user_key
    body = json.dumps(
        {**chat_body(), "temperature": 0.25, "x_vendor": {"nested": [1, "two", None]}},
        separators=(", ", ": "),  # unusual spacing: the bytes must arrive as sent
    ).encode()
    headers = [
        *bearer(key).items(),
        ("x-api-key", key),
        ("Cookie", "session=abc; other=def"),
        ("Proxy-Authorization", "Basic eDp5"),
        ("Proxy-Connection", "keep-alive"),
        ("Connection", "keep-alive, Upgrade, X-Hop-Secret"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Upgrade", "websocket"),
        ("X-Hop-Secret", "hop"),
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("User-Agent", "functional-test/1.0"),
        ("OpenAI-Organization", "org-test"),
        ("X-Custom", "keep me"),
        ("api-key", key),
        ("X-Auth-Token", key),
        ("X-Original-URL", "/slots"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-Forwarded-Prefix", "/admin"),
        ("anthropic-version", "2023-06-01"),
        ("OpenAI-Beta", "assistants=v2"),
    ]
    r = await raw_request(gateway.port, "POST", CHAT, headers, body)
    assert r.status == 200, r.body
    assert len(engine.requests) == 1
    seen = engine.requests[0]
    assert seen.header_names().isdisjoint(NEVER_FORWARDED), seen.header_names()
    assert seen.header("connection") in (None, "keep-alive")
    assert all(key not in value for _, value in seen.headers)
    assert key.encode() not in seen.raw_body
    assert seen.header("user-agent") != "functional-test/1.0"
    # The engine-protocol headers arrive; the body is what the gateway checked, re-encoded,
    # with the output limit it reserved written in.
    assert seen.header("accept") == "application/json"
    assert seen.header("anthropic-version") == "2023-06-01"
    assert seen.header("openai-beta") == "assistants=v2"
    assert seen.header("content-type") == "application/json"
    limit = gateway.config.quotas.default_max_tokens
    sent = {**json.loads(body), "max_completion_tokens": limit, "max_tokens": limit}
    assert json.loads(seen.raw_body) == sent
    canonical = json.dumps(json.loads(seen.raw_body), separators=(",", ":"), ensure_ascii=False)
    assert seen.raw_body == canonical.encode()  # the gateway's encoding, not the client's
    # The client does not choose the Host either.
    assert seen.header("host") == f"127.0.0.1:{engine.port}"


async def test_stream_body_keeps_unknown_fields(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    sent = chat_body(
        stream=True,
        x_vendor={"nested": [1, "two", None]},
        stream_options={"continuous_usage_stats": False},
        max_tokens=2,
    )
    async with session.post(
        gateway.url(CHAT), headers=bearer(gateway.accounts.user_key), json=sent
    ) as r:
        assert r.status == 200
        await r.read()
    got = engine.requests[0].body
    assert got["stream_options"] == {"continuous_usage_stats": False, "include_usage": True}
    assert got.pop("max_completion_tokens") == 2  # the limit under both OpenAI names
    assert {k: v for k, v in got.items() if k != "stream_options"} == {
        k: v for k, v in sent.items() if k != "stream_options"
    }


@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES])
async def test_upstream_path_is_always_the_canonical_endpoint(
    gateway: Gateway, engine: FakeEngine, path: str
) -> None:
    body = json.dumps({**chat_body(), "prompt": "a", "input": "a", "max_tokens": 1}).encode()
    auth = list(bearer(gateway.accounts.user_key).items())
    target = path + "?upstream=http://127.0.0.1:1/&path=../../slots"
    r = await raw_request(gateway.port, "POST", target, auth, body)
    assert r.status == 200, r.body
    assert [(q.method, q.path, q.query_string) for q in engine.requests] == [("POST", path, "")]


async def test_upstream_api_key_is_what_the_engine_sees(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with running_engine(models=["tiny"], api_key="engine-own-key") as engine:
        upstream = {
            "name": "local",
            "url": engine.base_url,
            "models": ["tiny"],
            "api_key": "engine-own-key",
        }
        async with running_gateway(tmp_path, engine.base_url, upstreams=[upstream]) as gw:
            key = gw.accounts.user_key
            for headers in (bearer(key), {"x-api-key": key}):
                async with session.post(gw.url(CHAT), headers=headers, json=chat_body()) as r:
                    assert r.status == 200, await r.text()
            async with session.get(gw.url("/readyz")) as r:
                assert r.status == 200
        chats = [q for q in engine.requests if q.path == CHAT]
        assert len(chats) == 2
        for seen in chats:
            assert [v for k, v in seen.headers if k.lower() == "authorization"] == [
                "Bearer engine-own-key"
            ]
            assert seen.header("x-api-key") is None


async def test_engine_is_never_offered_compression(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    headers = {**bearer(gateway.accounts.user_key), "Accept-Encoding": "identity"}
    async with session.post(gateway.url(CHAT), headers=headers, json=chat_body()) as r:
        assert r.status == 200
    assert engine.requests[0].header("accept-encoding") in (None, "identity")
