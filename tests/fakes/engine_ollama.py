"""Ollama's native API on the fake engine: `/api/chat` and `/api/generate` stream NDJSON unless
`"stream": false` (the counts, `prompt_eval_count` and `eval_count`, in the last line, `"done":
true`), `/api/embed` (with `prompt_eval_count`), `/api/embeddings` (none), `/api/show`,
`/api/version`, `/api/tags`, and the admin paths (`/api/pull`, `/api/push`, `/api/create`,
`/api/copy`, `/api/delete`, `/api/ps`), which only say what they were asked.

The limit is `options.num_predict` (what the gateway writes); top-level `max_tokens` is ignored
as Ollama ignores it. Faults: `"fake"` as for the OpenAI endpoints (stall, cutoff, ...).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from .engine_common import (
    DEFAULT_COMPLETION_TOKENS,
    STATE,
    Asked,
    begin,
    count_message_words,
    count_words,
    read_body,
    token_texts,
)

__all__ = ["add_ollama_routes"]

_CREATED = "2026-01-01T00:00:00Z"


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def _answer_count(body: dict[str, Any]) -> int:
    options = body.get("options")
    limit = options.get("num_predict") if isinstance(options, dict) else None
    if isinstance(limit, int) and limit >= 0:
        return min(limit, DEFAULT_COMPLETION_TOKENS)
    return DEFAULT_COMPLETION_TOKENS


async def _generate(request: web.Request, *, chat: bool) -> web.StreamResponse:
    asked = await begin(request, stream_default=True)
    if not isinstance(asked, Asked):
        return asked
    state, body, opts, streaming = request.app[STATE], asked.body, asked.opts, asked.streaming
    model = str(body.get("model", "fake"))
    prompt = count_message_words(body.get("messages")) if chat else count_words(body.get("prompt"))
    texts = token_texts(_answer_count(body))

    def piece(text: str, done: bool) -> dict[str, Any]:
        part: dict[str, Any] = (
            {"message": {"role": "assistant", "content": text}} if chat else {"response": text}
        )
        return {"model": model, "created_at": _CREATED, **part, "done": done}

    last = {
        **piece("" if streaming else "".join(texts), True),
        "done_reason": "stop",
        "total_duration": 1000,
        "prompt_eval_count": prompt,
        "eval_count": len(texts),
    }
    if not streaming:
        return web.json_response(last)
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    state.open_streams += 1
    try:
        await resp.prepare(request)
        for i, text in enumerate(texts):
            if opts.fault == "cutoff" and i == opts.after:
                transport = request.transport
                if transport is not None:
                    transport.abort()
                return resp
            if i and opts.token_delay:
                await asyncio.sleep(opts.token_delay)
            await resp.write(_line(piece(text, False)))
        await resp.write(_line(last))
        await resp.write_eof()
    finally:
        state.open_streams -= 1
    return resp


async def chat(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=True)


async def generate(request: web.Request) -> web.StreamResponse:
    return await _generate(request, chat=False)


async def embed(request: web.Request) -> web.Response:
    body = await read_body(request)
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) else [raw]
    return web.json_response(
        {
            "model": str(body.get("model", "fake")),
            "embeddings": [[0.1, 0.2, 0.3] for _ in inputs],
            "prompt_eval_count": count_words(raw),
        }
    )


async def embeddings(request: web.Request) -> web.Response:
    await read_body(request)
    return web.json_response({"embedding": [0.1, 0.2, 0.3]})


async def show(request: web.Request) -> web.Response:
    body = await read_body(request)
    return web.json_response(
        {"modelfile": "", "details": {"family": "fake"}, "model_info": {}, "asked": body}
    )


async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": "0.0.0-fake"})


async def tags(request: web.Request) -> web.Response:
    names = request.app[STATE].models
    return web.json_response({"models": [{"name": m, "model": m} for m in names]})


async def admin_echo(request: web.Request) -> web.Response:
    """An admin path: says what it was asked (method, path, body) and does nothing."""
    raw = await request.read()
    return web.json_response(
        {"status": "success", "path": request.path, "body": json.loads(raw) if raw else None}
    )


def add_ollama_routes(app: web.Application) -> None:
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/api/generate", generate)
    app.router.add_post("/api/embed", embed)
    app.router.add_post("/api/embeddings", embeddings)
    app.router.add_post("/api/show", show)
    app.router.add_get("/api/version", version)
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/api/ps", admin_echo)
    app.router.add_delete("/api/delete", admin_echo)
    for path in ("/api/pull", "/api/push", "/api/create", "/api/copy"):
        app.router.add_post(path, admin_echo)
