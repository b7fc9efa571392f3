"""OpenAI-shaped endpoints of the fake engine: models, chat, completions, embeddings."""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from .engine_common import (
    STATE,
    Asked,
    begin,
    completion_count,
    count_message_words,
    count_words,
    now,
    parse_options,
    pre_header_faults,
    read_body,
    run_stream,
    sse,
    token_texts,
    usage,
)


async def list_models(request: web.Request) -> web.Response:
    models = request.app[STATE].models
    data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]
    return web.json_response({"object": "list", "data": data})


async def chat_completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=False)


async def _generate(request: web.Request, *, chat: bool) -> web.StreamResponse:
    asked = await begin(request)
    if not isinstance(asked, Asked):
        return asked
    state, body, opts, streaming = request.app[STATE], asked.body, asked.opts, asked.streaming

    model = str(body.get("model", state.models[0] if state.models else "fake"))
    prompt = count_message_words(body.get("messages")) if chat else count_words(body.get("prompt"))
    texts = token_texts(completion_count(body))
    cid = state.next_id("chatcmpl" if chat else "cmpl")
    obj = "chat.completion" if chat else "text_completion"
    base: dict[str, Any] = {"id": cid, "object": obj, "created": now(), "model": model}

    if not streaming:
        text = "".join(texts)
        choice: dict[str, Any] = (
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": "stop",
            }
            if chat
            else {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
        )
        return web.json_response({**base, "choices": [choice], "usage": usage(prompt, len(texts))})

    base["object"] = "chat.completion.chunk" if chat else "text_completion"

    def chunk(text: str | None, i: int, finish: str | None = None) -> bytes:
        if chat:
            delta: dict[str, str] = {} if text is None else {"content": text}
            if i == 0:
                delta = {"role": "assistant", **delta}
            c: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish,
            }
        else:
            c = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        return sse({**base, "choices": [c]})

    tail = [chunk(None, len(texts), "stop")]
    stream_options = body.get("stream_options")
    if isinstance(stream_options, dict) and stream_options.get("include_usage") is True:
        tail.append(sse({**base, "choices": [], "usage": usage(prompt, len(texts))}))
    tail.append(sse("[DONE]"))
    tokens = [chunk(t, i) for i, t in enumerate(texts)]
    return await run_stream(request, opts, (), tokens, tail)


def _vector(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(digest[i % len(digest)] / 255.0 - 0.5, 6) for i in range(dims)]


async def embeddings(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await read_body(request)
    early = await pre_header_faults(request, parse_options(body, state), streaming=False)
    if early is not None:
        return early
    raw = body.get("input")
    inputs: list[Any] = (
        raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    )
    dims = body.get("dimensions")
    dims = dims if isinstance(dims, int) and dims > 0 else 8
    data = [
        {"object": "embedding", "index": i, "embedding": _vector(repr(item), dims)}
        for i, item in enumerate(inputs)
    ]
    prompt = count_words(raw)
    return web.json_response(
        {
            "object": "list",
            "data": data,
            "model": str(body.get("model", "fake")),
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        }
    )
