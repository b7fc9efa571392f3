"""Relaying an engine's SSE stream to the client event by event, reading its usage on the way.

Whole events go on byte for byte as they complete; the only one changed is the usage chunk the
gateway asked for (``stream_options.include_usage``) and the client did not: it is removed, or
rewritten without its ``usage``. Content events are counted, so a stream cut short can still
be charged an estimate of what the client received. A Responses stream also names the
response's id in its first event (``response.created``): it is read there, so that its creator
is on record before the client sees it.
"""

from __future__ import annotations

import json
import re

from authproxy.proxy.usage import USAGE_KEY, Dialect, Tokens, read_usage

__all__ = ["END_MARKERS", "SseRelay", "sse_error"]

_CONTENT = re.compile(rb'"(?:content|text|partial_json|arguments|delta)":\s*"[^"]')
_SEPARATORS = (b"\n\n", b"\r\n\r\n")
# What the last event of a complete stream carries, in each dialect.
END_MARKERS = (
    b"[DONE]",
    b'"message_stop"',
    b'"response.completed"',
    b'"response.incomplete"',
    b'"response.failed"',
    b'"transcript.text.done"',
)
_RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})


def sse_error(message: str, code: str) -> bytes:
    """An error the gateway adds to a stream it cannot finish (the OpenAI error shape)."""
    body = {"error": {"message": message, "type": "upstream_error", "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _ends(data: bytes) -> bool:
    # One substring search per marker: several times faster than one alternation regex.
    for marker in END_MARKERS:  # noqa: SIM110 - a loop: no generator per call
        if marker in data:
            return True
    return False


def _data_of(event: bytes) -> tuple[list[bytes], bytes | None]:
    """Split an SSE event into its non-data lines and its joined data payload."""
    other: list[bytes] = []
    data: list[bytes] = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line:
            other.append(line)
    return other, (b"\n".join(data) if data else None)


class SseRelay:
    """Feeds upstream bytes, returns what to send on at once; collects usage on the way.

    Whole events are passed through byte for byte; only the event carrying the usage the
    gateway asked for (and the client did not) is removed or rewritten.
    """

    def __init__(self, *, dialect: Dialect, strip_usage: bool) -> None:
        self.dialect = dialect
        self.strip_usage = strip_usage
        self.tokens = Tokens()
        self.content_events = 0
        self.done = False
        self.response_id: str | None = None
        self._want_id = dialect == "responses"
        self._buf = b""

    def error_event(self, message: str, code: str) -> bytes:
        return sse_error(message, code)

    def feed(self, chunk: bytes) -> bytes:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" in buf or self._want_id:
            return self._feed_events(buf, 0)
        at = buf.find(USAGE_KEY)
        if at < 0:
            return self._feed_plain(buf)
        # The usage chunk comes last, often in one read with the events before it: those go
        # on as one slice, and only the event carrying usage (and any after it) one by one.
        head = buf.rfind(b"\n\n", 0, at) + 2
        if head < 2:
            return self._feed_events(buf, 0)
        return self._pass(buf[:head]) + self._feed_events(buf, head)

    def _feed_events(self, buf: bytes, start: int) -> bytes:
        out: list[bytes] = []
        while True:
            end, sep_len = self._next_boundary(buf, start)
            if end < 0:
                break
            event = buf[start : end + sep_len]
            start = end + sep_len
            kept = self._event(event)
            if kept:
                out.append(kept)
        self._buf = buf[start:]
        return b"".join(out)

    def _feed_plain(self, buf: bytes) -> bytes:
        """The common case — LF-separated events, none carrying usage: nothing to rewrite, so
        the complete events go on as one slice, counted and checked in a single pass each."""
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._buf = buf
            return b""
        self._buf = buf[end + 2 :]
        return self._pass(buf[: end + 2])

    def _pass(self, complete: bytes) -> bytes:
        """Whole events that go on unchanged: counted, and checked for the stream's end."""
        self.content_events += len(_CONTENT.findall(complete))
        if _ends(complete):
            self.done = True
        return complete

    def finish(self) -> bytes:
        """The tail that never got its blank line (an engine cut off mid-event)."""
        rest, self._buf = self._buf, b""
        return rest

    @staticmethod
    def _next_boundary(buf: bytes, start: int) -> tuple[int, int]:
        best, length = -1, 0
        for sep in _SEPARATORS:
            at = buf.find(sep, start)
            if at >= 0 and (best < 0 or at < best):
                best, length = at, len(sep)
        return best, length

    def _event(self, event: bytes) -> bytes:
        if USAGE_KEY not in event and not self._want_id:
            if _ends(event):
                self.done = True
            elif _CONTENT.search(event):
                self.content_events += 1
            return event
        other, data = _data_of(event)
        if data is None:
            return event
        try:
            obj = json.loads(data)
        except ValueError:
            return event
        if not isinstance(obj, dict):
            return event
        if self.dialect == "responses":
            return self._responses_event(event, obj)
        if self.dialect == "anthropic":
            kind = obj.get("type")
            if kind == "message_start" and isinstance(obj.get("message"), dict):
                start = obj["message"].get("usage")
                if isinstance(start, dict):  # its output_tokens is a placeholder; skip it
                    read_usage({**start, "output_tokens": None}, "anthropic", self.tokens)
            elif kind == "message_delta":
                read_usage(obj.get("usage"), "anthropic", self.tokens)
            if kind == "message_stop":
                self.done = True
            if _CONTENT.search(event):
                self.content_events += 1
            return event
        usage = obj.get("usage")
        if not isinstance(usage, dict):
            if _CONTENT.search(event):
                self.content_events += 1
            return event
        read_usage(usage, "openai", self.tokens)
        if not self.strip_usage:
            return event
        choices = obj.get("choices")
        if not choices:
            return b""  # the usage-only chunk the client did not ask for
        self.content_events += 1 if _CONTENT.search(event) else 0
        del obj["usage"]
        lines = [*other, b"data: " + json.dumps(obj, separators=(",", ":")).encode()]
        return b"\n".join(lines) + b"\n\n"

    def _responses_event(self, event: bytes, obj: dict[str, object]) -> bytes:
        """``response.created`` names the id; ``response.completed`` (or ``.incomplete``,
        ``.failed``) carries the usage and ends the stream. Passed on unchanged."""
        response = obj.get("response")
        if isinstance(response, dict):
            if self._want_id and isinstance(response.get("id"), str):
                self.response_id, self._want_id = response["id"], False
            if obj.get("type") in _RESPONSE_ENDS:
                read_usage(response.get("usage"), "responses", self.tokens)
        elif "usage" in obj:  # a transcription stream's last event
            read_usage(obj.get("usage"), "responses", self.tokens)
        if _ends(event):
            self.done = True
        elif _CONTENT.search(event):
            self.content_events += 1
        return event
