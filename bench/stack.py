"""Starting every server of the benchmark: three upstreams, and in front of each of them
Caddy's reverse_proxy, the floor and the gateway.

Paths: `direct` (the upstream itself), `caddy` (Caddy's reverse_proxy), `floor` (the bare
aiohttp proxy), `gateway` (authproxy, one process for all three). Upstreams, each known to the
gateway by its model name: `static` (Caddy answering a fixed completion), `fake`
(tests/fakes/engine.py, no token delay), `tiny` (the real llama-server).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.latency import Target
from bench.procs import (
    Children,
    gateway_port,
    init_gateway,
    start_engine,
    start_gateway,
    write_gateway_config,
)
from bench.servers import start_caddy_proxy, start_caddy_static, start_floor, start_llama

__all__ = ["PATHS", "UPSTREAMS", "Running", "chat_body", "start_all"]

PATHS = ("direct", "caddy", "floor", "gateway")
UPSTREAMS = ("static", "fake", "tiny")


@dataclass(frozen=True, slots=True)
class Running:
    """Per upstream, each path's target and the pid of the process serving that path."""

    targets: dict[str, dict[str, Target]]
    pids: dict[str, dict[str, int]]


def chat_body(model: str, max_tokens: int, *, stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": "Say hello in a few words."}],
        "max_tokens": max_tokens,
    }
    if stream:
        body["stream"] = True
    if model == "fake":
        body["ignore_eos"] = True  # the fake engine's answer then runs to max_tokens
    return json.dumps(body, separators=(",", ":")).encode()


def start_all(children: Children, *, access_log: bool) -> Running:
    print("starting: upstreams (Caddy static, fake engine, llama-server) ...", flush=True)
    static_pid, static_port = start_caddy_static(children)
    engine, engine_port = start_engine(children, 0.0, "fake")
    llama_pid, llama_port = start_llama(children)
    direct = {"static": static_port, "fake": engine_port, "tiny": llama_port}
    print("starting: Caddy reverse_proxy, the floor proxies, the gateway ...", flush=True)
    caddy_pid, caddy_ports = start_caddy_proxy(children, direct)
    floors = {name: start_floor(children, f"floor-{name}", port) for name, port in direct.items()}
    config = write_gateway_config(children.workdir, direct, access_log=access_log)
    key = init_gateway(config)
    gateway = start_gateway(children, config)
    gw_port = gateway_port(config)
    direct_pids = {"static": static_pid, "fake": engine.pid, "tiny": llama_pid}
    targets: dict[str, dict[str, Target]] = {}
    pids: dict[str, dict[str, int]] = {}
    for name in UPSTREAMS:
        targets[name] = {
            "direct": Target("direct", direct[name], None),
            "caddy": Target("caddy", caddy_ports[name], None),
            "floor": Target("floor", floors[name][1], None),
            "gateway": Target("gateway", gw_port, key),
        }
        pids[name] = {
            "direct": direct_pids[name],
            "caddy": caddy_pid,
            "floor": floors[name][0],
            "gateway": gateway.pid,
        }
    return Running(targets=targets, pids=pids)
