"""The prompt estimate: what a request reserves for its prompt before the engine counts it.

It is an upper bound, not a guess: every byte of the request body the engine reads as prompt
material counts as one token — the canonical UTF-8 encoding of everything except the fields the
gateway decides on (model, stream flags, output limits), so JSON's quotes, keys and escapes are
counted too — plus ``per_message`` tokens for each message, prompt or input, and
``per_request`` tokens for the chat template's own text (its role markers, a default system
prompt, the generation prompt, BOS).

Why that bounds the engine's count: a tokenizer never spends more than one token per byte of
text (byte-level BPE and SentencePiece with byte fallback make a token of at least one byte; the
test model's tokenizer is exactly one token a byte), and a chat template adds only its own
fixed text around the material it is given. The bound holds as long as that fixed text stays
within the allowances (``quotas.prompt_estimate``). Images and audio sent inline (base64) are
the exception: each counts ``per_media`` tokens, an allowance rather than a bound, as is
anything an engine fetches from a URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from authproxy.config import PromptEstimate
from authproxy.output_limits import prompt_count

_BASE64_MARK = b";base64,"


def estimate(canonical: bytes, body: Mapping[str, Any], allowance: PromptEstimate) -> int:
    """``canonical``: the encoding of ``body`` without the gateway's fields (``{}`` if none)."""
    size = len(canonical) if len(canonical) > 2 else 0
    media, media_bytes = 0, 0
    if _BASE64_MARK in canonical or b'"data"' in canonical:
        media, media_bytes = _inline_media(body)
    return (
        size
        - media_bytes
        + media * allowance.per_media
        + _parts(body) * allowance.per_message
        + allowance.per_request
    )


def _parts(body: Mapping[str, Any]) -> int:
    """Messages (and an Anthropic ``system``), prompts and inputs: each gets template text."""
    parts = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        parts += len(messages)
    if body.get("system"):
        parts += 1
    for name in ("prompt", "input"):
        if body.get(name) is not None:
            parts += prompt_count(body[name])
    return parts


def _inline_media(body: Mapping[str, Any]) -> tuple[int, int]:
    """Inline images and audio in the messages: (how many, their encoded bytes)."""
    count, size = 0, 0
    messages = body.get("messages")
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            data = _media_data(part) if isinstance(part, dict) else None
            if data is not None:
                count += 1
                size += len(data.encode())
    return count, size


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
