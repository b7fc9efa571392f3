"""One sample request for every route of the endpoint catalogue, with what the fake engine
answers and what the caller is charged: the policy tests (test_catalogue_policy.py) run each.

A row added to the catalogue without a sample here fails ``test_every_route_has_a_sample``.
Token counts are the fake engine's (tests/fakes): prompt words, 8 completion tokens unless
the limit is lower.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from authproxy.proxy.endpoints import CATALOGUE, ENGINE_PREFIX, Endpoint

__all__ = ["AUDIO_BYTES", "SAMPLES", "Route", "Sample", "multipart", "routes"]

AUDIO_BYTES = 2048  # the fake engine counts an upload's KiB as its input tokens


@dataclass(frozen=True)
class Route:
    """One method on one path of the URL table, as generated from a catalogue row."""

    endpoint: Endpoint
    method: str
    path: str  # as the URL table writes it

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def routes() -> Iterator[Route]:
    for endpoint in CATALOGUE:
        paths = [endpoint.path] if endpoint.at_root else []
        if endpoint.model == "upstream":
            paths.append(ENGINE_PREFIX + endpoint.path)
        for path in paths:
            for method in endpoint.methods:
                yield Route(endpoint, method, path)


@dataclass(frozen=True)
class Sample:
    body: dict[str, Any] | None = None  # JSON; "tiny" is the model every caller may use
    form: bool = False  # a multipart upload (model, file) instead
    query: str = ""
    charged: tuple[int, int] | None = (0, 0)  # (prompt, completion); None: an estimate
    status: int = 200
    content_type: str = "application/json"
    engine_path: str | None = None  # where the engine gets it, if not the route's path
    headers: dict[str, str] = field(default_factory=dict)


def _msgs(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


SAMPLES: dict[str, Sample] = {
    "POST /v1/chat/completions": Sample(
        {"model": "tiny", "messages": [*_msgs("a b"), *_msgs("c d e")]}, charged=(5, 8)
    ),
    "POST /v1/completions": Sample({"model": "tiny", "prompt": "a b c"}, charged=(3, 8)),
    "POST /v1/embeddings": Sample({"model": "tiny", "input": "a b"}, charged=(2, 0)),
    "GET /v1/models": Sample(charged=None),
    "POST /v1/responses": Sample(
        {"model": "tiny", "input": "a b c", "max_output_tokens": 4}, charged=(3, 4)
    ),
    "GET /v1/responses": Sample(
        status=426, headers={"Connection": "Upgrade", "Upgrade": "websocket"}, charged=None
    ),
    "GET /v1/responses/{response_id}": Sample(),
    "DELETE /v1/responses/{response_id}": Sample(),
    "POST /v1/responses/{response_id}/cancel": Sample(),
    "GET /v1/responses/{response_id}/input_items": Sample(),
    "POST /v1/responses/input_tokens": Sample({"model": "tiny", "input": "a b"}),
    "POST /v1/messages": Sample(
        {"model": "tiny", "max_tokens": 5, "messages": _msgs("a b")}, charged=(2, 5)
    ),
    "POST /v1/messages/count_tokens": Sample({"model": "tiny", "messages": _msgs("a b c")}),
    "POST /v1/rerank": Sample(
        {"model": "tiny", "query": "q", "documents": ["a b", "c"]}, charged=(5, 0)
    ),
    "POST /rerank": Sample(
        {"model": "tiny", "query": "q", "documents": ["a b", "c"]}, charged=(5, 0)
    ),
    "POST /v1/audio/transcriptions": Sample(form=True, charged=(AUDIO_BYTES // 1024, 5)),
    "POST /v1/audio/translations": Sample(form=True, charged=(AUDIO_BYTES // 1024, 5)),
    "POST /v1/audio/speech": Sample(
        {"model": "tiny", "input": "hello there", "voice": "x"},
        charged=None,
        content_type="audio/mpeg",
    ),
    "POST /tokenize": Sample({"model": "tiny", "content": "a b c"}),
    "POST /detokenize": Sample({"model": "tiny", "tokens": [1, 2]}),
    "POST /api/chat": Sample(
        {"model": "tiny", "messages": _msgs("a b c")},
        charged=(3, 8),
        content_type="application/x-ndjson",
    ),
    "POST /api/generate": Sample(
        {"model": "tiny", "prompt": "a b", "stream": False}, charged=(2, 8)
    ),
    "POST /api/embed": Sample({"model": "tiny", "input": "a b c"}, charged=(3, 0)),
    "POST /api/embeddings": Sample({"model": "tiny", "prompt": "a b"}, charged=None),
    "GET /api/tags": Sample(charged=None),
    "POST /api/show": Sample({"model": "tiny"}),
    "GET /api/version": Sample(),
    "POST /api/pull": Sample({"model": "newcomer"}),
    "POST /api/push": Sample({"model": "tiny"}),
    "POST /api/create": Sample({"model": "mine", "from": "tiny"}),
    "POST /api/copy": Sample({"source": "tiny", "destination": "tiny2"}),
    "DELETE /api/delete": Sample({"model": "tiny2"}),
    "GET /api/ps": Sample(),
    "GET /slots": Sample(),
    "POST /slots/{slot_id}": Sample({"filename": "x.bin"}, query="?action=save&other=1"),
    "GET /props": Sample(),
    "POST /props": Sample({"n_threads": 1}),
    "GET /models": Sample(),
    "POST /models/load": Sample({"model": "other"}),
    "POST /models/unload": Sample({"model": "other"}),
    "GET /metrics": Sample(content_type="text/plain"),
    "POST /collective_rpc": Sample({"method": "anything"}),
    "POST /start_profile": Sample(),
    "POST /stop_profile": Sample(),
}


def sample_for(route: Route) -> Sample:
    engine_path = route.endpoint.path
    return SAMPLES[f"{route.method} {engine_path}"]


def multipart(model: str, *, audio: bytes = b"\0" * AUDIO_BYTES, model_first: bool = True,
              extra: tuple[tuple[str, str], ...] = ()) -> tuple[bytes, str]:  # fmt: skip
    """A multipart/form-data body (model, file, extra fields), and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = {
        "model": (b'Content-Disposition: form-data; name="model"\r\n\r\n' + model.encode()),
        "file": (
            b'Content-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n" + audio
        ),
    }
    order = ["model", "file"] if model_first else ["file", "model"]
    chunks = [parts[name] for name in order]
    chunks += [f'Content-Disposition: form-data; name="{k}"\r\n\r\n{v}'.encode() for k, v in extra]
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + c + b"\r\n" for c in chunks)
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, f"multipart/form-data; boundary={boundary}"
