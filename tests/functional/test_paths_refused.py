"""No path is forwarded that the endpoint catalogue does not name: paths the engines serve
(llama-server, vLLM, Ollama) and the gateway does not, asked for by a user and by an admin,
with every method, never reach the engine."""

from __future__ import annotations

import json

import pytest
from fakes.engine import FakeEngine

from authproxy.proxy.endpoints import CATALOGUE

from .helpers import Gateway, bearer
from .wire import assert_error_shape, raw_request

NOT_IN_THE_CATALOGUE = [
    # llama-server's own API and aliases the catalogue does not name
    "/completion", "/completions", "/chat/completions", "/infill", "/embedding", "/embeddings",
    "/reranking", "/v1/reranking", "/apply-template", "/lora-adapters", "/health", "/v1/health",
    "/responses", "/props/x", "/slots/0/x", "/slots/x", "/models/x", "/v1/models/tiny",
    # vLLM
    "/v2/rerank", "/score", "/v1/score", "/pooling", "/classify", "/tokenize/x", "/version",
    "/ping", "/invocations", "/reset_prefix_cache", "/sleep", "/wake_up", "/is_sleeping",
    "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/server_info", "/update_weights",
    # Ollama
    "/api/blobs/sha256:0000", "/api/chat/x", "/api/tags/x", "/api", "/api/", "/api/embed/",
    # OpenAI paths no engine of ours serves, stored-object APIs above all
    "/v1/files", "/v1/batches", "/v1/conversations", "/v1/conversations/c1/items",
    "/v1/realtime", "/v1/images/generations", "/v1/vector_stores", "/v1/assistants",
    "/v1/threads", "/v1/fine_tuning/jobs", "/v1/responses/r1/x", "/v1/responses/r1/cancel/x",
    "/v1/messages/batches", "/v1/messages/x", "/v1/audio/x",
    # the engine prefix with no admin path behind it, or a bad upstream name
    "/engine/local", "/engine/local/", "/engine/local/v1/chat/completions",
    "/engine/local/api/chat", "/engine/../slots", "/engine/.hidden/slots", "/engine/local/x",
]  # fmt: skip


def test_the_list_names_no_catalogue_path() -> None:
    named = {e.path for e in CATALOGUE}
    assert not named & set(NOT_IN_THE_CATALOGUE)


@pytest.mark.parametrize("path", NOT_IN_THE_CATALOGUE)
async def test_an_unnamed_path_is_never_forwarded(
    gateway: Gateway, engine: FakeEngine, path: str
) -> None:
    body = json.dumps({"model": "tiny", "prompt": "x"}).encode()
    for key in (gateway.accounts.user_key, gateway.accounts.admin_key):
        auth = list(bearer(key).items())
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            r = await raw_request(gateway.port, method, path, auth, body=body)
            assert (r.status, assert_error_shape(r.json())["code"]) == (404, "unknown_path"), (
                method,
                r.status,
            )
    assert engine.requests == []


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_named_path_with_another_method_is_never_forwarded(
    gateway: Gateway, engine: FakeEngine, method: str
) -> None:
    auth = list(bearer(gateway.accounts.admin_key).items())
    for endpoint in CATALOGUE:
        if method in endpoint.methods or "{" in endpoint.path:
            continue
        r = await raw_request(gateway.port, method, endpoint.path, auth)
        # 404 where a templated route takes the path (DELETE /v1/responses/input_tokens is a
        # stored response named input_tokens, which nobody created).
        assert r.status in (404, 405), (endpoint.path, r.status)
        assert_error_shape(r.json())
    assert engine.requests == []
