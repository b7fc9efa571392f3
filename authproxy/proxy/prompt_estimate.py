"""The prompt estimate: what a request reserves for its prompt before the engine counts it.

By default it is an upper bound, not a guess. Every byte of what the engine reads as prompt
material counts as one token: the canonical UTF-8 encoding of the body except the fields the
gateway decides on (model, stream flags, output limits), so JSON's quotes, keys and escapes are
counted too, and each space three times over. On top come ``per_message`` tokens for each
message, prompt or input, and ``per_request`` tokens for the chat template's own text (role
markers, a default system prompt, the generation prompt, BOS).

Why that bounds the engine's count: byte-level BPE tokenizers (Llama 3, Qwen, GPT-style) make
no token of less than one byte; SentencePiece ones (Llama 2, Mistral, Gemma) do the same after
writing every space as ``▁``, three bytes — hence the spaces; and a chat template adds only its
own fixed text around the material it is given. The bound holds as long as that fixed text
stays within the allowances (``quotas.prompt_estimate``); the test model's tokenizer (bytes
only, no ``▁``) is the worst case and the end-to-end tests hold it to the bound. Raising
``bytes_per_token`` reserves closer to what real text costs (about 4 bytes a token in English)
and turns the bound into a guess. Images and audio sent inline (base64) count ``per_media``
tokens each, an allowance rather than a bound, as is anything an engine fetches from a URL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from authproxy.config.schema import PromptEstimate
from authproxy.proxy.output_limits import prompt_count

__all__ = ["estimate"]


def estimate(canonical: bytes, body: Mapping[str, Any], allowance: PromptEstimate) -> int:
    """``canonical``: the encoding of ``body`` without the gateway's fields (``{}`` if none)."""
    size = len(canonical) + 2 * canonical.count(b" ") if len(canonical) > 2 else 0
    parts, media, media_bytes = _messages(body.get("messages"))
    if body.get("system"):
        parts += 1
    for name in ("prompt", "input"):
        if body.get(name) is not None:
            parts += prompt_count(body[name])
    return (
        math.ceil((size - media_bytes) / allowance.bytes_per_token)
        + media * allowance.per_media
        + parts * allowance.per_message
        + allowance.per_request
    )


def _messages(messages: Any) -> tuple[int, int, int]:
    """(messages, inline images and audio in them, those media's encoded bytes): each message
    gets template text (as an Anthropic ``system``, each prompt and input do)."""
    if not isinstance(messages, list):
        return 0, 0, 0
    count, size = 0, 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            data = _media_data(part) if isinstance(part, dict) else None
            if data is not None:
                count += 1
                size += len(data.encode())
    return len(messages), count, size


def _media_data(part: dict[str, Any]) -> str | None:
    kind = part.get("type")
    if kind == "image_url":  # OpenAI: {"image_url": {"url": "data:image/png;base64,..."}}
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        return url if isinstance(url, str) and url.startswith("data:") else None
    if kind == "input_audio":  # OpenAI: {"input_audio": {"data": "<base64>", "format": ...}}
        audio = part.get("input_audio")
        data = audio.get("data") if isinstance(audio, dict) else None
        return data if isinstance(data, str) else None
    if kind in ("image", "document"):  # Anthropic: {"source": {"type": "base64", "data": ...}}
        source = part.get("source")
        if isinstance(source, dict) and source.get("type") == "base64":
            data = source.get("data")
            return data if isinstance(data, str) else None
    return None
