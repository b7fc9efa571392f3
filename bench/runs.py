"""Starting every server of the benchmark, and the measurements, in order.

Paths: `direct` (the upstream itself), `caddy` (Caddy's reverse_proxy), `floor` (the bare
aiohttp proxy), `gateway` (authproxy). Upstreams, each known to the gateway by its model name:
`static` (Caddy answering a fixed completion), `fake` (tests/fakes/engine.py, no token delay),
`tiny` (the real llama-server).
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass

from bench.latency import Target, measure_latency
from bench.phases import Bench, Phase, PhaseResult, run_phase
from bench.procs import (
    HOST,
    BenchError,
    Children,
    gateway_port,
    init_gateway,
    start_engine,
    start_gateway,
    system_busy_seconds,
    write_gateway_config,
)
from bench.report import Figures
from bench.servers import start_caddy_proxy, start_caddy_static, start_floor, start_llama
from bench.ttft import measure_ttft

__all__ = ["Running", "Settings", "background_load", "chat_body", "measure_all", "start_all"]

CHAT_PATH = "/v1/chat/completions"
UPSTREAMS = ("static", "fake", "tiny")
TTFT_TOKENS = 8


@dataclass(frozen=True, slots=True)
class Settings:
    requests: int
    ttft_requests: int
    seconds: float
    warmup_seconds: float
    rounds: int
    retries: int
    connections: int
    streams: int
    stream_tokens: int
    threads: int
    access_log: bool

    @property
    def bench(self) -> Bench:
        return Bench(
            threads=self.threads,
            seconds=self.seconds,
            warmup_seconds=self.warmup_seconds,
            rounds=self.rounds,
            retries=self.retries,
        )


@dataclass(frozen=True, slots=True)
class Running:
    """Per upstream, each path's target and the pid of the process serving that path."""

    targets: dict[str, dict[str, Target]]
    pids: dict[str, dict[str, int]]


def background_load(seconds: float = 1.0) -> float | None:
    """% of one core the machine is busy before the benchmark starts anything."""
    before = system_busy_seconds()
    time.sleep(seconds)
    after = system_busy_seconds()
    if before is None or after is None:
        return None
    return 100 * (after - before) / seconds


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


def start_all(children: Children, settings: Settings) -> Running:
    print("starting: upstreams (Caddy static, fake engine, llama-server) ...", flush=True)
    static_pid, static_port = start_caddy_static(children)
    engine, engine_port = start_engine(children, 0.0, "fake")
    llama_pid, llama_port = start_llama(children)
    direct = {"static": static_port, "fake": engine_port, "tiny": llama_port}
    print("starting: Caddy reverse_proxy, the floor proxies, the gateway ...", flush=True)
    caddy_pid, caddy_ports = start_caddy_proxy(children, direct)
    floors = {name: start_floor(children, f"floor-{name}", port) for name, port in direct.items()}
    config = write_gateway_config(children.workdir, direct, access_log=settings.access_log)
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


def events_per_stream(port: int, body: bytes) -> int:
    """SSE events in one stream straight from an upstream (what every path relays)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("POST", CHAT_PATH, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    if resp.status != 200 or b"[DONE]" not in data:
        raise BenchError(f"upstream on port {port}: HTTP {resp.status}: {data[:300]!r}")
    return sum(1 for e in data.split(b"\n\n") if e.strip())


def wait_until_idle(port: int, within: float = 60) -> None:
    """Until llama-server's slots are all idle: a load phase that ended mid-stream leaves it
    finishing (or dropping) what the load generator abandoned."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        try:
            conn.request("GET", "/slots")
            slots = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        if not any(slot.get("is_processing") for slot in slots):
            return
        time.sleep(0.1)
    raise BenchError(f"llama-server still busy {within:g} s after the load stopped")


def _phase(running: Running, upstream: str, name: str, body: bytes, conns: int) -> Phase:
    port = running.targets[upstream]["direct"].port
    return Phase(
        name=name,
        path=CHAT_PATH,
        body=body,
        connections=conns,
        targets=running.targets[upstream],
        pids=running.pids[upstream],
        settle=(lambda: wait_until_idle(port)) if upstream == "tiny" else None,
    )


