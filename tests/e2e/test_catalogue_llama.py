"""The endpoint catalogue against the real llama-server: the Responses API (plain and streamed,
charged the engine's usage; a response's id its creator's alone), count_tokens and the
tokenizer (answered, not charged), and the Anthropic stream's cached prompt tokens charged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from .gateway import Gateway
from .llama_server import LlamaServer
from .sse import sse_events

PROMPT = "Say something about the sea."


@pytest.fixture(scope="module")
def gateway(
    llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    settings = {"upstreams": [{"name": "llama", "url": llama_server.base_url, "models": ["tiny"]}]}
    gateway = Gateway(workdir=tmp_path_factory.mktemp("catalogue"), settings=settings)
    gateway.run("init")
    with gateway:
        yield gateway


async def _post(
    session: aiohttp.ClientSession, base: str, key: str | None, path: str, body: dict[str, Any]
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with session.post(base + path, json=body, headers=headers) as resp:
        return resp.status, await resp.read()


async def test_responses_plain_and_streamed_are_charged_the_engines_usage(
    gateway: Gateway, llama_server: LlamaServer
) -> None:
    key = gateway.add_user("resa")
    body = {"model": "tiny", "input": PROMPT, "max_output_tokens": 6, "temperature": 0}
    async with aiohttp.ClientSession() as session:
        status, raw = await _post(session, llama_server.base_url, None, "/v1/responses", body)
        assert status == 200
        direct = json.loads(raw)["usage"]
        status, raw = await _post(session, gateway.base_url, key, "/v1/responses", body)
        assert status == 200, raw
        plain = json.loads(raw)
        status, raw = await _post(
            session, gateway.base_url, key, "/v1/responses", {**body, "stream": True}
        )
        assert status == 200
    events = sse_events(raw)
    assert events[0]["type"] == "response.created" and events[-1]["type"] == "response.completed"
    streamed = events[-1]["response"]["usage"]
    assert plain["usage"]["input_tokens"] == direct["input_tokens"]
    rows = gateway.usage_rows("resa", 2)
    assert [(r["prompt_tokens"], r["completion_tokens"], r["stream"]) for r in rows] == [
        (plain["usage"]["input_tokens"], plain["usage"]["output_tokens"], 0),
        (streamed["input_tokens"], streamed["output_tokens"], 1),
    ]
    assert {r["usage_source"] for r in rows} == {"engine"}
    assert all(r["completion_tokens"] <= 6 for r in rows)  # the limit reached the engine


async def test_a_response_id_is_its_creators_alone(gateway: Gateway) -> None:
    owner, other = gateway.add_user("owner"), gateway.add_user("other")
    body = {"model": "tiny", "input": PROMPT, "max_output_tokens": 2}
    async with aiohttp.ClientSession() as session:
        status, raw = await _post(session, gateway.base_url, owner, "/v1/responses", body)
        assert status == 200
        rid = json.loads(raw)["id"]
        answers = {}
        for who, key in (("owner", owner), ("other", other)):
            headers = {"Authorization": f"Bearer {key}"}
            async with session.get(f"{gateway.base_url}/v1/responses/{rid}", headers=headers) as r:
                answers[who] = (r.status, await r.json())
            follow = {**body, "previous_response_id": rid}
            status, raw = await _post(session, gateway.base_url, key, "/v1/responses", follow)
            answers[who + "-previous"] = (status, json.loads(raw))
    # llama-server stores nothing: its creator is sent on to it and gets the engine's own 404;
    # anyone else gets the gateway's, as for an id nobody ever made.
    assert answers["owner"][0] == 404 and answers["owner"][1]["error"]["code"] == 404
    assert answers["other"][0] == 404
    assert answers["other"][1]["error"]["code"] == "response_not_found"
    # Continuing it: llama-server refuses the field for its creator; the gateway for others.
    assert answers["owner-previous"][0] == 400
    assert "previous_response_id" in answers["owner-previous"][1]["error"]["message"]
    assert answers["other-previous"][0] == 400
    assert answers["other-previous"][1]["error"]["code"] == "previous_response_not_found"


async def test_counting_and_tokenizing_answer_and_are_not_charged(
    gateway: Gateway, llama_server: LlamaServer
) -> None:
    key = gateway.add_user("counter")
    messages = [{"role": "user", "content": PROMPT}]
    async with aiohttp.ClientSession() as session:
        count = {"model": "tiny", "messages": messages}
        status, raw = await _post(
            session, gateway.base_url, key, "/v1/messages/count_tokens", count
        )
        assert status == 200, raw
        counted = json.loads(raw)["input_tokens"]
        status, raw = await _post(
            session, gateway.base_url, key, "/v1/responses/input_tokens",
            {"model": "tiny", "input": PROMPT},
        )  # fmt: skip
        assert status == 200 and json.loads(raw)["input_tokens"] > 0
        status, raw = await _post(
            session, gateway.base_url, key, "/tokenize", {"model": "tiny", "content": PROMPT}
        )
        assert status == 200
        tokens = json.loads(raw)["tokens"]
        status, raw = await _post(
            session, gateway.base_url, key, "/detokenize", {"model": "tiny", "tokens": tokens}
        )
        assert status == 200
        assert json.loads(raw)["content"].replace("\u2581", " ").strip() == PROMPT
        # The same messages, generated: the count is the prompt the engine then charges.
        gen = {"model": "tiny", "messages": messages, "max_tokens": 1}
        status, raw = await _post(session, gateway.base_url, key, "/v1/messages", gen)
        assert status == 200
    assert tokens
    rows = gateway.usage_rows("counter", 5)
    assert [(r["endpoint"], r["prompt_tokens"], r["completion_tokens"]) for r in rows[:4]] == [
        ("/v1/messages/count_tokens", 0, 0),
        ("/v1/responses/input_tokens", 0, 0),
        ("/tokenize", 0, 0),
        ("/detokenize", 0, 0),
    ]
    assert rows[4]["prompt_tokens"] == counted


async def test_anthropic_stream_charges_cached_prompt_tokens_too(gateway: Gateway) -> None:
    """llama-server's message_start counts cached tokens apart (input_tokens excludes them):
    a repeat of the same prompt is charged the same prompt, not only its uncached tail."""
    key = gateway.add_user("cachy")
    body = {
        "model": "tiny",
        "max_tokens": 2,
        "stream": True,
        "system": "You are terse. " * 20,
        "messages": [{"role": "user", "content": PROMPT}],
    }
    starts = []
    async with aiohttp.ClientSession() as session:
        for _ in range(2):
            status, raw = await _post(session, gateway.base_url, key, "/v1/messages", body)
            assert status == 200
            starts.append(sse_events(raw)[0]["message"]["usage"])
    rows = gateway.usage_rows("cachy", 2)
    assert starts[1].get("cache_read_input_tokens", 0) > 0, starts  # the repeat hit the cache
    assert rows[0]["prompt_tokens"] == rows[1]["prompt_tokens"]
    assert rows[1]["prompt_tokens"] == (
        starts[1]["input_tokens"] + starts[1]["cache_read_input_tokens"]
    )
