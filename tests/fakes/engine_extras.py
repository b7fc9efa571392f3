"""The rest of what engines serve, on the fake engine: Anthropic's count_tokens, rerank,
multipart audio (transcriptions and translations: the form is parsed as an engine parses it,
and the answer reports tokens), speech, the tokenizer, llama-server's admin paths and vLLM's
development ones, and paths the gateway never names (`/infill`, `/completion`), so that a test
can see nothing reaches them.

Audio token counts: the transcription's input tokens are the upload's size in KiB (at least
1), its output tokens the words of the fixed text.
"""

from __future__ import annotations

import email.policy
import json
from email.parser import BytesParser

from aiohttp import web

from .engine_common import count_message_words, count_words, openai_error, read_body

__all__ = ["TRANSCRIPT", "add_extra_routes"]

TRANSCRIPT = "hello from the fake engine"


async def count_tokens(request: web.Request) -> web.Response:
    body = await read_body(request)
    words = count_message_words(body.get("messages")) + count_words(body.get("system"))
    return web.json_response({"input_tokens": words})


async def rerank(request: web.Request) -> web.Response:
    body = await read_body(request)
    docs = body.get("documents")
    docs = docs if isinstance(docs, list) else []
    words = count_words(body.get("query")) * max(1, len(docs)) + count_words(docs)
    results = [{"index": i, "relevance_score": 1.0 / (i + 1)} for i in range(len(docs))]
    return web.json_response(
        {
            "model": str(body.get("model", "fake")),
            "object": "list",
            "results": results,
            "usage": {"prompt_tokens": words, "total_tokens": words},
        }
    )


def _form(content_type: str, raw: bytes) -> list[tuple[str, bytes]] | None:
    """The (name, value) fields of a multipart/form-data body; None if it does not parse."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart() or message.defects:
        return None
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes) or part.defects:
            return None
        fields.append((name, payload))
    return fields


async def transcribe(request: web.Request) -> web.Response:
    """Reads the whole form as an engine does (the last `model` field wins)."""
    fields = _form(request.headers.get("Content-Type", ""), await request.read())
    if fields is None:
        return openai_error(400, "invalid multipart form", code="invalid_form")
    files = [value for name, value in fields if name == "file"]
    if len(files) != 1:
        return openai_error(400, "a file is required", code="missing_file")
    size = len(files[0])
    models = [value.decode() for name, value in fields if name == "model"]
    return web.json_response(
        {
            "text": TRANSCRIPT,
            "model_seen": models,
            "file_bytes": size,
            "usage": {
                "type": "tokens",
                "input_tokens": max(1, size // 1024),
                "output_tokens": len(TRANSCRIPT.split()),
            },
        }
    )


async def speech(request: web.Request) -> web.Response:
    body = await read_body(request)
    audio = b"ID3" + str(body.get("input", "")).encode() * 100
    return web.Response(body=audio, content_type="audio/mpeg")


async def tokenize(request: web.Request) -> web.Response:
    body = await read_body(request)
    return web.json_response({"tokens": list(range(count_words(body.get("content"))))})


async def detokenize(request: web.Request) -> web.Response:
    body = await read_body(request)
    tokens = body.get("tokens")
    return web.json_response({"content": " ".join(f"t{t}" for t in tokens or [])})


async def echo(request: web.Request) -> web.Response:
    """What an admin (or closed) path would do: here, only say what it was asked."""
    raw = await request.read()
    return web.json_response(
        {
            "path": request.path,
            "query": request.query_string,
            "body": json.loads(raw) if raw else None,
        }
    )


def add_extra_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
    app.router.add_post("/v1/rerank", rerank)
    app.router.add_post("/rerank", rerank)
    app.router.add_post("/v1/audio/transcriptions", transcribe)
    app.router.add_post("/v1/audio/translations", transcribe)
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_post("/tokenize", tokenize)
    app.router.add_post("/detokenize", detokenize)
    app.router.add_post("/slots/{slot_id}", echo)
    app.router.add_get("/models", echo)
    app.router.add_post("/models/load", echo)
    app.router.add_post("/models/unload", echo)
    for path in ("/collective_rpc", "/start_profile", "/stop_profile", "/infill", "/completion"):
        app.router.add_post(path, echo)
