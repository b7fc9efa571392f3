"""Checking a forwarded request's JSON body, and the one body the engine gets instead of it.

The gateway decides on some fields (the model, the stream flags, the output limit, how many
outputs): it parses the client's bytes once, refuses what an engine could read differently
(a key given twice, a decided field spelled in another case — Go engines match keys
case-insensitively), and forwards a canonical encoding of what it checked: the client's other
fields as they parsed, then the decided fields as the gateway writes them. The client's own
bytes never reach the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, NamedTuple

from authproxy.config.schema import Quotas
from authproxy.errors import BadRequest
from authproxy.proxy import json_body
from authproxy.proxy.endpoints import Endpoint
from authproxy.proxy.multipart_body import FormUpload
from authproxy.proxy.output_limits import (
    CHOICE_FIELDS,
    LIMIT_FIELDS,
    OutputRule,
    read_ask,
    write_limit,
)
from authproxy.proxy.prompt_estimate import estimate

__all__ = [
    "DECIDED",
    "PreparedRequest",
    "bodiless",
    "estimate_prompt_tokens",
    "for_engine",
    "prepare",
]

# Top-level fields the gateway decides on: never forwarded as the client's bytes had them.
DECIDED = frozenset({"model", "stream", "stream_options", *LIMIT_FIELDS, *CHOICE_FIELDS})
# Refused in any spelling but this one (policy, accounting and the prompt estimate read them),
# by their case-folded form.
_GUARDED_TOP = {
    name.casefold(): name
    for name in (
        *DECIDED,
        *("user", "messages", "prompt", "input", "system", "options"),
        *("previous_response_id", "store", "conversation"),  # a stored response's owner
    )
}
_GUARDED_STREAM_OPTIONS = {"include_usage": "include_usage"}
_GATEWAY_MADE = frozenset({"stream", "stream_options"})  # made by the gateway unless `options`


class PreparedRequest(NamedTuple):
    """The checked request, as the rest of the request path sees it. A named tuple: immutable,
    and made on every forwarded request (a frozen dataclass costs a call per field to make).
    """

    model: str  # as the client named it (an alias, perhaps): policy and usage use this name
    stream: bool
    strip_usage: bool  # the gateway asked for stream usage the client did not want
    endpoint_path: str
    prompt_estimate: int  # an upper bound of the engine's prompt count (prompt_estimate.py)
    outputs: int  # completions the engine may generate (choices x prompts); 0 for embeddings
    limit: int  # tokens per output, written into the body (the quota may lower it)
    rule: OutputRule | None
    rest: bytes  # canonical encoding of the client's fields the gateway does not decide on
    fixed: dict[str, Any]  # the decided fields other than model and limit, as they go
    body: bytes = b""  # a bodiless row's body as it goes (JSON rows: for_engine makes it)
    model_field: str | None = "model"  # where the engine's model id is written; None: nowhere
    method: str = "POST"
    target: str = ""  # the engine's path (and query) when not the endpoint's own path
    content_type: str | None = "application/json"  # None: no body goes upstream
    upload: FormUpload | None = None  # a body streamed as it comes (multipart)
    pinned: str | None = None  # the one upstream that may serve it (a stored response's)
    previous_response_id: str | None = None  # continues this stored response (must be ours)
    stored: bool = True  # the engine keeps the response it makes (``store`` is not false)

    @property
    def reserved_output(self) -> int:
        return self.limit * self.outputs

    def with_limit(self, limit: int) -> PreparedRequest:
        """The same request with a lower output limit per output (quota clamping)."""
        return self._replace(limit=limit)


@cache
def _guarded(model_fields: tuple[str, ...]) -> dict[str, str]:
    """The top-level names refused in another spelling, for an endpoint's model fields."""
    return _GUARDED_TOP | {name.casefold(): name for name in model_fields}


@cache
def _taken(model_fields: tuple[str, ...], rule: OutputRule | None) -> frozenset[str]:
    """The top-level fields the gateway writes itself: none of them goes into ``rest``."""
    containers = rule.containers if rule is not None else frozenset()
    return DECIDED | frozenset(model_fields) | containers


def _check_keys(obj: Mapping[str, Any], where: str, guarded: Mapping[str, str]) -> None:
    """No two keys that differ only in case, and no other spelling of a guarded name."""
    folded: dict[str, str] = {}
    for key in obj:
        fold = key.casefold()
        other = folded.setdefault(fold, key)
        if other != key:
            raise BadRequest(
                f"{where}: the keys {json_body.show_key(other)} and {json_body.show_key(key)} "
                "differ only in case, and engines may read either",
                code="ambiguous_key",
            )
        name = guarded.get(fold)
        if name is not None and name != key:
            raise BadRequest(
                f"{where}: the key {json_body.show_key(key)} must be spelled {name!r}",
                code="ambiguous_key",
            )


def _stream_options(endpoint: Endpoint, body: Mapping[str, Any], stream: bool) -> Any:
    """The client's ``stream_options``, checked; None when absent or null."""
    options = body.get("stream_options")
    if options is None or not endpoint.takes_stream_options:
        return options
    if not isinstance(options, dict):
        raise BadRequest("`stream_options` must be an object", code="invalid_stream_options")
    _check_keys(options, "stream_options", _GUARDED_STREAM_OPTIONS)
    if "include_usage" in options and not isinstance(options["include_usage"], bool):
        raise BadRequest(
            "`stream_options.include_usage` must be true or false", code="invalid_stream_options"
        )
    return options


