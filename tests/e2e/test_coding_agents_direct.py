"""The coding agents, run headless against the real llama-server directly (no gateway).

These prove the harness in coding_agents.py: installed agents, configuration, a llama-server on
which the tiny model ends its turns, and parsing of what each agent prints. The same runs
through the gateway are the gateway's tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .coding_agents import (
    CLAUDE_MAX_OUTPUT_TOKENS,
    agent_bin,
    claude_result,
    codex_events,
    run_claude,
    run_codex,
)
from .llama_server import MODEL_ALIAS, LlamaServer  # agents_llama: see conftest.py
from .tiny_model import ALLOWED_BYTES

# An agent's system prompt and tools alone are this many tokens of the byte-level vocabulary.
MIN_PROMPT_TOKENS = 10_000


def failure(proc_stdout: str, proc_stderr: str) -> str:
    return f"stdout:\n{proc_stdout[-2000:]}\nstderr:\n{proc_stderr[-3000:]}"


def test_agents_installed() -> None:
    for name in ("codex", "claude"):
        assert agent_bin(name).exists(), f"{name} is not installed"


def test_codex_exec_completes(agents_llama: LlamaServer, tmp_path: Path) -> None:
    proc = run_codex(agents_llama.base_url, "sk-not-checked", tmp=tmp_path, model=MODEL_ALIAS)
    assert proc.returncode == 0, failure(proc.stdout, proc.stderr)
    events = codex_events(proc.stdout)
    kinds = [event["type"] for event in events]
    assert kinds[0] == "thread.started"
    assert kinds[-1] == "turn.completed", kinds
    usage = events[-1]["usage"]
    assert usage["input_tokens"] > MIN_PROMPT_TOKENS
    assert usage["output_tokens"] >= 1  # the model's answer (maybe just end-of-sequence) arrived


@pytest.mark.parametrize("auth", ["api_key", "auth_token"])
def test_claude_print_completes(agents_llama: LlamaServer, tmp_path: Path, auth: str) -> None:
    assert auth in ("api_key", "auth_token")
    proc = run_claude(
        agents_llama.base_url,
        "sk-not-checked",
        tmp=tmp_path,
        model=MODEL_ALIAS,
        auth="api_key" if auth == "api_key" else "auth_token",
    )
    assert proc.returncode == 0, failure(proc.stdout, proc.stderr)
    result = claude_result(proc.stdout)
    assert result["is_error"] is False, result
    assert result["stop_reason"] == "end_turn"
    # num_turns is 2 when the model's first answer was empty: Claude Code then asks once more.
    assert result["num_turns"] in (1, 2)
    assert set(result["result"].encode()) <= ALLOWED_BYTES
    usage = result["usage"]
    prompt = usage["input_tokens"] + usage["cache_read_input_tokens"]
    assert prompt > MIN_PROMPT_TOKENS
    assert 1 <= usage["output_tokens"] < CLAUDE_MAX_OUTPUT_TOKENS
