"""Reading token usage out of engine responses, in each API dialect.

OpenAI dialect: ``usage.prompt_tokens`` / ``usage.completion_tokens``; in a stream the engine
sends them in a chunk of their own when asked with ``stream_options.include_usage``
(``sse_relay.py`` reads it there). Anthropic dialect (``/v1/messages``): ``input_tokens`` in
``message_start``, ``output_tokens`` in ``message_delta``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["USAGE_KEY", "Dialect", "Tokens", "read_usage", "usage_from_body"]

Dialect = Literal["openai", "anthropic"]

USAGE_KEY = b'"usage"'
_DECODER = json.JSONDecoder()


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
    else:
        # Anthropic counts cached prompt tokens apart from input_tokens: the prompt is the sum.
        prompt = _as_int(usage.get("input_tokens"))
        if prompt is not None:
            for extra in ("cache_read_input_tokens", "cache_creation_input_tokens"):
                prompt += _as_int(usage.get(extra)) or 0
        completion = usage.get("output_tokens")
    if _as_int(prompt) is not None:
        into.prompt = _as_int(prompt)
    if _as_int(completion) is not None:
        into.completion = _as_int(completion)


def usage_from_body(body: bytes, dialect: Dialect) -> Tokens:
    """Usage of a whole JSON response, without parsing a large body (embeddings) in full.

    A literal ``"usage"`` can only be a key (inside JSON strings quotes are escaped), and engines
    put it last, so the value after the last occurrence is decoded on its own.
    """
    tokens = Tokens()
    at = body.rfind(USAGE_KEY)
    if at < 0:
        return tokens
    text = body[at + len(USAGE_KEY) :].decode("utf-8", "replace").lstrip()
    if not text.startswith(":"):
        return tokens
    try:
        value, _ = _DECODER.raw_decode(text[1:].lstrip())
    except ValueError:
        return tokens
    read_usage(value, dialect, tokens)
    return tokens
