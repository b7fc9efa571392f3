"""Codex CLI and Claude Code, headless, through the gateway to the real llama-server, each with
a user's key: the task completes and that user is charged what the agent was told it used.

The agents run as their users run them (coding_agents.py): `codex exec` with a custom
Responses provider and with the built-in OpenAI provider (which tries a WebSocket first and
must fall back to HTTP at once), `claude -p` with ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN or
both, and Claude Code reading the gateway's models into its picker.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .coding_agents import (
    CLAUDE_MAX_OUTPUT_TOKENS,
    claude_gateway_models,
    claude_result,
    codex_events,
    run_claude,
    run_codex,
)
from .gateway import Gateway
from .llama_server import LlamaServer

ALIAS = "claude-tiny"  # Claude Code's picker keeps only ids naming claude or anthropic


@pytest.fixture(scope="module")
def gateway(
    agents_llama: LlamaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    settings = {
        "upstreams": [{"name": "llama", "url": agents_llama.base_url, "models": ["tiny"]}],
        "model_aliases": {ALIAS: "tiny"},
        "log_level": "info",  # the access log shows what each agent asked for
    }
    gateway = Gateway(workdir=tmp_path_factory.mktemp("agents-gateway"), settings=settings)
    gateway.run("init")
    with gateway:
        yield gateway


def failure(stdout: str, stderr: str) -> str:
    return f"stdout:\n{stdout[-2000:]}\nstderr:\n{stderr[-3000:]}"


def access_lines(gateway: Gateway, user: str) -> list[dict[str, Any]]:
    lines = []
    for text in gateway.log_path.read_text(errors="replace").splitlines():
        start = text.find('{"ts"')
        if start >= 0:
            line = json.loads(text[start:])
            if line.get("user") == user:
                lines.append(line)
    return lines


def charged(gateway: Gateway, user: str, endpoint: str, requests: int) -> tuple[int, int]:
    """What ``user`` was charged, once ``requests`` streamed requests to ``endpoint`` are in."""
    rows = gateway.usage_rows(user, requests)
    assert {(r["endpoint"], r["status"], r["stream"], r["usage_source"]) for r in rows} == {
        (endpoint, 200, 1, "engine")
    }
    assert all(r["completion_tokens"] <= CLAUDE_MAX_OUTPUT_TOKENS for r in rows)  # 256 either way
    return sum(r["prompt_tokens"] for r in rows), sum(r["completion_tokens"] for r in rows)


@pytest.mark.parametrize("provider", ["custom", "openai"])
def test_codex_exec_through_the_gateway(gateway: Gateway, tmp_path: Path, provider: str) -> None:
    user = f"codex-{provider}"
    key = gateway.add_user(user)
    proc = run_codex(
        gateway.base_url,
        key,
        tmp=tmp_path,
        model="tiny",
        provider="custom" if provider == "custom" else "openai",
    )
    assert proc.returncode == 0, failure(proc.stdout, proc.stderr)
    events = codex_events(proc.stdout)
    assert events[-1]["type"] == "turn.completed", [e["type"] for e in events]
    told = events[-1]["usage"]
    spent = charged(gateway, user, "/v1/responses", 1)
    assert spent == (told["input_tokens"], told["output_tokens"])
    asked = [(line["method"], line["path"], line["status"]) for line in access_lines(gateway, user)]
    if provider == "openai":
        # The built-in provider tries a WebSocket first: one 426, then HTTP at once.
        assert asked[0] == ("GET", "/v1/responses", 426), asked
        upgrade, post = access_lines(gateway, user)[:2]
        post_started = post["ts"] - post["duration_ms"] / 1000  # lines are written at the end
        assert post["method"] == "POST" and post_started - upgrade["ts"] < 2.0  # a 404: ~6.5 s
        asked = asked[1:]
    assert asked and set(asked) == {("POST", "/v1/responses", 200)}


@pytest.mark.parametrize("auth", ["api_key", "auth_token", "both"])
def test_claude_print_through_the_gateway(gateway: Gateway, tmp_path: Path, auth: str) -> None:
    user = f"claude-{auth.replace('_', '-')}"
    key = gateway.add_user(user)
    proc = run_claude(
        gateway.base_url,
        key,
        tmp=tmp_path,
        model=ALIAS if auth == "both" else "tiny",  # an alias works like the engine's id
        auth="api_key" if auth == "api_key" else "auth_token" if auth == "auth_token" else "both",
    )
    assert proc.returncode == 0, failure(proc.stdout, proc.stderr)
    result = claude_result(proc.stdout)
    assert result["is_error"] is False, result
    usage = result["usage"]
    spent = charged(gateway, user, "/v1/messages", result["num_turns"])
    prompt = (
        usage["input_tokens"]
        + usage.get("cache_read_input_tokens", 0)
        + usage.get("cache_creation_input_tokens", 0)
    )
    assert spent == (prompt, usage["output_tokens"])


def test_claude_code_lists_the_gateways_models(gateway: Gateway, tmp_path: Path) -> None:
    key = gateway.add_user("picker")
    proc = run_claude(gateway.base_url, key, tmp=tmp_path, model="tiny", model_discovery=True)
    assert proc.returncode == 0, failure(proc.stdout, proc.stderr)
    # Only the alias naming claude reaches the picker, under its display_name.
    assert [(m["id"], m["display_name"]) for m in claude_gateway_models(tmp_path)] == [
        (ALIAS, ALIAS)
    ]
    asked = [(line["method"], line["path"]) for line in access_lines(gateway, "picker")]
    assert asked[0] == ("GET", "/v1/models")
