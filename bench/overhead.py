"""What the gateway costs: the same load straight to a fast fake engine and through authproxy.

Run from the repository root::

    python bench/overhead.py            # full run, about 2 minutes
    python bench/overhead.py --quick    # smoke run, under a minute
    python bench/overhead.py --profile /tmp/gateway.txt   # then profile the gateway (py-spy)

It starts the fake engine (``python -m tests.fakes.engine``) and a gateway in a temporary
directory (``authproxy init`` + ``authproxy serve``, access log off), all on 127.0.0.1, and
measures in one run:

* added latency at concurrency 1: p50 / p99 of sequential keep-alive requests, direct and
  through the gateway interleaved, for a plain chat completion and a streamed one;
* throughput at concurrency 64 with wrk (``apt-get install wrk``, or pass ``--install``), plain
  and streamed, as the ratio gateway / direct. Without wrk an aiohttp load generator in a
  process of its own stands in (it says so; it is slower than wrk).

It prints a table with the targets (p50 added <= 0.3 ms, p99 added <= 1 ms, streaming
throughput >= 80 % of direct) and PASS / MISS; it asserts nothing and exits 0 once measured.
Every process it starts is stopped on the way out, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report
from bench.latency import Summary, Target, measure_pair
from bench.load import LoadResult, LoadSpec, run_load, wrk_path
from bench.procs import (
    BenchError,
    Children,
    gateway_port,
    init_gateway,
    start_engine,
    start_gateway,
    system_busy_seconds,
    thread_cpu_seconds,
    write_gateway_config,
)
from bench.profile_summary import py_spy_path, summarize_file

CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class Settings:
    requests: int
    warmup: int
    seconds: float
    warmup_seconds: float
    connections: int
    threads: int
    max_tokens: int
    token_delay: float
    use_wrk: bool


def chat_body(max_tokens: int, stream: bool) -> bytes:
    body: dict[str, object] = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Say hello in a few words."}],
        "max_tokens": max_tokens,
        "ignore_eos": True,  # the fake engine's answer then runs to max_tokens, as before
    }
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":")).encode()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Gateway overhead: the same load direct to a fake engine and through "
        "authproxy (127.0.0.1 only).",
    )
    p.add_argument("--quick", action="store_true", help="smoke run (< 60 s)")
    p.add_argument("--requests", type=int, help="sequential requests per target and kind")
    p.add_argument("--seconds", type=float, help="length of each throughput phase")
    p.add_argument("--connections", type=int, default=64, help="concurrency of the load phases")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: few cores)")
    p.add_argument("--max-tokens", type=int, default=8, help="completion tokens per request")
    p.add_argument("--token-delay", type=float, default=0.0, help="engine delay between tokens")
    p.add_argument("--no-wrk", action="store_true", help="use the aiohttp load generator")
    p.add_argument("--install", action="store_true", help="apt-get install wrk if missing")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="afterwards, record the gateway with py-spy under the streaming load "
        "(raw collapsed stacks to FILE) and print its hot spots",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return p


def _settings(args: argparse.Namespace, use_wrk: bool) -> Settings:
    quick = bool(args.quick)
    return Settings(
        requests=args.requests or (300 if quick else 3000),
        warmup=50 if quick else 300,
        seconds=args.seconds or (4.0 if quick else 15.0),
        warmup_seconds=1.0 if quick else 3.0,
        connections=args.connections,
        threads=args.threads,
        max_tokens=args.max_tokens,
        token_delay=args.token_delay,
        use_wrk=use_wrk,
    )


def _ensure_wrk(install: bool, no_wrk: bool) -> bool:
    if no_wrk:
        print("load generator: aiohttp (--no-wrk)")
        return False
    if wrk_path() is None and install:
        print("wrk is missing: running `apt-get install -y wrk` (--install)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
    if wrk_path() is None:
        print(
            "wrk not found: falling back to the aiohttp load generator (slower; it competes "
            "for CPU). Install wrk with `apt-get install wrk` (Debian/Ubuntu) or rerun with "
            "--install."
        )
        return False
    return True


def background_load(seconds: float = 1.0) -> float | None:
    """% of one core the machine is busy before the benchmark starts anything."""
    before = system_busy_seconds()
    time.sleep(seconds)
    after = system_busy_seconds()
    if before is None or after is None:
        return None
    return 100 * (after - before) / seconds


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@dataclass(slots=True)
class Results:
    latency: dict[str, tuple[Summary, Summary]]
    load: dict[str, tuple[LoadResult, LoadResult]]


def measure(s: Settings, engine_pid: int, gateway_pid: int, engine: Target, gw: Target) -> Results:
    results = Results(latency={}, load={})
    for kind, stream in (("plain", False), ("stream", True)):
        print(f"latency, c=1: {kind}, {s.requests} requests per target ...", flush=True)
        results.latency[kind] = measure_pair(
            engine,
            gw,
            path=CHAT_PATH,
            body=chat_body(s.max_tokens, stream),
            stream=stream,
            requests=s.requests,
            warmup=s.warmup,
        )
    watch = {"engine": engine_pid, "gateway": gateway_pid}
    for kind, stream in (("plain", False), ("stream", True)):
        pair = []
        for target in (engine, gw):
            spec = LoadSpec(
                port=target.port,
                path=CHAT_PATH,
                body=chat_body(s.max_tokens, stream),
                key=target.key,
                connections=s.connections,
                seconds=s.seconds,
            )
            print(f"throughput, c={s.connections}: {kind} {target.name} ...", flush=True)
            warm = LoadSpec(**{**asdict(spec), "seconds": s.warmup_seconds})
            run_load(warm, use_wrk=s.use_wrk, threads=s.threads, watch={})
            pair.append(run_load(spec, use_wrk=s.use_wrk, threads=s.threads, watch=watch))
        results.load[kind] = (pair[0], pair[1])
    return results


def print_results(s: Settings, results: Results) -> None:
    rows: list[report.Row] = []
    for kind, (direct, gateway) in results.latency.items():
        rows += report.latency_rows(kind, direct, gateway)
    for kind, (d, g) in results.load.items():
        rows.append(report.throughput_row(kind, s.connections, d, g))
    tool = next(iter(results.load.values()))[0].tool
    print()
    print(
        f"authproxy overhead: fake engine (token delay {s.token_delay:g} s, max_tokens "
        f"{s.max_tokens}), {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load by {tool}; {s.requests} sequential requests per target, {s.seconds:g} s per "
        "load phase"
    )
    print(report.render(rows))
    print("\nload phases (CPU: % of one core over the phase, and CPU time per request):")
    for kind, (d, g) in results.load.items():
        print(report.cpu_line(f"{kind} direct", d))
        print(report.cpu_line(f"{kind} gateway", g))
    busy = [
        f"{kind} {side}"
        for kind, pair in results.load.items()
        for side, r in zip(("direct", "gateway"), pair, strict=True)
        if r.cpu_percent.get("other processes", 0) > 20
    ]
    if busy:
        print(
            "\nwarning: other processes used over 20 % of a core during "
            f"{', '.join(busy)}: those figures are disturbed; rerun on a quiet machine "
            "(CPU time per request is the figure least affected)."
        )
    if (os.cpu_count() or 1) < 4:
        print(
            "\nnote: engine, gateway and load generator share "
            f"{os.cpu_count()} CPU(s); under load the gateway competes with the engine for CPU, "
            "so the throughput ratio measures contention as much as the gateway's own cost."
        )


def write_json(path: str, s: Settings, results: Results) -> None:
    data = {
        "settings": asdict(s),
        "latency_ms": {
            k: {"direct": asdict(d), "gateway": asdict(g)} for k, (d, g) in results.latency.items()
        },
        "throughput": {
            k: {"direct": {**asdict(d), "rps": d.rps}, "gateway": {**asdict(g), "rps": g.rps}}
            for k, (d, g) in results.load.items()
        },
    }
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


def profile_gateway(s: Settings, out: str, gateway_pid: int, gw: Target) -> None:
    spy = py_spy_path()
    if spy is None:
        print("\nprofile: py-spy not found (pip install py-spy into this venv)")
        return
    print(f"\nprofiling the gateway (pid {gateway_pid}) under streaming load ...", flush=True)
    seconds = max(3, round(s.seconds))
    argv = [spy, "record", "--pid", str(gateway_pid), "--duration", str(seconds)]
    argv += ["--rate", "250", "--threads", "--format", "raw", "--output", out, "--nonblocking"]
    spy_proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # let py-spy attach before the load starts
        spec = LoadSpec(
            port=gw.port,
            path=CHAT_PATH,
            body=chat_body(s.max_tokens, True),
            key=gw.key,
            connections=s.connections,
            seconds=seconds,
        )
        before = thread_cpu_seconds(gateway_pid)
        started = time.perf_counter()
        run_load(spec, use_wrk=s.use_wrk, threads=s.threads, watch={})
        wall = time.perf_counter() - started
        after = thread_cpu_seconds(gateway_pid)
        spy_proc.wait(timeout=seconds + 30)
    finally:
        if spy_proc.poll() is None:
            spy_proc.terminate()
            spy_proc.wait(timeout=10)
    if spy_proc.returncode != 0 or not Path(out).exists():
        print(f"profile: py-spy failed ({spy_proc.returncode}); is ptrace allowed?")
        return
    print(f"profile written to {out} (py-spy raw / collapsed stacks)")
    used = {t: 100 * (after[t] - before[t]) / wall for t in after if t in before}
    busy = ", ".join(f"{t} {pct:.0f} %" for t, pct in sorted(used.items()) if pct >= 0.5)
    print(f"gateway threads, real CPU from /proc (% of one core): {busy}")
    print(summarize_file(Path(out), top=15, thread="MainThread"))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    settings = _settings(args, _ensure_wrk(args.install, args.no_wrk))
    idle_load = background_load()
    if idle_load is not None:
        print(f"background CPU load before the run: {idle_load:.0f} % of one core", flush=True)
        if idle_load > 20:
            print("warning: the machine is busy; the figures will be noisy", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="authproxy-bench-"))
    children = Children(workdir)
    try:
        engine_proc, engine_port = start_engine(children, settings.token_delay)
        config = write_gateway_config(workdir, engine_port)
        key = init_gateway(config)
        gateway_proc = start_gateway(children, config)
        engine = Target("direct", engine_port, None)
        gw = Target("gateway", gateway_port(config), key)
        results = measure(settings, engine_proc.pid, gateway_proc.pid, engine, gw)
        children.check_alive()
        print_results(settings, results)
        if args.json:
            write_json(args.json, settings, results)
        if args.profile:
            profile_gateway(settings, args.profile, gateway_proc.pid, gw)
    except BenchError as exc:
        print(f"overhead: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\noverhead: interrupted; stopping the engine and the gateway", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        children.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
