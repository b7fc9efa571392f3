"""Ollama's native API behind the same keys and quotas (fake engine speaking NDJSON): streams
relayed line by line and charged from their last line, the limit written into
options.num_predict, Go's case-insensitive keys refused, /api/tags filtered per user."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import Gateway, bearer, running_gateway
from .wire import assert_error_shape

CHAT = "/api/chat"


def _lines(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


async def _post(
    session: aiohttp.ClientSession, gateway: Gateway, path: str, body: Any, key: str | None = None
) -> tuple[int, str, bytes]:
    headers = bearer(key or gateway.accounts.user_key)
    async with session.post(gateway.url(path), json=body, headers=headers) as r:
        return r.status, r.content_type, await r.read()


async def test_chat_streams_ndjson_line_by_line_and_is_charged_its_counts(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "a b c"}]}
    status, content_type, raw = await _post(session, gateway, CHAT, body)
    assert (status, content_type) == (200, "application/x-ndjson")
    lines = _lines(raw)
    assert [line["done"] for line in lines] == [False] * 8 + [True]
    assert "".join(line["message"]["content"] for line in lines) == "".join(
        f"tok{i} " for i in range(8)
    )
    assert (lines[-1]["prompt_eval_count"], lines[-1]["eval_count"]) == (3, 8)
    # The engine got the gateway's limit in the one place Ollama reads it.
    sent = engine.requests[-1].body
    assert sent["options"] == {"num_predict": 1024} and "max_tokens" not in sent
    (row,) = await gateway.usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.stream) == (3, 8, True)
    assert row.usage_source == "engine"


async def test_generate_without_streaming_and_the_clients_own_limit(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = {"model": "tiny", "prompt": "a b", "stream": False, "options": {"num_predict": 3}}
    status, content_type, raw = await _post(session, gateway, "/api/generate", body)
    assert (status, content_type) == (200, "application/json")
    assert json.loads(raw)["eval_count"] == 3
    assert engine.requests[-1].body["options"] == {"num_predict": 3}
    (row,) = await gateway.usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.stream) == (2, 3, False)


async def test_a_stream_cut_short_ends_with_an_error_line_and_is_charged(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "a b"}],
        "fake": {"fault": "cutoff", "after": 4},
    }
    status, _, raw = await _post(session, gateway, CHAT, body)
    assert status == 200
    lines = _lines(raw)
    assert lines[-1]["code"] == "upstream_cut_off" and "error" in lines[-1]
    (row,) = await gateway.usage(1)
    assert (row.completion_tokens, row.usage_source) == (4, "estimated")
    assert row.prompt_tokens > 0  # the prompt estimate: the engine had the prompt


async def test_the_quota_clamps_num_predict(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    roles = {
        "admin": {"models": ["*"]},
        "user": {"models": ["*"], "tokens_per_day": 300},
        "restricted": {"models": ["tiny"]},
    }
    async with running_gateway(tmp_path, engine.base_url, roles=roles) as gw:
        body = {"model": "tiny", "prompt": "a", "options": {"num_predict": 5000}, "stream": False}
        status, _, _ = await _post(session, gw, "/api/generate", body)
        assert status == 200
        limit = engine.requests[-1].body["options"]["num_predict"]
        assert 1 <= limit < 300


@pytest.mark.parametrize(
    "body",
    [
        {"model": "tiny", "options": {"num_predict": 5, "NUM_PREDICT": 9000}},
        {"model": "tiny", "options": {"Num_Predict": 9000}},
        {"model": "tiny", "Options": {"num_predict": 9000}},
        {"model": "tiny", "Model": "big"},
        {"model": "tiny", "options": "fast"},
    ],
)
async def test_what_go_would_read_another_way_is_refused(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    status, _, raw = await _post(session, gateway, CHAT, {"messages": [], **body})
    assert status == 400
    assert assert_error_shape(json.loads(raw))["code"] in ("ambiguous_key", "invalid_options")
    assert engine.requests == []


async def test_tags_list_only_the_callers_models_and_show_takes_name(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    for key, names in ((gateway.accounts.user_key, ["big", "tiny"]),
                       (gateway.accounts.restricted_key, ["tiny"])):  # fmt: skip
        async with session.get(gateway.url("/api/tags"), headers=bearer(key)) as r:
            assert r.status == 200
            assert [m["name"] for m in (await r.json())["models"]] == names
    rita = gateway.accounts.restricted_key
    status, _, raw = await _post(session, gateway, "/api/show", {"name": "big"}, rita)
    assert (status, json.loads(raw)["error"]["code"]) == (403, "model_not_allowed")
    status, _, raw = await _post(session, gateway, "/api/show", {"name": "tiny"}, rita)
    assert status == 200
    assert engine.requests[-1].body == {"model": "tiny"}  # one spelling reaches the engine
