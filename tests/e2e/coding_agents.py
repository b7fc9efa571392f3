"""Run the coding agents Codex CLI and Claude Code headless, the way their users do.

The npm packages ``@openai/codex`` and ``@anthropic-ai/claude-code`` (pinned in
tests/agents/package-lock.json) are installed by ``tests/setup/install_coding_agents.sh``
(``$CODING_AGENTS_DIR`` when the test command already ran it).

``run_codex`` runs ``codex exec`` and ``run_claude`` runs ``claude -p``, each pointed at one base
URL (the server root, without ``/v1``: a gateway's or llama-server's) with one key, in a
throwaway home under ``tmp`` (``tmp/home``, ``tmp/codex-home``, ``tmp/work``), with a minimal
environment and everything that would phone home switched off: Claude Code's telemetry, error
reporting, auto-updater and other non-essential traffic (its connection warm-up
``HEAD /api/hello`` included); Codex's analytics and its plugin sync (a ``git ls-remote`` of
github.com/openai/plugins and calls to api.github.com and chatgpt.com). Checked with strace:
so configured, each agent connects to the base URL only.

The tiny test model never ends a turn by itself; ``llama_server_for_agents`` starts llama-server
so that it does (see there), with a context large enough for the agents' system prompts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from functools import cache
from pathlib import Path
from typing import Any, Literal

from .llama_server import REPO_ROOT, LlamaServer, _die_with_parent

AGENTS_DIR = REPO_ROOT / "tests" / "agents"
INSTALL_SCRIPT = REPO_ROOT / "tests" / "setup" / "install_coding_agents.sh"
DEFAULT_TIMEOUT = 240.0  # seconds; a run takes 5-30 s on two shared cores
PROMPT = "Say hello."
CODEX_KEY_ENV = "AUTHPROXY_API_KEY"  # the env_key of the custom Codex provider

# Claude Code: off with these, it contacts nothing but ANTHROPIC_BASE_URL.
CLAUDE_QUIET_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
}
# Claude Code reports a turn that hits max_tokens as an error (exit 1); the tiny model under
# llama_server_for_agents ends well before this many tokens.
CLAUDE_MAX_OUTPUT_TOKENS = 256

# llama-server for the agents: their system prompts and tools are 20-27k tokens of the tiny
# model's byte-level vocabulary, so one slot of 64k tokens (the model's own metadata says 8k and
# llama-server would cap the slot there, hence the override). The model never samples
# end-of-sequence (token 2), so a turn would run until max_tokens: Claude Code takes that as an
# error and Codex sends no limit at all. A bias of +44 on it ends a turn after about 5 tokens
# (1 to ~25); +40 never ends one and +45 ends most at once. --n-predict is the backstop.
AGENT_CTX = 65536
AGENT_LLAMA_ARGS = (
    "--override-kv", f"llama.context_length=int:{AGENT_CTX}",
    "--logit-bias", "2+44",
    "--n-predict", "256",
)  # fmt: skip


class CodingAgentError(RuntimeError):
    """An agent could not be installed, or a run did not finish in time."""


@cache
def agents_dir() -> Path:
    """tests/agents with both packages installed (``$CODING_AGENTS_DIR`` or the install script)."""
    env = os.environ.get("CODING_AGENTS_DIR")
    if env and (Path(env) / "node_modules" / ".bin" / "claude").exists():
        return Path(env)
    # The script prints progress on stderr (passed through) and the directory on its last line.
    proc = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise CodingAgentError(f"{INSTALL_SCRIPT} failed with exit code {proc.returncode}")
    return Path(lines[-1])


def agent_bin(name: Literal["codex", "claude"]) -> Path:
    """The command a user runs: ``node_modules/.bin/codex`` or ``node_modules/.bin/claude``."""
    return agents_dir() / "node_modules" / ".bin" / name


def llama_server_for_agents(model: Path, *, log_path: Path | None = None) -> LlamaServer:
    """A LlamaServer (not started) on which both agents complete a turn with the tiny model."""
    return LlamaServer(
        model,
        ctx_per_slot=AGENT_CTX,
        parallel=1,
        embeddings=False,
        extra_args=AGENT_LLAMA_ARGS,
        log_path=log_path,
    )


def codex_config(
    base_url: str,
    *,
    model: str,
    provider: Literal["custom", "openai"] = "custom",
    websockets: bool = False,
) -> str:
    """config.toml for ``codex exec`` against ``base_url`` (the server root, without /v1).

    ``custom``: a provider of our own (``wire_api = "responses"``, key from $AUTHPROXY_API_KEY);
    it tries a WebSocket on /v1/responses first only with ``websockets``. ``openai``: the
    built-in provider with ``openai_base_url`` (key from $CODEX_API_KEY), which always does.
    """
    lines = [
        f"model = {json.dumps(model)}",
        "check_for_update_on_startup = false",
    ]
    if provider == "openai":
        lines.append(f"openai_base_url = {json.dumps(base_url + '/v1')}")
    else:
        lines.append('model_provider = "authproxy"')
    lines += ["", "[analytics]", "enabled = false", "", "[features]", "plugins = false"]
    if provider == "custom":
        lines += [
            "",
            "[model_providers.authproxy]",
            'name = "authproxy"',
            f"base_url = {json.dumps(base_url + '/v1')}",
            f"env_key = {json.dumps(CODEX_KEY_ENV)}",
            'wire_api = "responses"',
            f"supports_websockets = {'true' if websockets else 'false'}",
        ]
    return "\n".join(lines) + "\n"


def run_codex(
    base_url: str,
    key: str,
    *,
    tmp: Path,
    model: str,
    prompt: str = PROMPT,
    provider: Literal["custom", "openai"] = "custom",
    websockets: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """``codex exec --json`` (read-only sandbox, no approvals); stdout is JSON Lines events."""
    home, codex_home, work = _dirs(tmp, "home", "codex-home", "work")
    config = codex_config(base_url, model=model, provider=provider, websockets=websockets)
    (codex_home / "config.toml").write_text(config)
    env = _base_env(home) | {"CODEX_HOME": str(codex_home)}
    env[CODEX_KEY_ENV if provider == "custom" else "CODEX_API_KEY"] = key
    argv = [
        str(agent_bin("codex")), "exec", "--skip-git-repo-check", "--ephemeral", "--json",
        "--sandbox", "read-only", "--cd", str(work), prompt,
    ]  # fmt: skip
    return _run(argv, env=env, cwd=work, timeout=timeout)


def run_claude(
    base_url: str,
    key: str,
    *,
    tmp: Path,
    model: str,
    prompt: str = PROMPT,
    auth: Literal["api_key", "auth_token", "both"] = "api_key",
    model_discovery: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """``claude -p --output-format json``; stdout is one JSON result object.

    ``api_key`` sets ANTHROPIC_API_KEY (sent as ``x-api-key``), ``auth_token`` sets
    ANTHROPIC_AUTH_TOKEN (sent as ``Authorization: Bearer``), ``both`` sets both to ``key``
    (both headers on every request). ``model_discovery`` makes it read
    ``GET /v1/models?limit=1000`` first (see ``claude_gateway_models``).
    """
    home, work = _dirs(tmp, "home", "work")
    env = _base_env(home) | CLAUDE_QUIET_ENV
    env["ANTHROPIC_BASE_URL"] = base_url
    if auth in ("api_key", "both"):
        env["ANTHROPIC_API_KEY"] = key
    if auth in ("auth_token", "both"):
        env["ANTHROPIC_AUTH_TOKEN"] = key
    env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(CLAUDE_MAX_OUTPUT_TOKENS)
    if model_discovery:
        env["CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"] = "1"
    argv = [str(agent_bin("claude")), "-p", prompt, "--model", model, "--output-format", "json"]
    return _run(argv, env=env, cwd=work, timeout=timeout)


def codex_events(stdout: str) -> list[dict[str, Any]]:
    """The JSON events of ``codex exec --json`` (thread.started, turn.completed with usage...)."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def claude_result(stdout: str) -> dict[str, Any]:
    """The result object of ``claude -p --output-format json`` (is_error, result, usage...)."""
    result: dict[str, Any] = json.loads(stdout)
    return result


def claude_gateway_models(tmp: Path) -> list[dict[str, Any]]:
    """The models Claude Code kept from the gateway's /v1/models (its model picker's extra rows).

    Only ids matching /claude|anthropic/i are kept, with ``display_name`` and ``description``.
    """
    path = tmp / "home" / ".claude" / "cache" / "gateway-models.json"
    if not path.exists():
        return []
    models: list[dict[str, Any]] = json.loads(path.read_text())["models"]
    return models


def _dirs(tmp: Path, *names: str) -> list[Path]:
    paths = [tmp / name for name in names]
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
    return paths


def _base_env(home: Path) -> dict[str, str]:
    """A minimal environment: nothing of the caller's keys, proxies or agent settings leaks in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }


def _run(
    argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run to completion; on timeout kill the whole process group (codex is node + a binary)."""
    # The parent-death signal fires when the forking *thread* exits: arm it from the main one.
    in_main = threading.current_thread() is threading.main_thread() and sys.platform == "linux"
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_die_with_parent if in_main else None,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        tail = "\n".join(stderr.splitlines()[-20:])
        raise CodingAgentError(f"{argv[0]} did not finish in {timeout:.0f}s:\n{tail}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what the agent left running in its group
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
