"""Every error the gateway makes itself has the one shape:
{"error": {"message": str, "type": str, "code": str}}, with an X-Request-Id header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import (
    CHAT,
    EMBEDDINGS,
    MODELS,
    Gateway,
    bearer,
    chat_body,
    free_port,
    running_gateway,
)
from .wire import assert_error_shape

BIG = chat_body(messages=[{"role": "user", "content": "w " * 8000}])  # > 0.01 MB


@dataclass(frozen=True)
class Case:
    status: int
    method: str
    path: str
    who: str  # which credential: none, user, restricted, bad, basic, mismatch
    body: dict[str, Any] | bytes | None = None
    code: str | None = None


CASES = {
    "401-missing-get": Case(401, "GET", MODELS, "none", code="missing_api_key"),
    "401-missing-post": Case(401, "POST", CHAT, "none", chat_body(), "missing_api_key"),
    "401-invalid": Case(401, "POST", CHAT, "bad", chat_body(), "invalid_api_key"),
    "401-malformed": Case(401, "GET", MODELS, "basic"),
    "401-two-keys": Case(401, "POST", CHAT, "mismatch", chat_body()),
    "401-unknown-path": Case(401, "GET", "/v1/nope", "none"),
    "403-model": Case(403, "POST", CHAT, "restricted", chat_body("big"), "model_not_allowed"),
    "404-path": Case(404, "GET", "/v1/nope", "user", code="unknown_path"),
    "404-path-post": Case(404, "POST", "/infill", "user", chat_body(), "unknown_path"),
    "404-model": Case(404, "POST", CHAT, "user", chat_body("nope"), "model_not_found"),
    "405-get-chat": Case(405, "GET", CHAT, "user"),
    "405-post-models": Case(405, "POST", MODELS, "user", chat_body()),
    "400-bad-json": Case(400, "POST", CHAT, "user", b"{not json", "invalid_json"),
    "400-empty": Case(400, "POST", CHAT, "user", b"", "invalid_json"),
    "400-not-object": Case(400, "POST", CHAT, "user", b"[1, 2]", "invalid_json"),
    "400-no-model": Case(400, "POST", CHAT, "user", {"messages": []}, "missing_model"),
    "400-stream-type": Case(400, "POST", CHAT, "user", chat_body(stream="yes")),
    "400-stream-embeddings": Case(
        400, "POST", EMBEDDINGS, "user", {"model": "tiny", "input": "a", "stream": True}
    ),
    "413": Case(413, "POST", CHAT, "user", BIG, "request_too_large"),
    "502-down": Case(502, "POST", CHAT, "user", chat_body("ghost"), "upstream_unavailable"),
    "502-500": Case(502, "POST", CHAT, "user", chat_body(fake={"fault": "500"})),
    "502-500-stream": Case(
        502, "POST", CHAT, "user", chat_body(stream=True, fake={"fault": "500"})
    ),
    "502-redirect": Case(
        502, "POST", CHAT, "user", chat_body(fake={"fault": "redirect"}), "upstream_redirect"
    ),
    "504": Case(
        504, "POST", CHAT, "user", chat_body(fake={"fault": "stall_headers"}), "upstream_timeout"
    ),
}


@pytest.fixture
async def error_gateway(tmp_path: Path, engine: FakeEngine) -> AsyncIterator[Gateway]:
    upstreams = [
        {"name": "local", "url": engine.base_url, "models": ["tiny", "big"]},
        {"name": "dead", "url": f"http://127.0.0.1:{free_port()}", "models": ["ghost"]},
    ]
    async with running_gateway(
        tmp_path,
        engine.base_url,
        upstreams=upstreams,
        max_request_mb=0.01,
        timeouts={"connect": 2, "first_byte": 1, "idle": 5},
    ) as gw:
        yield gw


def _headers(gw: Gateway, who: str) -> dict[str, str]:
    acc = gw.accounts
    return {
        "none": {},
        "user": bearer(acc.user_key),
        "restricted": bearer(acc.restricted_key),
        "bad": {"Authorization": "Bearer sk-" + "C" * 43},
        "basic": {"Authorization": "Basic eDp5"},
        "mismatch": {**bearer(acc.user_key), "x-api-key": acc.admin_key},
    }[who]


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
async def test_every_error_has_the_one_shape(
    error_gateway: Gateway, session: aiohttp.ClientSession, case: Case
) -> None:
    kwargs: dict[str, Any] = {}
    if isinstance(case.body, bytes):
        kwargs["data"] = case.body
    elif case.body is not None:
        kwargs["json"] = case.body
    async with session.request(
        case.method,
        error_gateway.url(case.path),
        headers=_headers(error_gateway, case.who),
        **kwargs,
    ) as r:
        assert r.status == case.status
        assert r.content_type == "application/json"
        assert r.headers.get("X-Request-Id")
        err = assert_error_shape(await r.json())
    if case.code is not None:
        assert err["code"] == case.code
    # No secret or internal detail in the message.
    acc = error_gateway.accounts
    assert all(k not in err["message"] for k in (acc.user_key, acc.admin_key, "sk-CCCCCC"))
    assert "Traceback" not in err["message"]
