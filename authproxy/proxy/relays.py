"""Which relay carries an engine's answer to the client, chosen by its content type.

- ``text/event-stream``: ``SseRelay``, event by event (usage read, an unasked usage chunk
  removed);
- ``application/x-ndjson``: ``NdjsonRelay``, line by line (Ollama);
- anything else, on an endpoint whose answer carries no usage (audio, a stored response, an
  engine admin path): ``RawRelay``, chunk by chunk as it comes, never held whole.

A JSON answer that carries usage is read whole instead (``forward.py``).
"""

from __future__ import annotations

from typing import Protocol

from authproxy.proxy.ndjson_relay import NdjsonRelay
from authproxy.proxy.sse_relay import SseRelay
from authproxy.proxy.usage import Dialect, Tokens

__all__ = ["RawRelay", "Relay", "relay_for"]


class Relay(Protocol):
    tokens: Tokens
    content_events: int
    done: bool  # the stream ended as its dialect ends one (else: cut short)
    response_id: str | None  # a Responses stream's id, once seen

    def feed(self, chunk: bytes) -> bytes: ...
    def finish(self) -> bytes: ...
    def error_event(self, message: str, code: str) -> bytes: ...


class RawRelay:
    """Bytes on as they come; the end of the body is the end of the answer."""

    def __init__(self) -> None:
        self.tokens = Tokens()
        self.content_events = 0
        self.done = True  # a cut is seen as a client error from aiohttp, not here
        self.response_id: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> bytes:
        return b""

    def error_event(self, message: str, code: str) -> bytes:
        return b""  # nothing can be added to a body of another format


def relay_for(
    content_type: str, *, dialect: Dialect | None, strip_usage: bool, whole: bool
) -> Relay | None:
    """The relay for an answer of ``content_type``; None: read it whole (``whole``: the
    endpoint needs the answer's usage or id)."""
    if content_type == "text/event-stream":
        return SseRelay(dialect=dialect or "openai", strip_usage=strip_usage)
    if content_type == "application/x-ndjson":
        return NdjsonRelay()
    return None if whole else RawRelay()
