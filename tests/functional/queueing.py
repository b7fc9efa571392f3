"""Shared pieces of the fair-queue tests: a streamed chat timed from the client, tagged so the
engine's record tells whose request it ran, and the gateway's queue series read from /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from fakes.engine import FakeEngine

from .helpers import CHAT, Gateway, bearer
from .test_metrics import scrape

SLOW = 0.05  # seconds between the fake engine's tokens in a "long" stream


def tagged_chat(tag: str, *, tokens: int = 8, token_delay: float = SLOW) -> dict[str, Any]:
    """A streamed chat of exactly ``tokens`` tokens whose prompt names ``tag``."""
    return {
        "model": "tiny",
        "messages": [{"role": "user", "content": f"request {tag}"}],
        "max_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
        "fake": {"token_delay": token_delay},
    }


@dataclass(frozen=True)
class Streamed:
    status: int
    ttft: float | None  # seconds from sending to the first content event
    took: float  # seconds from sending to the end
    body: bytes
    headers: dict[str, str]


async def stream(
    session: aiohttp.ClientSession,
    gw: Gateway,
    key: str,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Streamed:
    sent = time.monotonic()
    first = None
    chunks = []
    async with session.post(
        gw.url(CHAT), headers={**bearer(key), **(headers or {})}, json=body
    ) as r:
        async for chunk in r.content.iter_any():
            if first is None and r.status == 200 and b'"content"' in chunk:
                first = time.monotonic() - sent
            chunks.append(chunk)
        return Streamed(r.status, first, time.monotonic() - sent, b"".join(chunks), dict(r.headers))


def tags(engine: FakeEngine) -> list[str]:
    """Whose requests the engine got, in the order it got them."""
    out = []
    for q in engine.requests:
        if q.path == CHAT and isinstance(q.body, dict):
            out.append(q.body["messages"][0]["content"].removeprefix("request "))
    return out


async def metric(
    session: aiohttp.ClientSession, gw: Gateway, name: str, **labels: str
) -> float | None:
    """The sample of the gateway's /metrics with exactly these labels, or None if absent."""
    return (await scrape(session, gw)).get((name, frozenset(labels.items())))


async def waiting(session: aiohttp.ClientSession, gw: Gateway, upstream: str = "local") -> float:
    """Requests waiting in the upstream's fair queue now (its /metrics)."""
    return await metric(session, gw, "authproxy_queue_waiting", upstream=upstream) or 0.0


async def equals(value: Awaitable[float | None], want: float) -> bool:
    return await value == want


async def until(predicate: Callable[[], Any], within: float = 5.0) -> None:
    """Poll ``predicate`` (sync or async) until it is true; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while True:
            got = predicate()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return
            await asyncio.sleep(0.02)


def queue_upstream(url: str, *, capacity: int | str = 1, name: str = "local") -> dict[str, Any]:
    return {"name": name, "url": url, "models": ["tiny", "big"], "max_inflight": capacity}