def _detail(name: str, result: PhaseResult, unit: str, per: float) -> list[str]:
    lines = [f"  {name}:"]
    for path, r in result.best.items():
        cpu = r.cpu_us_per_request.get("server")
        noise = "/".join(f"{n:.0f}" for n in result.other_cpu.get(path, []))
        line = (
            f"    {path:<8} {r.rps * per:9,.0f} {unit}/s, p50 {r.p50_ms:.1f} ms; CPU % of a core: "
            f"server {r.cpu_percent.get('server', 0):.0f}"
            f" ({'-' if cpu is None else f'{cpu / per:.1f}'} µs/{unit})"
        )
        if "upstream" in r.cpu_percent:
            line += f", upstream {r.cpu_percent['upstream']:.0f}"
        line += f", wrk {r.cpu_percent.get('load generator', 0):.0f}, other processes {noise}"
        if r.failed or r.socket_errors:
            line += f"; {r.failed} answers >= 400, {r.socket_errors} socket errors"
        lines.append(line)
    return lines


def measure_all(running: Running, s: Settings) -> tuple[dict[str, Figures], list[str]]:
    figures = {path: Figures() for path in ("direct", "caddy", "floor", "gateway")}
    details: list[str] = []
    bench = s.bench
    plain = chat_body("static", 8, stream=False)
    order = list(running.targets["static"].values())
    print(f"latency, c=1: plain, {s.requests} requests per path ...", flush=True)
    for target, summary in zip(
        order,
        measure_latency(
            order,
            path=CHAT_PATH,
            body=plain,
            stream=False,
            requests=s.requests,
            warmup=max(50, s.requests // 10),
        ),
        strict=True,
    ):
        figures[target.name].p50_ms = summary.p50_ms
    print(f"throughput, c={s.connections}: plain requests, static upstream", flush=True)
    result = run_phase(bench, _phase(running, "static", "plain", plain, s.connections), details)
    for path, r in result.best.items():
        figures[path].rps = r.rps
        figures[path].cpu_us_per_request = result.cpu_us_per_request(path)
    details += _detail(f"plain requests, c{s.connections}, static upstream", result, "req", 1)

    fake = chat_body("fake", s.stream_tokens, stream=True)
    per = events_per_stream(running.targets["fake"]["direct"].port, fake)
    print(f"streams, c={s.streams}: fake engine, {per} events per stream", flush=True)
    result = run_phase(bench, _phase(running, "fake", "fake streams", fake, s.streams), details)
    for path in result.best:
        cpu = result.cpu_us_per_request(path)
        figures[path].cpu_us_per_chunk = None if cpu is None else cpu / per
    details += _detail(f"fake engine streams, c{s.streams}", result, "chunk", per)

    tiny = chat_body("tiny", s.stream_tokens, stream=True)
    per = events_per_stream(running.targets["tiny"]["direct"].port, tiny)
    print(f"streams, c={s.streams}: llama-server, {per} events per stream", flush=True)
    result = run_phase(bench, _phase(running, "tiny", "llama streams", tiny, s.streams), details)
    for path, r in result.best.items():
        figures[path].chunks_per_s = r.rps * per
    details += _detail(f"llama-server streams, c{s.streams}", result, "chunk", per)

    wait_until_idle(running.targets["tiny"]["direct"].port)
    print(f"time to first token, c=1: llama-server, {s.ttft_requests} per path", flush=True)
    order = list(running.targets["tiny"].values())
    ttft = chat_body("tiny", TTFT_TOKENS, stream=True)
    summaries, empty = measure_ttft(
        order,
        path=CHAT_PATH,
        body=ttft,
        requests=s.ttft_requests,
        warmup=max(10, s.ttft_requests // 10),
    )
    for target, summary in zip(order, summaries, strict=True):
        figures[target.name].ttft_ms = summary.p50_ms
    details.append(
        f"  time to first token, c1: {s.ttft_requests} streams per path; empty streams "
        f"(llama-server ended them after the headers; retried): "
        + ", ".join(f"{t.name} {n}" for t, n in zip(order, empty, strict=True))
    )
    return figures, details
