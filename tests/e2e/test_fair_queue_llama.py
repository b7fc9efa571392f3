"""Issue 13 against the real llama-server (2 slots): one user keeps 12 long streams going, another
asks for a few tokens a second later. Without a capacity the engine queues first come first
served and the light user waits behind the whole backlog; with `max_inflight: 2` the gateway's
fair queue gives the light user the first slot that frees. Both gateways run in this test, in
front of the same engine, and the figures are printed (README, "Fair queue").

Also: `max_inflight: auto` reads the slots from llama-server's own `/props`."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .gateway import Gateway
from .llama_server import LlamaServer

HEAVY = 12  # the heavy user's concurrent streams
HEAVY_TOKENS = 2000  # one heavy request alone: about 3 s on the 2-core test machine
LIGHT_TOKENS = 8
LIGHT_AT = 1.0  # seconds after the heavy user's streams were sent


@dataclass(frozen=True)
class Timing:
    status: int
    ttft: float  # seconds from sending to the first content event
    took: float  # seconds from sending to the end of the stream
    completion: int | None  # the engine's own count


@dataclass(frozen=True)
class Run:
    light: Timing
    heavy: list[Timing]


@dataclass(frozen=True)
class Deployed:
    gateway: Gateway
    heavy_key: str
    light_key: str


@contextmanager
def deployed(
    workdir: Path, engine: LlamaServer, max_inflight: int | str | None
) -> Iterator[Deployed]:
    upstream: dict[str, Any] = {"name": "llama", "url": engine.base_url, "models": ["tiny"]}
    if max_inflight is not None:
        upstream["max_inflight"] = max_inflight
    settings = {
        "upstreams": [upstream],
        "roles": {"admin": {"models": ["*"]}, "user": {"models": ["*"]}},
        "log_level": "warning",
    }
    workdir.mkdir(exist_ok=True)
    gateway = Gateway(workdir=workdir, settings=settings)
    gateway.run("init")
    keys = {}
    for name in ("heavy", "light"):
        gateway.run("users", "add", name)
        keys[name] = gateway.run("keys", "create", name).strip()
    with gateway:
        yield Deployed(gateway, keys["heavy"], keys["light"])


async def stream(session: aiohttp.ClientSession, to: Deployed, key: str, tokens: int) -> Timing:
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Tell me a long story."}],
        "max_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    url = to.gateway.base_url + "/v1/chat/completions"
    sent = time.monotonic()
    first, completion = None, None
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        async for line in r.content:
            if not line.startswith(b"data: {"):
                continue
            chunk = json.loads(line[6:])
            if first is None and any(c["delta"].get("content") for c in chunk["choices"]):
                first = time.monotonic() - sent
            if chunk.get("usage"):
                completion = chunk["usage"]["completion_tokens"]
        status = r.status
    took = time.monotonic() - sent
    return Timing(status, first if first is not None else took, took, completion)


async def scenario(to: Deployed) -> Run:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=240)) as session:
        heavy = [
            asyncio.create_task(stream(session, to, to.heavy_key, HEAVY_TOKENS))
            for _ in range(HEAVY)
        ]
        await asyncio.sleep(LIGHT_AT)
        light = await stream(session, to, to.light_key, LIGHT_TOKENS)
        return Run(light, list(await asyncio.gather(*heavy)))


def test_a_light_user_gets_the_next_free_slot_not_the_back_of_the_backlog(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    assert llama_server.parallel == 2
    with deployed(tmp_path / "fair", llama_server, 2) as fair:
        alone = asyncio.run(_alone(fair))
        with_queue = asyncio.run(scenario(fair))
    with deployed(tmp_path / "fifo", llama_server, None) as fifo:
        without = asyncio.run(scenario(fifo))

    one_heavy = min(t.took for t in with_queue.heavy)  # the first two, side by side
    print(
        f"\none heavy request ({HEAVY_TOKENS} tokens): {alone.took:.1f} s alone, "
        f"{one_heavy:.1f} s two at a time\n"
        f"light user's time to first token: {with_queue.light.ttft:.1f} s with the fair queue "
        f"(max_inflight: 2), {without.light.ttft:.1f} s without (the engine's FIFO)\n"
        f"heavy user's last request done after: {max(t.took for t in with_queue.heavy):.1f} s "
        f"with, {max(t.took for t in without.heavy):.1f} s without; median "
        f"{statistics.median(t.took for t in with_queue.heavy):.1f} s with, "
        f"{statistics.median(t.took for t in without.heavy):.1f} s without"
    )
    for run in (with_queue, without):
        assert run.light.status == 200 and run.light.completion == LIGHT_TOKENS
        assert [(t.status, t.completion) for t in run.heavy] == [(200, HEAVY_TOKENS)] * HEAVY
    # The light user's first token comes within about the time one heavy request takes (the
    # two in flight end, the light request is next), not after the whole backlog.
    assert with_queue.light.ttft < one_heavy + 1.0
    assert without.light.ttft > 3 * with_queue.light.ttft


async def _alone(to: Deployed) -> Timing:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        return await stream(session, to, to.heavy_key, HEAVY_TOKENS)


def test_max_inflight_auto_reads_llama_servers_slots(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    with deployed(tmp_path, llama_server, "auto") as auto:
        url = auto.gateway.base_url + "/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (loopback, http)
            text = resp.read().decode()
    assert 'authproxy_queue_capacity{upstream="llama"} 2.0' in text.splitlines()
