"""The gateway in front of a real llama-server, driven by the official openai SDK."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from .gateway import Gateway
from .llama_server import LlamaServer

PROMPT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say something."}]


@dataclass
class Deployment:
    gateway: Gateway
    engine: LlamaServer
    admin_key: str
    alice_key: str
    outsider_key: str
    limited_keys: dict[str, str]

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.base_url + "/v1", api_key=key, max_retries=0)

    def usage_rows(self) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.gateway.workdir / "data" / "authproxy.db")
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute("SELECT * FROM usage ORDER BY id")]
        finally:
            db.close()

    def wait_rows(self, count: int, within: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + within
        while True:
            rows = self.usage_rows()
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


@pytest.fixture(scope="module")
def deployment(
    llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("gateway")
    settings = {
        "upstreams": [{"name": "llama", "url": llama_server.base_url, "discover": True}],
        "roles": {
            "admin": {"models": ["*"]},
            "user": {"models": ["*"]},
            "outsider": {"models": ["other-*"]},
            "one-at-a-time": {"models": ["*"], "max_concurrent": 1},
            "slow-hand": {"models": ["*"], "requests_per_minute": 2},
        },
    }
    gateway = Gateway(workdir=workdir, settings=settings)
    admin_key = gateway.run("init").strip()
    gateway.run("users", "add", "alice")
    gateway.run("users", "add", "olly", "--role", "outsider")
    alice_key = gateway.run("keys", "create", "alice", "--label", "e2e").strip()
    outsider_key = gateway.run("keys", "create", "olly").strip()
    limited = {}
    for name, role in (("solo", "one-at-a-time"), ("sam", "slow-hand")):
        gateway.run("users", "add", name, "--role", role)
        limited[name] = gateway.run("keys", "create", name).strip()
    with gateway:
        yield Deployment(gateway, llama_server, admin_key, alice_key, outsider_key, limited)


def _rows_since(deployment: Deployment, before: int, count: int) -> list[dict[str, Any]]:
    rows = deployment.wait_rows(before + count)
    return rows[before:]


def test_models_lists_the_discovered_engine_model(deployment: Deployment) -> None:
    models = deployment.client(deployment.alice_key).models.list()
    assert [m.id for m in models.data] == ["tiny"]
    assert deployment.client(deployment.outsider_key).models.list().data == []


def test_chat_completion_is_accounted_with_the_engines_counts(deployment: Deployment) -> None:
    before = len(deployment.usage_rows())
    reply = deployment.client(deployment.alice_key).chat.completions.create(
        model="tiny",
        messages=PROMPT,
        max_tokens=8,
        temperature=0,
    )
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    (row,) = _rows_since(deployment, before, 1)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert row["usage_source"] == "engine" and row["status"] == 200
    assert row["model"] == "tiny" and row["upstream"] == "llama" and row["stream"] == 0


def test_stream_hides_the_usage_chunk_but_accounts_it(deployment: Deployment) -> None:
    # The engine's own count for the same greedy request, asked directly.
    direct = openai.OpenAI(base_url=deployment.engine.base_url + "/v1", api_key="unused")
    expected = direct.chat.completions.create(
        model="tiny", messages=PROMPT, max_tokens=8, temperature=0
    ).usage
    assert expected is not None
    before = len(deployment.usage_rows())
    stream = deployment.client(deployment.alice_key).chat.completions.create(
        model="tiny", messages=PROMPT, max_tokens=8, temperature=0, stream=True
    )
    chunks = list(stream)
    assert chunks and all(c.usage is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    (row,) = _rows_since(deployment, before, 1)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        expected.prompt_tokens,
        expected.completion_tokens,
    )
    assert row["stream"] == 1 and row["usage_source"] == "engine"


def test_stream_with_include_usage_shows_it(deployment: Deployment) -> None:
    chunks = list(
        deployment.client(deployment.alice_key).chat.completions.create(
            model="tiny",
            messages=PROMPT,
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0


def test_text_completion(deployment: Deployment) -> None:
    reply = deployment.client(deployment.alice_key).completions.create(
        model="tiny", prompt="Once upon a time", max_tokens=6
    )
    assert reply.choices and reply.usage is not None and reply.usage.prompt_tokens > 0


def test_bad_key_is_refused(deployment: Deployment) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        deployment.client("sk-" + "x" * 43).models.list()
    assert info.value.status_code == 401
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_api_key"


def test_disallowed_model_is_refused(deployment: Deployment) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        deployment.client(deployment.outsider_key).chat.completions.create(
            model="tiny",
            messages=PROMPT,
            max_tokens=2,
        )
    assert info.value.status_code == 403


def test_unknown_model_is_not_found(deployment: Deployment) -> None:
    with pytest.raises(openai.NotFoundError):
        deployment.client(deployment.alice_key).chat.completions.create(
            model="gpt-17",
            messages=PROMPT,
            max_tokens=2,
        )


def test_key_revoked_by_the_cli_is_refused_within_a_second(deployment: Deployment) -> None:
    gateway = deployment.gateway
    key = gateway.run("keys", "create", "alice", "--label", "to-revoke").strip()
    client = deployment.client(key)
    assert client.models.list().data
    key_id = max(
        int(line.split()[0])
        for line in gateway.run("keys", "list", "alice").splitlines()[1:]
        if "to-revoke" in line
    )
    gateway.run("keys", "revoke", str(key_id))
    revoked_at = time.monotonic()
    while True:
        try:
            client.models.list()
        except openai.AuthenticationError:
            break
        assert time.monotonic() - revoked_at < 1.0, "revoked key still accepted after 1 s"
        time.sleep(0.02)


async def _busy_slots(session: aiohttp.ClientSession, engine: LlamaServer) -> int:
    async with session.get(engine.base_url + "/slots") as resp:
        slots = await resp.json()
    return sum(1 for s in slots if s.get("is_processing"))


async def test_client_disconnect_frees_the_engine_slot(deployment: Deployment) -> None:
    url = deployment.gateway.base_url + "/v1/completions"
    body = {
        "model": "tiny",
        "prompt": "Count:",
        "max_tokens": 100_000,
        "ignore_eos": True,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {deployment.alice_key}"}
    before = len(deployment.usage_rows())
    async with aiohttp.ClientSession() as session:
        resp = await session.post(url, json=body, headers=headers)
        assert resp.status == 200
        for _ in range(3):  # a few tokens arrive: the engine is generating
            await resp.content.readuntil(b"\n\n")
        assert await _busy_slots(session, deployment.engine) == 1
        resp.close()  # the client goes away mid-stream
        closed = time.monotonic()
        while await _busy_slots(session, deployment.engine):
            assert time.monotonic() - closed < 1.0, "engine slot still busy 1 s after disconnect"
            await asyncio.sleep(0.02)
    (row,) = _rows_since(deployment, before, 1)
    assert row["completion_tokens"] >= 3 and row["usage_source"] == "estimated"


def test_usage_report_from_the_cli(deployment: Deployment) -> None:
    out = deployment.gateway.run("usage", "alice", "--json")
    assert '"user_name": "alice"' in out and '"model": "tiny"' in out
    assert Path(deployment.gateway.workdir / "data" / "secret.key").stat().st_mode & 0o077 == 0


async def test_concurrency_limit_with_a_real_stream(deployment: Deployment) -> None:
    url = deployment.gateway.base_url + "/v1/completions"
    headers = {"Authorization": f"Bearer {deployment.limited_keys['solo']}"}
    long = {"model": "tiny", "prompt": "go", "max_tokens": 4000, "ignore_eos": True, "stream": True}
    short = {"model": "tiny", "prompt": "go", "max_tokens": 2}
    async with aiohttp.ClientSession() as session:
        stream = await session.post(url, json=long, headers=headers)
        assert stream.status == 200
        await stream.content.readuntil(b"\n\n")
        async with session.post(url, json=short, headers=headers) as second:
            assert second.status == 429
            assert (await second.json())["error"]["code"] == "rate_limit_exceeded"
            assert second.headers["Retry-After"] == "1"
        stream.close()
        # Retry-After: 1 is honest: within a second of the stream ending there is room again.
        ended = time.monotonic()
        while True:
            async with session.post(url, json=short, headers=headers) as third:
                if third.status == 200:
                    break
                assert time.monotonic() - ended < 1.0
            await asyncio.sleep(0.05)


def test_requests_per_minute_with_the_sdk(deployment: Deployment) -> None:
    client = deployment.client(deployment.limited_keys["sam"])
    started = time.monotonic()
    for _ in range(2):
        client.completions.create(model="tiny", prompt="hi", max_tokens=1)
    with pytest.raises(openai.RateLimitError) as info:
        client.completions.create(model="tiny", prompt="hi", max_tokens=1)
    retry_after = int(info.value.response.headers["Retry-After"])
    assert 60 - (time.monotonic() - started) - 1 <= retry_after <= 60
    body = info.value.body
    assert isinstance(body, dict) and body["code"] == "rate_limit_exceeded"


async def test_streams_and_plain_requests_back_to_back(deployment: Deployment) -> None:
    """llama-server closes the connection after every stream while announcing keep-alive: the
    gateway must never hand a client the error of a pooled connection that died that way."""
    url = deployment.gateway.base_url + "/v1/completions"
    headers = {"Authorization": f"Bearer {deployment.alice_key}"}
    async with aiohttp.ClientSession() as session:

        async def one(stream: bool) -> int:
            body = {"model": "tiny", "prompt": "a", "max_tokens": 2, "stream": stream}
            async with session.post(url, json=body, headers=headers) as resp:
                await resp.read()
                return resp.status

        statuses = [await one(i % 2 == 0) for i in range(20)]
        statuses += await asyncio.gather(*(one(i % 2 == 0) for i in range(20)))
    assert statuses == [200] * 40
