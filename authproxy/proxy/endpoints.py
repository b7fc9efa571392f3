"""The endpoint catalogue: every API path the gateway serves, one row per path and methods, with
its policy. The URL table (``web/routes.py``) is generated from it, the handlers
(``proxy/handlers.py``) read it; a path no row names is refused. Adding an endpoint is adding a
row (and a sample request in ``tests/functional/catalogue_samples.py``, which the policy tests
run for every row).

A row says:

- ``access``: who may call it — ``user`` (any authenticated caller whose role may use the
  model), ``admin``, or ``nobody`` (named so that the refusal is a decision, not an accident);
- ``model``: where the model comes from, which decides authorization and the upstream —
  ``json`` (a field of the JSON body), ``form`` (a multipart form field, the body streamed),
  ``owner`` (a stored response: its creator alone may reach it, at the upstream that made it),
  ``upstream`` (an engine admin path: the upstream named in ``/engine/{upstream}/…``, or the
  only one), ``none`` (answered by the gateway, or by any upstream);
- ``output``: where the reserved output limit is written (``output_limits.py``), None when it
  generates nothing the gateway can bound;
- ``usage``: how usage is read back (``usage.py``), None when the answer carries none;
- ``charged``: whether it is charged tokens at all (counting and tokenizing are not);
- ``stream``: the stream format it may answer in (``sse``, ``ndjson``, ``none``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from authproxy.proxy import output_limits
from authproxy.proxy.output_limits import OutputRule
from authproxy.proxy.usage import Dialect

__all__ = [
    "CATALOGUE",
    "ENGINE_PREFIX",
    "SEGMENTS",
    "Access",
    "Answer",
    "Endpoint",
    "ModelSource",
    "StreamFormat",
    "engine_path",
    "row",
]

Access = Literal["user", "admin", "nobody"]
ModelSource = Literal["json", "form", "owner", "upstream", "none"]
StreamFormat = Literal["sse", "ndjson", "none"]
# Who answers: the engine, or the gateway itself (the model lists, the WebSocket refusal).
Answer = Literal["engine", "models", "tags", "websocket"]

# Engine admin paths are also served under this prefix, naming the upstream they go to.
ENGINE_PREFIX = "/engine/{upstream}"
# What a path segment named in braces may hold, matched on the raw path (before any decoding):
# no dot-only segment, no slash, no percent sign — nothing that could climb out of the path.
SEGMENTS: Mapping[str, str] = {
    "response_id": r"[A-Za-z0-9_-]{1,128}",
    "slot_id": r"[0-9]{1,9}",
    "upstream": r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}",
}
_QUERY_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    path: str  # as the URL table writes it; {response_id}, {slot_id} are strict segments
    methods: tuple[str, ...] = ("POST",)
    access: Access = "user"
    model: ModelSource = "json"
    output: OutputRule | None = None
    usage: Dialect | None = None
    charged: bool = False
    stream: StreamFormat = "none"
    takes_stream_options: bool = False  # OpenAI streams: stream_options.include_usage
    stream_default: bool = False  # Ollama streams unless the body says "stream": false
    model_fields: tuple[str, ...] = ("model",)  # the first one present names the model
    query: tuple[str, ...] = ()  # query parameters forwarded (strictly checked); others dropped
    answer: Answer = "engine"
    records_owner: bool = False  # the answer's id is a stored response: remember its creator
    at_root: bool = True  # an ``upstream`` row is also served at its own path (one upstream)

    @property
    def can_stream(self) -> bool:
        return self.stream != "none"

    @property
    def label(self) -> str:
        return f"{'|'.join(self.methods)} {self.path}"


def _openai_generation(path: str, rule: OutputRule) -> Endpoint:
    return Endpoint(
        path=path,
        output=rule,
        usage="openai",
        charged=True,
        stream="sse",
        takes_stream_options=True,
    )


def _owned(path: str, method: str) -> Endpoint:
    return Endpoint(path=path, methods=(method,), model="owner")


def _engine_admin(path: str, *methods: str, query: tuple[str, ...] = ()) -> Endpoint:
    return Endpoint(path=path, methods=methods, access="admin", model="upstream", query=query)


def _upload(path: str) -> Endpoint:
    """Audio in a multipart form; usage reported as input/output tokens where the engine does."""
    return Endpoint(path=path, model="form", usage="responses", charged=True, stream="sse")


def _ollama_generation(path: str) -> Endpoint:
    return Endpoint(
        path=path,
        output=output_limits.OLLAMA,
        usage="ollama",
        charged=True,
        stream="ndjson",
        stream_default=True,
    )


CATALOGUE: tuple[Endpoint, ...] = (
    # -- OpenAI-compatible ------------------------------------------------------------------
    _openai_generation("/v1/chat/completions", output_limits.CHAT),
    _openai_generation("/v1/completions", output_limits.COMPLETIONS),
    Endpoint(path="/v1/embeddings", usage="openai", charged=True),
    Endpoint(path="/v1/models", methods=("GET",), model="none", answer="models"),
    # -- OpenAI Responses: a stored response is its creator's alone ---------------------------
    Endpoint(
        path="/v1/responses",
        output=output_limits.RESPONSES,
        usage="responses",
        charged=True,
        stream="sse",
        records_owner=True,
    ),
    # Codex tries a WebSocket here first: 426 sends it to HTTP at once (any other refusal
    # costs it seconds of retries, a 400 ends its run).
    Endpoint(path="/v1/responses", methods=("GET",), model="none", answer="websocket"),
    _owned("/v1/responses/{response_id}", "GET"),
    _owned("/v1/responses/{response_id}", "DELETE"),
    _owned("/v1/responses/{response_id}/cancel", "POST"),
    _owned("/v1/responses/{response_id}/input_items", "GET"),
    Endpoint(path="/v1/responses/input_tokens"),  # counting: not charged
    # -- Anthropic Messages -----------------------------------------------------------------
    Endpoint(
        path="/v1/messages",
        output=output_limits.MESSAGES,
        usage="anthropic",
        charged=True,
        stream="sse",
    ),
    Endpoint(path="/v1/messages/count_tokens"),  # the tokenizer only: not charged
    # -- rerank, audio, tokenizer -------------------------------------------------------------
    Endpoint(path="/v1/rerank", usage="openai", charged=True),
    Endpoint(path="/rerank", usage="openai", charged=True),
    _upload("/v1/audio/transcriptions"),
    _upload("/v1/audio/translations"),
    Endpoint(path="/v1/audio/speech", charged=True, stream="sse"),
    Endpoint(path="/tokenize"),
    Endpoint(path="/detokenize"),
    # -- Ollama's native API ------------------------------------------------------------------
    _ollama_generation("/api/chat"),
    _ollama_generation("/api/generate"),
    Endpoint(path="/api/embed", usage="ollama", charged=True),
    Endpoint(path="/api/embeddings", usage="ollama", charged=True),
    Endpoint(path="/api/tags", methods=("GET",), model="none", answer="tags"),
    Endpoint(path="/api/show", model_fields=("model", "name")),
    Endpoint(path="/api/version", methods=("GET",), model="none"),
    _engine_admin("/api/pull", "POST"),
    _engine_admin("/api/push", "POST"),
    _engine_admin("/api/create", "POST"),
    _engine_admin("/api/copy", "POST"),
    _engine_admin("/api/delete", "DELETE"),
    _engine_admin("/api/ps", "GET"),
    # -- llama-server's admin paths: /slots shows every user's prompts and outputs -------------
    _engine_admin("/slots", "GET"),
    _engine_admin("/slots/{slot_id}", "POST", query=("action",)),
    _engine_admin("/props", "GET", "POST"),
    _engine_admin("/models", "GET"),
    _engine_admin("/models/load", "POST"),
    _engine_admin("/models/unload", "POST"),
    # The engine's Prometheus text: /metrics itself is the gateway's own.
    Endpoint(path="/metrics", methods=("GET",), access="admin", model="upstream", at_root=False),
    # -- closed to everyone: vLLM's development endpoints run code in its workers -------------
    Endpoint(path="/collective_rpc", access="nobody", model="none"),
    Endpoint(path="/start_profile", access="nobody", model="none"),
    Endpoint(path="/stop_profile", access="nobody", model="none"),
)


def row(path: str, method: str = "POST") -> Endpoint:
    """The catalogue's row for ``method`` on ``path`` (as the catalogue writes the path)."""
    for endpoint in CATALOGUE:
        if endpoint.path == path and method in endpoint.methods:
            return endpoint
    raise KeyError(f"{method} {path}")


def engine_path(endpoint: Endpoint, params: Mapping[str, str], query: Mapping[str, str]) -> str:
    """The path (and query) the engine gets: the row's path with its segments filled in, each
    checked again here, and only the query parameters the row names."""
    path = endpoint.path
    for name, pattern in SEGMENTS.items():
        marker = "{" + name + "}"
        if marker in path:
            value = params.get(name, "")
            if not re.fullmatch(pattern, value):
                raise ValueError(f"{name} {value[:40]!r} is not a valid path segment")
            path = path.replace(marker, value)
    kept = []
    for name in endpoint.query:
        if name in query:
            if not _QUERY_VALUE.match(query[name]):
                raise ValueError(f"the query parameter {name} has an invalid value")
            kept.append(f"{name}={query[name]}")
    return path + ("?" + "&".join(kept) if kept else "")
