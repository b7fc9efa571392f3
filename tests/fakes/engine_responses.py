"""The OpenAI Responses API of the fake engine: `POST /v1/responses` (plain and SSE, as
llama-server streams it: response.created ... response.completed, the usage in the last event
only), stored responses (kept unless `"store": false`) behind GET / DELETE / cancel /
input_items, and `/v1/responses/input_tokens`.

Token counts: the words of `instructions` and of every input item's text; the answer is
`DEFAULT_COMPLETION_TOKENS` tokens, fewer if `max_output_tokens` is lower.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .engine_common import (
    DEFAULT_COMPLETION_TOKENS,
    STATE,
    Asked,
    begin,
    count_words,
    now,
    openai_error,
    read_body,
    run_stream,
    sse,
    token_texts,
)

__all__ = ["add_response_routes", "input_words"]

_STORED: web.AppKey[dict[str, dict[str, Any]]] = web.AppKey("fake_stored_responses", dict)


def input_words(body: dict[str, Any]) -> int:
    """Words of the instructions and of every input item (a string input is one item)."""
    items = body.get("input")
    items = items if isinstance(items, list) else [items]
    words = count_words(body.get("instructions"))
    for item in items:
        content = item.get("content") if isinstance(item, dict) else item
        words += count_words(content)
    return words


def _answer_count(body: dict[str, Any]) -> int:
    limit = body.get("max_output_tokens")
    if isinstance(limit, int) and limit >= 0:
        return min(limit, DEFAULT_COMPLETION_TOKENS)
    return DEFAULT_COMPLETION_TOKENS


async def create(request: web.Request) -> web.StreamResponse:
    asked = await begin(request)
    if not isinstance(asked, Asked):
        return asked
    state, body, opts, streaming = request.app[STATE], asked.body, asked.opts, asked.streaming
    texts = token_texts(_answer_count(body))
    usage = {
        "input_tokens": input_words(body),
        "output_tokens": len(texts),
        "total_tokens": input_words(body) + len(texts),
        "input_tokens_details": {"cached_tokens": 0},
    }
    rid = state.next_id("resp")
    message = {
        "type": "message",
        "id": f"msg_{rid}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "".join(texts), "annotations": []}],
    }
    done = {
        "id": rid,
        "object": "response",
        "created_at": now(),
        "status": "completed",
        "model": str(body.get("model", "fake")),
        "output": [message],
        "usage": usage,
    }
    if body.get("store") is not False:
        request.app[_STORED][rid] = {**done, "input": body.get("input")}
    if not streaming:
        return web.json_response(done)
    started = {"id": rid, "object": "response", "status": "in_progress"}
    head = [
        sse({"type": "response.created", "response": started}, "response.created"),
        sse({"type": "response.in_progress", "response": started}, "response.in_progress"),
    ]
    tokens = [
        sse({"type": "response.output_text.delta", "delta": t}, "response.output_text.delta")
        for t in texts
    ]
    tail = [sse({"type": "response.completed", "response": done}, "response.completed")]
    return await run_stream(request, opts, head, tokens, tail)


def _stored(request: web.Request) -> dict[str, Any] | web.Response:
    found = request.app[_STORED].get(request.match_info["response_id"])
    if found is None:
        return openai_error(404, "Response not found", code="not_found")
    return found


async def retrieve(request: web.Request) -> web.Response:
    found = _stored(request)
    return found if isinstance(found, web.Response) else web.json_response(found)


async def delete(request: web.Request) -> web.Response:
    found = _stored(request)
    if isinstance(found, web.Response):
        return found
    del request.app[_STORED][found["id"]]
    return web.json_response({"id": found["id"], "object": "response", "deleted": True})


async def input_items(request: web.Request) -> web.Response:
    found = _stored(request)
    if isinstance(found, web.Response):
        return found
    items = found["input"] if isinstance(found["input"], list) else [found["input"]]
    return web.json_response({"object": "list", "data": items})


async def input_tokens(request: web.Request) -> web.Response:
    body = await read_body(request)
    return web.json_response({"object": "response.input_tokens", "input_tokens": input_words(body)})


def add_response_routes(app: web.Application) -> None:
    app[_STORED] = {}
    app.router.add_post("/v1/responses", create)
    app.router.add_post("/v1/responses/input_tokens", input_tokens)
    app.router.add_get("/v1/responses/{response_id}", retrieve)
    app.router.add_delete("/v1/responses/{response_id}", delete)
    # Cancelling a finished response answers it as it is.
    app.router.add_post("/v1/responses/{response_id}/cancel", retrieve)
    app.router.add_get("/v1/responses/{response_id}/input_items", input_items)
