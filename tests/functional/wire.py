"""Talking HTTP and SSE at the byte level, and the one error shape."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# -- raw HTTP: for paths and headers an HTTP client library would normalise ----------------


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(
    port: int,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    within: float = 15.0,
) -> RawResponse:
    """Send exactly this request line and these headers; read one response."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    if not any(k.lower() == "connection" for k, _ in headers):
        lines.append("Connection: close")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    async with asyncio.timeout(within):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(data)
            await writer.drain()
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            status_line, *header_lines = head.strip("\r\n").split("\r\n")
            parsed: dict[str, str] = {}
            for line in header_lines:
                name, _, value = line.partition(":")
                parsed[name.strip().lower()] = value.strip()
            if "content-length" in parsed:
                payload = await reader.readexactly(int(parsed["content-length"]))
            elif parsed.get("transfer-encoding", "").lower() == "chunked":
                payload = await _read_chunked(reader)
            else:
                payload = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    return RawResponse(int(status_line.split()[1]), parsed, payload)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return out
        out += await reader.readexactly(size)
        await reader.readexactly(2)


# -- SSE and error shapes ------------------------------------------------------------------


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(raw: bytes) -> list[SseEvent]:
    events: list[SseEvent] = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if data:
            events.append(SseEvent(name, "\n".join(data)))
    return events


def assert_error_shape(body: Any) -> dict[str, str]:
    """Exactly {"error": {"message": str, "type": str, "code": str}}; returns the inner dict."""
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    err = body["error"]
    assert isinstance(err, dict), body
    assert set(err) == {"message", "type", "code"}, body
    assert all(isinstance(err[k], str) and err[k] for k in err), body
    return err
