"""Anthropic Messages endpoint (`POST /v1/messages`) of the fake engine."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .engine_common import (
    STATE,
    Asked,
    begin,
    completion_count,
    count_message_words,
    count_words,
    run_stream,
    sse,
    token_texts,
)

# Like the real API, message_start reports a small non-zero output_tokens; the total is the
# cumulative value in message_delta.usage.output_tokens.
START_OUTPUT_TOKENS = 1


async def messages(request: web.Request) -> web.StreamResponse:
    asked = await begin(request, anthropic=True)
    if not isinstance(asked, Asked):
        return asked
    state, body, opts, streaming = request.app[STATE], asked.body, asked.opts, asked.streaming

    model = str(body.get("model", state.models[0] if state.models else "fake"))
    input_tokens = count_message_words(body.get("messages")) + count_words(body.get("system"))
    texts = token_texts(completion_count(body))
    message: dict[str, Any] = {
        "id": state.next_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "".join(texts)}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": len(texts)},
    }
    if not streaming:
        return web.json_response(message)

    start = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": START_OUTPUT_TOKENS},
    }
    head = [
        sse({"type": "message_start", "message": start}, "message_start"),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
    ]
    tokens = [
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
            "content_block_delta",
        )
        for t in texts
    ]
    tail = [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(texts)},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    return await run_stream(request, opts, head, tokens, tail)
