"""What the gateway costs, against the floor of its own stack, all measured in one run.

Run from the repository root (after tests/run.sh has set things up: the venv, llama-server)::

    python bench/overhead.py            # full run, about 5 minutes
    python bench/overhead.py --quick    # smoke run, about 1.5 minutes
    python bench/overhead.py --profile /tmp/gw   # then py-spy the gateway under both loads

It starts, all on 127.0.0.1: three upstreams (Caddy answering a fixed chat completion, the fake
engine from tests/fakes, the real llama-server with the tiny test model), and in front of each
of them Caddy's reverse_proxy (flush_interval -1), the floor (bench/floor_proxy.py: a bare
aiohttp + uvloop proxy with no auth, policy or accounting) and one authproxy gateway serving
all three (access log off unless --access-log). Then the same load goes through every path:

* plain requests, static upstream: p50 at concurrency 1 (sequential keep-alive requests, the
  paths interleaved) and requests/s at c64 with wrk, with each server's CPU per request;
* streams from the fake engine at c16: each proxy's CPU per streamed chunk (SSE event);
* streams from llama-server at c16: chunks/s; and time to first token at c1 (raw socket client).

It prints every path's figures and the targets of issue 15 with PASS / MISS, as ratios to the
floor or to direct measured in the same run. It asserts nothing and exits 0 once measured.
The machine's load is read before and during every phase; a phase that other processes
disturbed is run again, and the figures say how busy the machine was.
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
from dataclasses import asdict
from pathlib import Path
from types import FrameType

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report
from bench.load import wrk_path
from bench.machine import background_load
from bench.procs import BenchError, Children
from bench.profile_run import profile_gateway
from bench.runs import Settings, measure_all
from bench.stack import start_all

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Gateway overhead against direct, Caddy and a bare aiohttp proxy "
        "(127.0.0.1 only).",
    )
    p.add_argument("--quick", action="store_true", help="smoke run (about 1.5 minutes)")
    p.add_argument("--seconds", type=float, help="length of each load phase")
    p.add_argument("--rounds", type=int, help="rounds of each load phase (best kept)")
    p.add_argument("--requests", type=int, help="sequential requests per path at c1")
    p.add_argument("--connections", type=int, default=64, help="plain load concurrency")
    p.add_argument("--streams", type=int, default=16, help="streaming load concurrency")
    p.add_argument("--stream-tokens", type=int, default=64, help="tokens per loaded stream")
    p.add_argument("--threads", type=int, default=1, help="wrk threads (default 1: few cores)")
    p.add_argument("--access-log", action="store_true", help="the gateway writes its access log")
    p.add_argument("--install", action="store_true", help="apt-get install wrk if missing")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument(
        "--profile",
        metavar="PREFIX",
        help="afterwards, record the gateway and the floor with py-spy under the c64 plain "
        "load and the streaming load (PREFIX.PATH.KIND.txt) and print their hot spots",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return p


def _settings(args: argparse.Namespace) -> Settings:
    quick = bool(args.quick)
    return Settings(
        requests=args.requests or (300 if quick else 2000),
        ttft_requests=60 if quick else 300,
        seconds=args.seconds or (3.0 if quick else 8.0),
        warmup_seconds=1.0 if quick else 2.0,
        rounds=args.rounds or (1 if quick else 2),
        extra_rounds=0 if quick else 2,
        connections=args.connections,
        streams=args.streams,
        stream_tokens=args.stream_tokens,
        threads=args.threads,
        access_log=bool(args.access_log),
    )


def _ensure_wrk(install: bool) -> None:
    if wrk_path() is None and install:
        print("wrk is missing: running `apt-get install -y wrk` (--install)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
    if wrk_path() is None:
        raise BenchError("wrk is not installed: `apt-get install wrk`, or rerun with --install")


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    settings = _settings(args)
    workdir = Path(tempfile.mkdtemp(prefix="authproxy-bench-"))
    children = Children(workdir)
    try:
        _ensure_wrk(args.install)
        idle = background_load()
        if idle is not None:
            print(f"background CPU load before the run: {idle:.0f} % of one core", flush=True)
        running = start_all(children, access_log=settings.access_log)
        figures, details = measure_all(running, settings)
        children.check_alive()
        print(
            f"\nauthproxy overhead, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"wrk -t{settings.threads}; {settings.seconds:g} s per load phase, best of "
            f"{settings.rounds}; {settings.requests} requests per path at c1; streams of "
            f"{settings.stream_tokens} tokens; gateway access log "
            f"{'on' if settings.access_log else 'off'}\n"
        )
        print(
            report.render_figures(
                figures, connections=settings.connections, streams=settings.streams
            )
        )
        print("\ntargets (issue 15):")
        print(report.render_verdicts(report.verdicts(figures)))
        print("\nload phases:")
        print("\n".join(details))
        if args.json:
            data = {p: asdict(f) for p, f in figures.items()}
            Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        if args.profile:
            profile_gateway(running, settings, args.profile)
    except BenchError as exc:
        print(f"overhead: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\noverhead: interrupted; stopping what it started", file=sys.stderr)
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
