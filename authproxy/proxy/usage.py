"""Reading token usage out of engine responses, in each API dialect.

- ``openai``: ``usage.prompt_tokens`` / ``usage.completion_tokens`` (an answer with only
  ``total_tokens``, as vLLM's rerank sends, is all prompt); in a stream the engine sends them in
  a chunk of their own when asked with ``stream_options.include_usage`` (``sse_relay.py``).
- ``anthropic`` (``/v1/messages``): ``input_tokens`` in ``message_start``, ``output_tokens`` in
  ``message_delta``; cached prompt tokens are counted apart (``cache_read_input_tokens``,
  ``cache_creation_input_tokens``: llama-server's stream reports them so), the prompt is the sum.
- ``responses`` (``/v1/responses``, and transcriptions that report tokens): ``usage.input_tokens``
  (cached ones included) / ``usage.output_tokens``; in a stream, in the ``response.completed``
  event only (``response.incomplete`` and ``response.failed`` too).
- ``ollama`` (``/api/*``): top-level ``prompt_eval_count`` / ``eval_count``, in the last line of
  a stream (``"done": true``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from authproxy.proxy.json_body import scanner

__all__ = ["USAGE_KEY", "Dialect", "Tokens", "read_usage", "usage_from_body"]

Dialect = Literal["openai", "anthropic", "responses", "ollama"]

USAGE_KEY = b'"usage"'
_OLLAMA_KEYS = (b'"prompt_eval_count"', b'"eval_count"')
_scan = scanner(json.JSONDecoder())  # the value after a key, without raw_decode's frame


@dataclass(slots=True)
class Tokens:
    prompt: int | None = None
    completion: int | None = None

    @property
    def known(self) -> bool:
        return self.prompt is not None or self.completion is not None


def _as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def read_usage(usage: Any, dialect: Dialect, into: Tokens) -> None:
    if not isinstance(usage, dict):
        return
    if dialect == "openai":
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if prompt is None and completion is None:
            prompt = usage.get("total_tokens")
    elif dialect == "responses":
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    elif dialect == "ollama":
        prompt, completion = usage.get("prompt_eval_count"), usage.get("eval_count")
    else:
        # Anthropic counts cached prompt tokens apart from input_tokens: the prompt is the sum.
        prompt = _as_int(usage.get("input_tokens"))
        if prompt is not None:
            for extra in ("cache_read_input_tokens", "cache_creation_input_tokens"):
                prompt += _as_int(usage.get(extra)) or 0
        completion = usage.get("output_tokens")
    prompt, completion = _as_int(prompt), _as_int(completion)
    if prompt is not None:
        into.prompt = prompt
    if completion is not None:
        into.completion = completion


def usage_from_body(body: bytes, dialect: Dialect) -> Tokens:
    """Usage of a whole JSON response, without parsing a large body (embeddings) in full.

    A literal ``"usage"`` can only be a key (inside JSON strings quotes are escaped), and engines
    put it last, so the value after the last occurrence is decoded on its own.
    """
    tokens = Tokens()
    if dialect == "ollama":  # the counts are top-level fields of the answer
        counts = {key.strip(b'"').decode(): _value_after(body, key) for key in _OLLAMA_KEYS}
        read_usage(counts, dialect, tokens)
        return tokens
    read_usage(_value_after(body, USAGE_KEY), dialect, tokens)
    return tokens


def _value_after(body: bytes, key: bytes) -> Any:
    """The JSON value of the last occurrence of ``key`` (a quoted key) in ``body``, or None."""
    at = body.rfind(key)
    if at < 0:
        return None
    text = body[at + len(key) :].decode("utf-8", "replace").lstrip()
    if not text.startswith(":"):
        return None
    try:
        value, _ = _scan(text[1:].lstrip(), 0)
    except (StopIteration, ValueError, RecursionError):  # not JSON there: no usage known
        return None
    return value
