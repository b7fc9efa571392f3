"""Checking and preparing the JSON body of a forwarded request."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from authproxy.endpoints import Endpoint
from authproxy.errors import BadRequest


@dataclass(frozen=True, slots=True)
class PreparedRequest:
    body: bytes  # what goes upstream
    parsed: dict[str, Any]
    model: str
    stream: bool
    strip_usage: bool  # the gateway asked for stream usage the client did not want
    endpoint_path: str


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


_USAGE_OPTION = b'"stream_options":{"include_usage":true}'


def _with_usage_option(raw: bytes) -> bytes:
    """The client's bytes with the usage option spliced in after the opening brace: the key is
    known to be absent, and a long prompt is not re-encoded just to add it."""
    brace = raw.index(b"{")
    rest = raw[brace + 1 :]
    separator = b"" if rest.lstrip().startswith(b"}") else b","
    return raw[: brace + 1] + _USAGE_OPTION + separator + rest


def with_model(prepared: PreparedRequest, model_id: str) -> PreparedRequest:
    """The request as an engine must see it: ``model`` replaced by the engine's own id (an
    alias resolved). ``PreparedRequest.model`` keeps the client's name for policy and usage."""
    if prepared.parsed.get("model") == model_id:
        return prepared  # the client's bytes go upstream untouched
    parsed = {**prepared.parsed, "model": model_id}
    return replace(prepared, parsed=parsed, body=_encode(parsed))


def with_max_tokens(prepared: PreparedRequest, limit: int) -> PreparedRequest:
    """The same request with its completion limit lowered to ``limit`` (quota clamping)."""
    key = "max_completion_tokens" if "max_completion_tokens" in prepared.parsed else "max_tokens"
    parsed = {**prepared.parsed, key: limit}
    return replace(prepared, parsed=parsed, body=_encode(parsed))


def prepare(endpoint: Endpoint, raw: bytes) -> PreparedRequest:
    if not raw:
        raise BadRequest("the request body is empty; send a JSON object", code="invalid_json")
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(parsed, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    model = parsed.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("`model` is required and must be a string", code="missing_model")
    stream = parsed.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("`stream` must be true or false", code="invalid_stream")
    if stream and not endpoint.can_stream:
        raise BadRequest(f"{endpoint.path} does not stream", code="invalid_stream")

    strip_usage = False
    body = raw
    if stream and endpoint.takes_stream_options:
        options = parsed.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise BadRequest("`stream_options` must be an object", code="invalid_stream_options")
        if not (options or {}).get("include_usage"):
            strip_usage = True
            parsed = {**parsed, "stream_options": {**(options or {}), "include_usage": True}}
            body = _with_usage_option(raw) if options is None else _encode(parsed)
    return PreparedRequest(body, parsed, model, stream, strip_usage, endpoint.path)
