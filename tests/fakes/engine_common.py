"""Shared pieces of the fake engine: state, token counting, fault options, streaming."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

DEFAULT_COMPLETION_TOKENS = 8
REDIRECT_LOCATION = "http://127.0.0.1:1/elsewhere"
FAULTS = frozenset(
    {
        *("stall", "stall_headers", "500", "503", "error_json", "cutoff", "redirect"),
        *("slow_headers", "linger"),
    }
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the engine received it (before its own auth check)."""

    method: str
    path: str
    query_string: str
    headers: list[tuple[str, str]]
    body: Any  # parsed JSON, or None when the body was empty or not JSON
    raw_body: bytes

    def header(self, name: str) -> str | None:
        """First value of header `name` (case-insensitive), or None."""
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def header_names(self) -> set[str]:
        return {k.lower() for k, _ in self.headers}


@dataclass
class EngineState:
    models: list[str]
    api_key: str | None = None
    token_delay: float = 0.0
    record: bool = True
    requests: list[RecordedRequest] = field(default_factory=list)
    open_streams: int = 0
    cancelled_streams: int = 0
    open_requests: int = 0
    cancelled_requests: int = 0
    ids: int = 0
    healthy: bool = True  # False: /health answers 503
    health_checks: int = 0  # GET /health, counted apart from `requests`
    total_slots: int = 1  # GET /props announces it, as llama-server does its --parallel
    fake: dict[str, Any] = field(default_factory=dict)  # faults for bodies without "fake"

    def next_id(self, prefix: str) -> str:
        self.ids += 1
        return f"{prefix}-fake{self.ids}"


STATE: web.AppKey[EngineState] = web.AppKey("fake_engine_state", EngineState)


@dataclass(frozen=True)
class FakeOptions:
    fault: str | None = None
    after: int = 0
    delay: float = 0.0
    token_delay: float = 0.0