def _model(endpoint: Endpoint, body: Mapping[str, Any]) -> str:
    """The model the body names: the first of the row's model fields present (Ollama reads
    ``name`` where ``model`` is absent)."""
    for name in endpoint.model_fields:
        if body.get(name) is not None:
            model = body[name]
            if isinstance(model, str) and model:
                return model
            break
    raise BadRequest(
        f"`{endpoint.model_fields[0]}` is required and must be a string", code="missing_model"
    )


def _check_containers(rule: OutputRule, body: Mapping[str, Any]) -> None:
    """A container of the limit (Ollama's ``options``) is an object, its keys unambiguous."""
    for container, names in rule.container_names:
        value = body.get(container)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise BadRequest(f"`{container}` must be an object", code="invalid_options")
        _check_keys(value, container, names)


def prepare(endpoint: Endpoint, raw: bytes, *, settings: Quotas) -> PreparedRequest:
    parsed = json_body.parse(raw)
    if not isinstance(parsed, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    _check_keys(parsed, "request body", _guarded(endpoint.model_fields))
    model = _model(endpoint, parsed)
    stream = parsed.get("stream", endpoint.stream_default)
    if not isinstance(stream, bool):
        raise BadRequest("`stream` must be true or false", code="invalid_stream")
    if stream and not endpoint.can_stream:
        raise BadRequest(f"{endpoint.path} does not stream", code="invalid_stream")

    previous = parsed.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise BadRequest("`previous_response_id` must be a string", code="invalid_request")
    if endpoint.records_owner and parsed.get("conversation") is not None:
        raise BadRequest(
            "`conversation` is not supported on this gateway: send the history in `input`",
            code="unsupported_parameter",
        )

    fixed: dict[str, Any] = {"stream": stream} if "stream" in parsed else {}
    options = _stream_options(endpoint, parsed, stream)
    strip_usage = False
    if stream and endpoint.takes_stream_options:
        # The gateway's own: usage is what the request is charged by; the client's wish is
        # honoured by removing the usage chunk again on the way back.
        strip_usage = not (options or {}).get("include_usage")
        fixed["stream_options"] = {**(options or {}), "include_usage": True}
    elif options is not None:
        fixed["stream_options"] = options

    rule = endpoint.output
    limit, outputs = 0, 0
    if rule is None:  # nothing generated: the client's fields pass as they are
        fixed.update((k, parsed[k]) for k in (*LIMIT_FIELDS, *CHOICE_FIELDS) if k in parsed)
    else:
        _check_containers(rule, parsed)
        ask = read_ask(rule, parsed, max_outputs=settings.max_outputs)
        limit, outputs = ask.limit or settings.default_max_tokens, ask.outputs
        fixed.update(ask.choices)
        if rule.containers:
            fixed.update((k, parsed[k]) for k in rule.containers if k in parsed)
    taken = _taken(endpoint.model_fields, rule)
    rest = json_body.encode({k: v for k, v in parsed.items() if k not in taken})
    if options is not None or fixed.keys() - _GATEWAY_MADE:
        # What the client put in stream_options, a container or a choice field must encode;
        # the stream flag (a checked bool) and the gateway's own stream_options always do.
        json_body.encode(fixed)
    charged = endpoint.charged
    return PreparedRequest(
        model=model,
        stream=stream,
        strip_usage=strip_usage,
        endpoint_path=endpoint.path,
        prompt_estimate=estimate(rest, parsed, settings.prompt_estimate) if charged else 0,
        outputs=outputs,
        limit=limit,
        rule=rule,
        rest=rest,
        fixed=fixed,
        model_field=endpoint.model_fields[0],
        previous_response_id=previous,
        stored=parsed.get("store") is not False,
    )


def bodiless(
    endpoint: Endpoint,
    *,
    model: str = "",
    method: str,
    target: str = "",
    raw: bytes = b"",
    pinned: str | None = None,
) -> PreparedRequest:
    """A request whose body the gateway decides nothing in: a stored response's path (no
    body) or an engine admin path (the admin's JSON, canonically re-encoded, if any)."""
    body = json_body.encode(json_body.parse(raw)) if raw.strip() else b""
    return PreparedRequest(
        model=model,
        stream=False,
        strip_usage=False,
        endpoint_path=endpoint.path,
        prompt_estimate=0,
        outputs=0,
        limit=0,
        rule=None,
        rest=body,
        fixed={},
        body=body,
        model_field=None,
        method=method,
        target=target,
        content_type="application/json" if body else None,
        pinned=pinned,
    )


def for_engine(prepared: PreparedRequest, model_id: str) -> bytes:
    """The body the engine gets: the model is the engine's own id (an alias resolved), the
    limit written under every field of the endpoint's row (``prepared`` itself is unchanged:
    failover sends the same bytes to the next engine of the model)."""
    if prepared.model_field is None:  # nothing of the gateway's to write in
        return prepared.body
    decided: dict[str, Any] = {prepared.model_field: model_id, **prepared.fixed}
    if prepared.rule is not None:
        write_limit(prepared.rule, decided, prepared.limit)
    tail = json_body.encode(decided)
    return tail if prepared.rest == b"{}" else prepared.rest[:-1] + b"," + tail[1:]


def estimate_prompt_tokens(body: Mapping[str, Any], settings: Quotas | None = None) -> int:
    """The prompt estimate the gateway reserves for ``body`` (an already parsed body)."""
    settings = settings or Quotas()
    rest = json_body.encode({k: v for k, v in body.items() if k not in DECIDED})
    return estimate(rest, body, settings.prompt_estimate)
