"""Relaying an engine's NDJSON stream (Ollama's native API) line by line, reading its usage.

Ollama streams one JSON object a line; the last one (``"done": true``) carries the counts,
``prompt_eval_count`` and ``eval_count``. Whole lines go on byte for byte as they complete;
content lines are counted, so a stream cut short can still be charged an estimate.
"""

from __future__ import annotations

import json
import re

from authproxy.proxy.usage import Tokens, read_usage

__all__ = ["NdjsonRelay", "ndjson_error"]

_CONTENT = re.compile(rb'"(?:content|response|thinking)":\s*"[^"]')
_DONE = re.compile(rb'"done":\s*true')


def ndjson_error(message: str, code: str) -> bytes:
    """An error line as Ollama writes one mid-stream (``{"error": "..."}``), with our code."""
    return json.dumps({"error": message, "code": code}).encode() + b"\n"


class NdjsonRelay:
    """Feeds upstream bytes, returns the complete lines at once; reads the final counts."""

    def __init__(self) -> None:
        self.tokens = Tokens()
        self.content_events = 0
        self.done = False
        self.response_id: str | None = None  # Ollama stores nothing
        self._buf = b""

    def error_event(self, message: str, code: str) -> bytes:
        return ndjson_error(message, code)

    def feed(self, chunk: bytes) -> bytes:
        buf = self._buf + chunk if self._buf else chunk
        end = buf.rfind(b"\n")
        if end < 0:
            self._buf = buf
            return b""
        complete, self._buf = buf[: end + 1], buf[end + 1 :]
        self.content_events += sum(1 for _ in _CONTENT.finditer(complete))
        if _DONE.search(complete):
            for line in complete.splitlines():
                if _DONE.search(line):
                    self._last(line)
        return complete

    def _last(self, line: bytes) -> None:
        try:
            obj = json.loads(line)
        except ValueError:
            return
        if isinstance(obj, dict) and obj.get("done") is True:
            self.done = True
            read_usage(obj, "ollama", self.tokens)

    def finish(self) -> bytes:
        """The tail that never got its newline (an engine cut off mid-line)."""
        rest, self._buf = self._buf, b""
        return rest
