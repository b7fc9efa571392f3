"""The forwarded endpoints: the engine APIs the gateway relays, each with its dialect and where
the reserved output limit goes. The URL table (``web/routes.py``) serves each at its path."""

from __future__ import annotations

from dataclasses import dataclass

from authproxy.proxy import output_limits
from authproxy.proxy.output_limits import OutputRule
from authproxy.proxy.usage import Dialect

__all__ = ["FORWARDED", "Endpoint"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    dialect: Dialect
    can_stream: bool
    takes_stream_options: bool  # accepts stream_options.include_usage (OpenAI streams)
    output: OutputRule | None  # where the reserved output limit goes; None: generates nothing


FORWARDED: dict[str, Endpoint] = {
    e.path: e
    for e in (
        Endpoint("/v1/chat/completions", "openai", True, True, output_limits.CHAT),
        Endpoint("/v1/completions", "openai", True, True, output_limits.COMPLETIONS),
        Endpoint("/v1/embeddings", "openai", False, False, None),
        Endpoint("/v1/messages", "anthropic", True, False, output_limits.MESSAGES),
    )
}
