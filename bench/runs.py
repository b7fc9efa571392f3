"""The benchmark's measurements, in order, on the servers bench/stack.py started: plain
requests at c1 and at c64 (static upstream), streams at c16 (fake engine: CPU per chunk;
llama-server: chunks/s) and the time to first token at c1 (llama-server)."""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass

from bench.latency import measure_latency
from bench.machine import OtherLoad
from bench.phases import Bench, Phase, PhaseResult, run_phase
from bench.procs import HOST, BenchError
from bench.report import Figures
from bench.stack import PATHS, Running, chat_body
from bench.ttft import measure_ttft

__all__ = ["CHAT_PATH", "Settings", "measure_all"]

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
    extra_rounds: int
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
            extra_rounds=self.extra_rounds,
        )


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
    rounds = max(len(v) for v in result.other_cpu.values())
    lines = [f"  {name}, best of {rounds} rounds:"]
    if result.disturbed():
        lines[0] += " DISTURBED (some path never had a quiet round; CPU per request holds best)"
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


def _ours(running: Running) -> list[int]:
    return sorted({pid for pids in running.pids.values() for pid in pids.values()})


def _c1_latency(running: Running, s: Settings, figures: dict[str, Figures]) -> str:
    order = list(running.targets["static"].values())
    print(f"latency, c=1: plain, {s.requests} requests per path ...", flush=True)
    others = OtherLoad(_ours(running))
    summaries = measure_latency(
        order,
        path=CHAT_PATH,
        body=chat_body("static", 8, stream=False),
        stream=False,
        requests=s.requests,
        warmup=max(50, s.requests // 10),
    )
    for target, summary in zip(order, summaries, strict=True):
        figures[target.name].p50_ms = summary.p50_ms
    return f"  plain requests, c1: {s.requests} per path; {_others(others)}"


def _ttft(running: Running, s: Settings, figures: dict[str, Figures]) -> str:
    wait_until_idle(running.targets["tiny"]["direct"].port)
    print(f"time to first token, c=1: llama-server, {s.ttft_requests} per path", flush=True)
    order = list(running.targets["tiny"].values())
    others = OtherLoad(_ours(running))
    summaries, empty = measure_ttft(
        order,
        path=CHAT_PATH,
        body=chat_body("tiny", TTFT_TOKENS, stream=True),
        requests=s.ttft_requests,
        warmup=max(10, s.ttft_requests // 10),
    )
    for target, summary in zip(order, summaries, strict=True):
        figures[target.name].ttft_ms = summary.p50_ms
    retried = ", ".join(f"{t.name} {n}" for t, n in zip(order, empty, strict=True))
    return (
        f"  time to first token, c1: {s.ttft_requests} streams per path; {_others(others)}; "
        f"streams llama-server ended right after its headers (retried): {retried}"
    )


def _others(meter: OtherLoad) -> str:
    pct = meter.percent()
    return "other processes: -" if pct is None else f"other processes {pct:.0f} % of a core"


def measure_all(running: Running, s: Settings) -> tuple[dict[str, Figures], list[str]]:
    figures = {path: Figures() for path in PATHS}
    details: list[str] = [_c1_latency(running, s, figures)]
    bench = s.bench

    plain = chat_body("static", 8, stream=False)
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

    details.append(_ttft(running, s, figures))
    return figures, details
