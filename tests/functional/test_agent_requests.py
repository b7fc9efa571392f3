"""The requests Claude Code and Codex CLI send, replayed byte for byte in their shape (as
recorded from the real clients, see tests/e2e/coding_agents.py): accepted, forwarded with only
what the engine should see, charged; and what Claude Code reads from /v1/models."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from fakes.engine import FakeEngine

from .helpers import Gateway, bearer
from .wire import parse_sse

CLAUDE_HEADERS = {
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
    "anthropic-dangerous-direct-browser-access": "true",
    "x-app": "cli",
    "User-Agent": "claude-cli/2.1.332 (external, sdk-cli)",
    "X-Claude-Code-Session-Id": "0b6f9d9e-0000-4000-8000-000000000000",
    "X-Stainless-Lang": "js",
    "X-Stainless-Retry-Count": "0",
}
CODEX_HEADERS = {
    "originator": "codex_exec",
    "session-id": "0b6f9d9e-0000-4000-8000-000000000001",
    "x-codex-turn-metadata": '{"request_kind":"turn"}',
    "accept": "text/event-stream",
}
FORWARDED = {"anthropic-version", "anthropic-beta", "accept"}


def _claude_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "tiny",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "say hello"}]},
            # Claude Code sends a system-role message inside messages: never refused here.
            {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
        ],
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"}],
        "metadata": {"user_id": '{"device_id":"d"}'},
        "max_tokens": 32000,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "stream": True,
        **extra,
    }


def _only_allowed_headers(seen_names: set[str]) -> None:
    ours = {"host", "accept-encoding", "content-type", "content-length", "x-request-id",
            "user-agent", "connection"}  # fmt: skip
    assert seen_names - ours <= FORWARDED, seen_names - ours


async def test_claude_codes_message_with_both_credentials_and_beta_query(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    key = gateway.accounts.user_key
    headers = {**CLAUDE_HEADERS, **bearer(key), "x-api-key": key}  # both set: the same key
    url = gateway.url("/v1/messages?beta=true")
    async with session.post(url, json=_claude_body(), headers=headers) as r:
        assert r.status == 200, await r.text()
        events = parse_sse(await r.read())
    assert events[-1].event == "message_stop"
    (seen,) = engine.requests
    assert (seen.path, seen.query_string) == ("/v1/messages", "")  # ?beta=true stays here
    assert seen.header("anthropic-version") == "2023-06-01"
    assert seen.header("anthropic-beta") == CLAUDE_HEADERS["anthropic-beta"]
    _only_allowed_headers(seen.header_names())
    assert seen.body["messages"][1]["role"] == "system"
    (row,) = await gateway.usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.stream) == (6, 8, True)


async def test_count_tokens_answers_and_is_not_charged(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    headers = {
        **CLAUDE_HEADERS,
        "anthropic-beta": "token-counting-2024-11-01",
        "x-api-key": gateway.accounts.user_key,
    }
    body = {"model": "tiny", "messages": [{"role": "user", "content": "foo bar"}], "tools": []}
    url = gateway.url("/v1/messages/count_tokens?beta=true")
    async with session.post(url, json=body, headers=headers) as r:
        assert (r.status, await r.json()) == (200, {"input_tokens": 2})
    assert engine.requests[0].query_string == ""
    (row,) = await gateway.usage(1)
    assert (row.prompt_tokens, row.completion_tokens, row.endpoint) == (
        0,
        0,
        "/v1/messages/count_tokens",
    )


async def test_codexs_turn_is_forwarded_and_charged(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    body = {
        "model": "tiny",
        "stream": True,
        "store": False,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "you are codex"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "say hello"}],
            },
        ],
        "tools": [{"type": "function", "name": "exec_command", "parameters": {}}],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"},
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0b6f9d9e",
    }
    headers = {**CODEX_HEADERS, **bearer(gateway.accounts.user_key)}
    async with session.post(gateway.url("/v1/responses"), json=body, headers=headers) as r:
        assert r.status == 200
        events = parse_sse(await r.read())
    assert events[0].event == "response.created" and events[-1].event == "response.completed"
    (seen,) = engine.requests
    _only_allowed_headers(seen.header_names())
    # No limit in Codex's body: the gateway's reservation is what the engine runs.
    assert seen.body["max_output_tokens"] == 1024
    (row,) = await gateway.usage(1)
    assert (row.prompt_tokens, row.completion_tokens) == (5, 8)


async def test_models_carry_display_name_and_ignore_the_limit_query(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    headers = {"anthropic-version": "2023-06-01", "x-api-key": gateway.accounts.user_key}
    lists = []
    for query in ("", "?limit=1000"):
        async with session.get(gateway.url("/v1/models" + query), headers=headers) as r:
            assert r.status == 200
            lists.append(await r.json())
    assert lists[0] == lists[1]
    assert [(m["id"], m["display_name"]) for m in lists[0]["data"]] == [
        ("big", "big"),
        ("tiny", "tiny"),
    ]
    assert json.dumps(lists[0]).count('"object": "model"') == 2
