"""The quota bound, proven against the real llama-server: the prompt estimate is at least what
the engine counts (chat template included), and N concurrent requests against room for K
tokens end within K — whatever limit fields they carry (llama-server ranks n_predict first)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from itertools import count
from typing import Any

import aiohttp
import pytest

from authproxy.proxy.request_body import estimate_prompt_tokens

from .gateway import Gateway
from .llama_server import LlamaServer

CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/messages",
)
_names = count(1)


@pytest.fixture(scope="module")
def gateway(
    llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    settings = {
        "upstreams": [{"name": "llama", "url": llama_server.base_url, "models": ["tiny"]}],
        "roles": {"admin": {"models": ["*"]}, "user": {"models": ["*"]}},
        "quotas": {"default_max_tokens": 16},
    }
    gateway = Gateway(workdir=tmp_path_factory.mktemp("quota-bound"), settings=settings)
    gateway.run("init")
    with gateway:
        yield gateway


def _user(gateway: Gateway, tokens_per_day: int | None = None) -> tuple[str, str]:
    name = f"u{next(_names)}"
    gateway.run("users", "add", name)
    if tokens_per_day is not None:
        gateway.run("users", "quota", name, "--tokens-per-day", str(tokens_per_day))
    # The key last: once the gateway knows the key it has read the quota too (one reload).
    return name, gateway.run("keys", "create", name).strip()


def _rows(gateway: Gateway, user: str, want: int, within: float = 10.0) -> list[dict[str, Any]]:
    return gateway.usage_rows(user, want, within)


async def _post(
    session: aiohttp.ClientSession, gateway: Gateway, key: str, path: str, body: dict[str, Any]
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}"}
    async with session.post(gateway.base_url + path, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


def _chat(*contents: str, **extra: Any) -> dict[str, Any]:
    roles = ("system", "user", "assistant")
    messages = [{"role": roles[min(i, 1) if i < 2 else 1 + i % 2], "content": c} for i, c in
                enumerate(contents)]  # fmt: skip
    return {"model": "tiny", "messages": messages, **extra}


PROMPTS: list[tuple[str, dict[str, Any]]] = [
    (CHAT, _chat("hi")),
    (CHAT, _chat("be brief", "naïve é 中文 𝄞 — \"quoted\"\n\\ and tabs\t")),
    (CHAT, _chat(*(["x"] * 40))),
    (CHAT, _chat("<|im_start|>assistant\n<|im_end|>" * 20)),
    (CHAT, {"model": "tiny", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "parts"}, {"type": "text", "text": "of a message"}]}]}),
    (CHAT, _chat("long " * 1000)),
    (CHAT, _chat(" a  b   " * 100)),  # SentencePiece writes each space as ▁: 3 bytes
    (COMPLETIONS, {"model": "tiny", "prompt": "Once upon a time"}),
    (COMPLETIONS, {"model": "tiny", "prompt": ""}),
    (EMBEDDINGS, {"model": "tiny", "input": ["a", "bb", "ccc ccc"]}),
    (MESSAGES, {"model": "tiny", "system": "sys", "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "ho"},
        {"role": "user", "content": "again"}]}),
]  # fmt: skip


async def test_the_prompt_estimate_bounds_what_llama_server_counts(gateway: Gateway) -> None:
    user, key = _user(gateway)
    async with aiohttp.ClientSession() as session:
        for path, body in PROMPTS:
            extra = {} if path == EMBEDDINGS else {"max_tokens": 1}
            status, answer = await _post(session, gateway, key, path, {**body, **extra})
            assert status == 200, answer
    rows = _rows(gateway, user, len(PROMPTS))
    assert [r["usage_source"] for r in rows] == ["engine"] * len(PROMPTS)
    for (path, body), row in zip(PROMPTS, rows, strict=True):
        assert 0 < row["prompt_tokens"] <= estimate_prompt_tokens(body), (path, body)


@pytest.mark.parametrize(
    ("quota", "concurrent", "path", "body"),
    [
        # The case: the client's n_predict above its max_tokens, 20 at once.
        (5000, 20, CHAT, _chat("hi", max_tokens=5, n_predict=4000)),
        (1500, 12, COMPLETIONS,
         {"model": "tiny", "prompt": "go", "max_tokens": 5, "n_predict": 900}),
        # No limit at all: the engine would run to the end of its context.
        (1200, 8, COMPLETIONS, {"model": "tiny", "prompt": "go"}),
        # A quota the chat template alone would overrun under a 4-characters-a-token estimate.
        (300, 6, CHAT, _chat("hi", max_tokens=20)),
    ],
    ids=["n_predict-chat", "n_predict-completions", "no-limit", "template-overhead"],
)  # fmt: skip
async def test_concurrent_requests_against_room_for_k_end_within_k(
    gateway: Gateway, quota: int, concurrent: int, path: str, body: dict[str, Any]
) -> None:
    user, key = _user(gateway, tokens_per_day=quota)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        results = await asyncio.gather(
            *(_post(session, gateway, key, path, body) for _ in range(concurrent))
        )
    served = [answer for status, answer in results if status == 200]
    refused = [answer for status, answer in results if status == 429]
    assert served and len(served) + len(refused) == concurrent, results
    assert all(a["error"]["code"] == "insufficient_quota" for a in refused)
    rows = _rows(gateway, user, len(served))
    assert len(rows) == len(served)
    used = sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
    assert used <= quota, rows
    assert all(r["usage_source"] == "engine" for r in rows)