def openai_error(
    status: int, message: str, etype: str = "invalid_request_error", code: str | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return web.json_response(body, status=status)


def anthropic_error(
    status: int, message: str, etype: str = "invalid_request_error"
) -> web.Response:
    body = {"type": "error", "error": {"type": etype, "message": message}}
    return web.json_response(body, status=status)


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object body, or raise 400 with OpenAI error JSON."""
    try:
        body = json.loads(await request.read())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps(
                {
                    "error": {
                        "message": "body must be a JSON object",
                        "type": "invalid_request_error",
                    }
                }
            ),
            content_type="application/json",
        )
    return body


def parse_options(body: dict[str, Any], state: EngineState) -> FakeOptions:
    raw = body.get("fake") or state.fake
    fault = raw.get("fault") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or (fault is not None and fault not in FAULTS):
        raise web.HTTPBadRequest(text=f"bad fake options: {raw!r}")
    try:
        return FakeOptions(
            fault=fault,
            after=int(raw.get("after", 0)),
            delay=float(raw.get("delay", 0.0)),
            token_delay=float(raw.get("token_delay", state.token_delay)),
        )
    except (TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=f"bad fake options: {raw!r}") from exc


@dataclass(frozen=True)
class Asked:
    """A generation request as the engine read it: its body, fault options, streaming."""

    body: dict[str, Any]
    opts: FakeOptions
    streaming: bool


async def begin(
    request: web.Request, *, stream_default: bool = False, anthropic: bool = False
) -> Asked | web.StreamResponse:
    """Read a generation request; the early answer instead if a fault decides before any byte.
    (`stream_default`: Ollama streams unless told `"stream": false`.)"""
    body = await read_body(request)
    opts = parse_options(body, request.app[STATE])
    streaming = body.get("stream", stream_default) is True
    early = await pre_header_faults(request, opts, streaming, anthropic)
    return early if early is not None else Asked(body, opts, streaming)


def count_words(value: Any) -> int:
    """Whitespace-separated words in a string, a list of strings / token ids, or content parts."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, int):
        return 1  # a token id in a pre-tokenized prompt
    if isinstance(value, list):
        return sum(count_words(v) for v in value)
    if isinstance(value, dict):  # a content part: {"type": "text", "text": ...}
        text = value.get("text")
        return count_words(text) if isinstance(text, str) else 0
    return 0


def count_message_words(messages: Any) -> int:
    if not isinstance(messages, list):
        return 0
    return sum(count_words(m.get("content")) for m in messages if isinstance(m, dict))


def completion_count(body: dict[str, Any]) -> int:
    """Like a real engine: the answer ends after DEFAULT_COMPLETION_TOKENS (its end of text)
    unless the limit comes first; with `ignore_eos` it runs to the limit. The limit is read
    as llama-server reads it: `n_predict`, else `max_completion_tokens`, else `max_tokens`."""
    limit = None
    for key in ("n_predict", "max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and value >= 0:
            limit = value
            break
    if body.get("ignore_eos") is True and limit is not None:
        return limit
    return DEFAULT_COMPLETION_TOKENS if limit is None else min(limit, DEFAULT_COMPLETION_TOKENS)


def token_texts(n: int) -> list[str]:
    return [f"tok{i} " for i in range(n)]


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def now() -> int:
    return int(time.time())


def sse(data: Any, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n".encode()


def abort_connection(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


async def wait_for_disconnect(request: web.Request) -> None:
    """Return once the peer has gone away (or get cancelled first, with handler_cancellation).

    aiohttp offers no event for "peer gone" short of handler cancellation, so poll as a
    fallback for runners started without `handler_cancellation=True`.
    """
    while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def pre_header_faults(
    request: web.Request, opts: FakeOptions, streaming: bool, anthropic: bool = False
) -> web.StreamResponse | None:
    """Apply faults that act before any byte of the response; None means carry on."""
    fault = opts.fault
    if fault == "slow_headers":
        await asyncio.sleep(opts.delay)
    elif fault == "stall_headers" or (fault == "stall" and not streaming):
        await wait_for_disconnect(request)
        request.app[STATE].cancelled_requests += 1
        return web.Response(status=499)
    elif fault == "cutoff" and not streaming:
        abort_connection(request)
        return web.Response(status=499)
    elif fault == "500":
        return web.Response(status=500, text="engine exploded")
    elif fault == "503":  # what llama-server answers while it loads its model
        return openai_error(503, "Loading model", etype="unavailable_error", code="unavailable")
    elif fault == "error_json":
        if anthropic:
            return anthropic_error(400, "fake engine error (error_json fault)")
        return openai_error(400, "fake engine error (error_json fault)", code="fake_error")
    elif fault == "redirect":
        return web.Response(status=307, headers={"Location": REDIRECT_LOCATION}, text="moved")
    return None


async def run_stream(
    request: web.Request,
    opts: FakeOptions,
    head: Sequence[bytes],
    tokens: Sequence[bytes],
    tail: Sequence[bytes],
) -> web.StreamResponse:
    """Stream head, tokens (with delay and stall/cutoff faults), tail; one write per event."""
    state = request.app[STATE]
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    state.open_streams += 1
    try:
        await resp.prepare(request)
        for event in head:
            await _write(request, resp, event)
        for i, event in enumerate(tokens):
            if await _fault_at(request, opts, i):
                return resp
            if i and opts.token_delay > 0:
                await asyncio.sleep(opts.token_delay)
            await _write(request, resp, event)
        if await _fault_at(request, opts, len(tokens), last=True):
            return resp
        for event in tail:
            await _write(request, resp, event)
        if opts.fault == "linger":  # the last event is out; the stream's end comes `delay` later
            await asyncio.sleep(opts.delay)
        await resp.write_eof()
    except asyncio.CancelledError:
        state.cancelled_streams += 1  # the middleware counts cancelled_requests
        raise
    except ConnectionResetError:
        state.cancelled_streams += 1
        state.cancelled_requests += 1
    finally:
        state.open_streams -= 1
    return resp


async def _write(request: web.Request, resp: web.StreamResponse, event: bytes) -> None:
    await resp.write(event)
    await request.writer.drain()


async def _fault_at(request: web.Request, opts: FakeOptions, i: int, last: bool = False) -> bool:
    """Before token i: stall (raises on disconnect) or cut off (returns True)."""
    if opts.fault not in ("stall", "cutoff") or (opts.after != i and not (last and opts.after > i)):
        return False
    if opts.fault == "cutoff":
        abort_connection(request)
        return True
    await wait_for_disconnect(request)
    raise ConnectionResetError("client went away during a stall")
