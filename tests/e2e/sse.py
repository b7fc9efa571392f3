"""Minimal server-sent-events reader for end-to-end tests (aiohttp responses)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class SSEEvent:
    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


async def read_sse(resp: aiohttp.ClientResponse) -> list[SSEEvent]:
    """Read the whole stream and return its events in order (``[DONE]`` included)."""
    events: list[SSEEvent] = []
    event: str | None = None
    data: list[str] = []
    async for raw in resp.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if data:
                events.append(SSEEvent(event, "\n".join(data)))
            event, data = None, []
        elif line.startswith("event:"):
            event = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].lstrip())
    if data:
        events.append(SSEEvent(event, "\n".join(data)))
    return events


def sse_events(raw: bytes) -> list[Any]:
    """The JSON data of every event of a whole stream (``[DONE]`` left out)."""
    out = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip() for line in block.split("\n") if line.startswith("data:")]
        if data and data != ["[DONE]"]:
            out.append(json.loads("\n".join(data)))
    return out
