"""Throughput with 1 and 2 workers side by side, on SQLite and on PostgreSQL, and what the
shared quota's round trip costs a request.

Run from the repository root::

    python bench/workers.py            # about 3 minutes
    python bench/workers.py --quick    # about a minute

It starts the fake engine (``python -m tests.fakes.engine``), a throwaway PostgreSQL (tests/pg,
with its default durability) and four gateways (``authproxy serve``, access log off) on
127.0.0.1: SQLite with ``workers: 1`` (quotas counted in memory) and ``workers: 2`` (quotas in
the SQLite file), PostgreSQL with ``workers: 1`` and ``2`` (quotas in PostgreSQL). Requests are
made with the key of a user whose role has limits (tokens per day and month, concurrency; no
rpm), so every request is admitted by the quota book of its deployment.

* throughput: the same load (wrk) on each gateway in turn, in
  the order A B B A so that drift on the machine hits both worker counts alike; it reports
  requests per second, latency, the CPU the gateway's processes used per request, and the
  ratio 2 workers / 1 worker;
* the quota round trip: sequential requests (c=1) on each gateway with the admin's key (no
  limits: never a round trip) and the user's, interleaved; the difference of the medians is
  what the quota costs a request there.

It asserts nothing. On a machine with few cores the engine, PostgreSQL, the load generator and
the workers share them, which caps what a second worker can add; it prints the core count.
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
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pg.cluster import PostgresCluster
from replicas.procnet import children, listeners

from bench.latency import Summary, Target, measure_latency
from bench.load import LoadResult, LoadSpec, run_load, wrk_path
from bench.procs import (
    HOST,
    ROOT,
    BenchError,
    Children,
    child_env,
    free_port,
    init_gateway,
    start_engine,
    start_gateway,
)

CHAT_PATH = "/v1/chat/completions"
USER_ROLE = {
    "models": ["*"],
    "max_concurrent": 1000,
    "tokens_per_day": 10**12,
    "tokens_per_month": 10**13,
}


@dataclass(frozen=True, slots=True)
class Deployment:
    name: str  # "sqlite" or "postgresql"
    workers: int
    port: int
    admin_key: str
    user_key: str
    pids: tuple[int, ...]  # the processes that serve (the workers, or the one gateway)

    @property
    def label(self) -> str:
        return f"{self.name}, {self.workers} worker{'s' if self.workers > 1 else ''}"


def chat_body(stream: bool) -> bytes:
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Say hello in a few words."}],
        "max_tokens": 8,
        "ignore_eos": True,
        "stream": stream,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def _workers_of(pid: int) -> tuple[int, ...]:
    return tuple(children(pid))


def _cli(config: Path, *args: str) -> str:
    argv = [sys.executable, "-m", "authproxy", "--config", str(config), *args]
    done = subprocess.run(
        argv, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"authproxy {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def deploy(
    children: Children, workdir: Path, engine_port: int, database: str | None, workers: int
) -> Deployment:
    name = "postgresql" if database else "sqlite"
    home = workdir / f"{name}-{workers}"
    home.mkdir()
    port = free_port()
    config = {
        "listen": {"host": HOST, "port": port},
        "data_dir": str(home / "data"),
        "database": database,
        "workers": workers,
        "upstreams": [{"name": "fake", "url": f"http://{HOST}:{engine_port}", "models": ["tiny"]}],
        "roles": {"admin": {"models": ["*"]}, "user": USER_ROLE},
        "log_level": "warning",
        "shutdown_grace": 2,
    }
    path = home / "authproxy.yaml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    admin_key = init_gateway(path)
    _cli(path, "users", "add", "bench", "--role", "user")
    user_key = _cli(path, "keys", "create", "bench")
    proc = start_gateway(children, path)
    deadline = time.monotonic() + 60
    while listeners(port) < workers:  # each worker listens once it is ready
        if time.monotonic() > deadline:
            raise BenchError(f"{name}: {workers} workers did not start")
        time.sleep(0.1)
    pids = _workers_of(proc.pid) if workers > 1 else (proc.pid,)
    return Deployment(name, workers, port, admin_key, user_key, pids)


@dataclass(slots=True)
class Figures:
    load: dict[str, list[LoadResult]]  # deployment label -> its runs
    quota: dict[str, tuple[Summary, Summary]]  # label -> (no limits, with limits)


def measure(deployments: list[Deployment], args: argparse.Namespace) -> Figures:
    figures = Figures(load={}, quota={})
    order = deployments + deployments[::-1]  # A B B A ...
    for d in order:
        spec = LoadSpec(
            port=d.port, path=CHAT_PATH, body=chat_body(args.stream), key=d.user_key,
            connections=args.connections, seconds=args.seconds,
        )  # fmt: skip
        print(f"throughput, c={args.connections}: {d.label} ...", flush=True)
        run_load(
            LoadSpec(d.port, CHAT_PATH, spec.body, d.user_key, args.connections, args.warmup),
            threads=1, watch={},
        )  # fmt: skip
        watch = {f"worker {i + 1}": pid for i, pid in enumerate(d.pids)}
        figures.load.setdefault(d.label, []).append(run_load(spec, threads=1, watch=watch))
    for d in deployments:
        print(f"quota round trip, c=1: {d.label} ...", flush=True)
        free, limited = measure_latency(
            [Target("no limits", d.port, d.admin_key), Target("with limits", d.port, d.user_key)],
            path=CHAT_PATH, body=chat_body(False), stream=False, requests=args.requests,
            warmup=args.requests // 10,
        )  # fmt: skip
        figures.quota[d.label] = (free, limited)
    return figures


def _gateway_cpu_us(result: LoadResult) -> float:
    return sum(us for name, us in result.cpu_us_per_request.items() if name.startswith("worker"))


def print_figures(figures: Figures, args: argparse.Namespace, tool: str) -> None:
    kind = "8-token streams" if args.stream else "plain chat completions (8 tokens)"
    print(
        f"\nauthproxy workers: {kind}, c={args.connections}, {args.seconds:g} s per run, each"
        f" deployment run twice (A B B A); {os.cpu_count()} CPUs, Python"
        f" {platform.python_version()}, load by {tool}"
    )
    head = f"{'deployment':<24}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'gateway CPU/req':>17}"
    print(head + f"{'2 / 1 workers':>15}")
    print("-" * (len(head) + 15))
    rps: dict[str, float] = {}
    for label, runs in figures.load.items():
        rps[label] = sum(r.rps for r in runs) / len(runs)
        p50 = sum(r.p50_ms or 0 for r in runs) / len(runs)
        p99 = sum(r.p99_ms or 0 for r in runs) / len(runs)
        cpu = sum(_gateway_cpu_us(r) for r in runs) / len(runs)
        store, _, count = label.partition(", ")
        ratio = ""
        if not count.startswith("1 "):
            one = rps.get(f"{store}, 1 worker")
            ratio = f"{rps[label] / one:.2f}x" if one else ""
        errors = sum(r.failed + r.socket_errors for r in runs)
        note = f"  ({errors} failed)" if errors else ""
        print(
            f"{label:<24}{rps[label]:>8.0f}{p50:>9.1f}{p99:>9.1f}{cpu:>14.0f} µs{ratio:>15}{note}"
        )
    print("\nthe quota round trip, c=1: the same gateway, a key without limits and one with")
    print(f"{'deployment':<24}{'no limits p50':>15}{'with limits p50':>17}{'added':>10}")
    for label, (free, limited) in figures.quota.items():
        added = (limited.p50_ms - free.p50_ms) * 1000
        print(f"{label:<24}{free.p50_ms:>12.3f} ms{limited.p50_ms:>14.3f} ms{added:>7.0f} µs")
    for label, runs in figures.load.items():
        for r in runs:
            busy = r.cpu_percent.get("other processes", 0)
            if busy > 20:
                print(f"\nnote: other processes used {busy:.0f} % of a core during {label}")
                break


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs (about a minute)")
    p.add_argument("--seconds", type=float, help="length of each throughput run")
    p.add_argument("--connections", type=int, default=64, help="concurrency of the load")
    p.add_argument("--requests", type=int, help="sequential requests per key (quota cost)")
    p.add_argument("--stream", action="store_true", help="8-token streams instead of plain")
    return p


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    args.warmup = 1.0 if args.quick else 2.0
    args.requests = args.requests or (300 if args.quick else 2000)
    if wrk_path() is None:
        print("workers: wrk is not installed (tests/setup/system_packages.sh installs it)")
        return 1
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    workdir = Path(tempfile.mkdtemp(prefix="authproxy-bench-workers-"))
    children = Children(workdir)
    try:
        with PostgresCluster(durable=True) as cluster:
            try:
                _engine, engine_port = start_engine(children, 0.0, "tiny")
                deployments = [
                    deploy(children, workdir, engine_port, database, workers)
                    for store in ("sqlite", "postgresql")
                    for workers in (1, 2)
                    for database in [
                        cluster.create_database(f"bench{workers}") if store != "sqlite" else None
                    ]
                ]
                figures = measure(deployments, args)
                children.check_alive()
            finally:
                children.stop_all()
        print_figures(figures, args, "wrk")
    except BenchError as exc:
        print(f"workers: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nworkers: interrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        children.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
