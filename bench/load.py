"""Throughput at concurrency N: wrk with a POST script, or the aiohttp load generator.

The load generator runs in a process of its own; while it runs, the CPU time of the engine and
the gateway is sampled from /proc, and the generator's own from the rusage of reaped children,
so the report can say which process was the bottleneck.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import HOST, ROOT, BenchError, child_env, cpu_seconds, system_busy_seconds

LUA = Path(__file__).resolve().parent / "wrk_post.lua"
RESULT_PREFIX = "BENCH_RESULT "


@dataclass(frozen=True, slots=True)
class LoadSpec:
    port: int
    path: str
    body: bytes
    key: str | None
    connections: int
    seconds: float


@dataclass(slots=True)
class LoadResult:
    tool: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    cpu_percent: dict[str, float] = field(default_factory=dict)  # process -> % of one core
    cpu_us_per_request: dict[str, float] = field(default_factory=dict)  # process -> CPU µs

    @property
    def rps(self) -> float:
        return (self.requests - self.errors) / self.seconds if self.seconds > 0 else 0.0

    def add_cpu(self, name: str, cpu_seconds: float, wall: float) -> None:
        """Record a process's CPU use over the phase; per request is robust to contention."""
        self.cpu_percent[name] = 100 * cpu_seconds / wall
        if self.requests:
            self.cpu_us_per_request[name] = 1e6 * cpu_seconds / self.requests


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk_argv(spec: LoadSpec, threads: int) -> list[str]:
    wrk = wrk_path()
    if wrk is None:
        raise BenchError("wrk is not installed")
    url = f"http://{HOST}:{spec.port}{spec.path}"
    return [
        wrk,
        f"-t{max(1, min(threads, spec.connections))}",
        f"-c{spec.connections}",
        f"-d{max(1, round(spec.seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
    ]


def _loadgen_argv(spec: LoadSpec) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--port",
        str(spec.port),
        "--path",
        spec.path,
        "--connections",
        str(spec.connections),
        "--seconds",
        repr(spec.seconds),
    ]


def _parse(tool: str, output: str) -> LoadResult:
    line = next((ln for ln in output.splitlines() if ln.startswith(RESULT_PREFIX)), None)
    if line is None:
        raise BenchError(f"{tool} printed no result:\n{output[-2000:]}")
    raw = json.loads(line[len(RESULT_PREFIX) :])
    if tool == "wrk":
        errors = sum(int(raw[k]) for k in ("connect", "read", "write", "status", "timeout"))
        return LoadResult(
            tool="wrk",
            requests=int(raw["requests"]),
            errors=errors,
            seconds=int(raw["duration_us"]) / 1e6,
            p50_ms=int(raw["p50_us"]) / 1000,
            p99_ms=int(raw["p99_us"]) / 1000,
        )
    return LoadResult(
        tool="aiohttp loadgen",
        requests=int(raw["requests"]),
        errors=int(raw["errors"]),
        seconds=float(raw["seconds"]),
        p50_ms=raw.get("p50_ms"),
        p99_ms=raw.get("p99_ms"),
    )


def _run_to_end(argv: list[str], env: dict[str, str], timeout: float) -> tuple[str, str, int]:
    """Run a load generator; on a timeout or Ctrl-C it is killed and reaped before raising."""
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{argv[0]} did not finish within {timeout:g} s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return stdout, stderr, proc.returncode


def run_load(spec: LoadSpec, *, use_wrk: bool, threads: int, watch: dict[str, int]) -> LoadResult:
    """Run one load phase; `watch` maps process names to pids whose CPU use is reported."""
    tool = "wrk" if use_wrk else "loadgen"
    argv = _wrk_argv(spec, threads) if use_wrk else _loadgen_argv(spec)
    env = child_env(BENCH_BODY=spec.body.decode(), BENCH_AUTH=spec.key or "")
    before = {name: cpu_seconds(pid) for name, pid in watch.items()}
    before_gen = _children_cpu()
    before_all = system_busy_seconds()
    started = time.perf_counter()
    stdout, stderr, returncode = _run_to_end(argv, env, timeout=spec.seconds + 60)
    wall = time.perf_counter() - started
    after = {name: cpu_seconds(pid) for name, pid in watch.items()}
    after_all = system_busy_seconds()
    if returncode != 0:
        raise BenchError(f"{tool} failed ({returncode}): {stderr.strip()[-2000:]}")
    result = _parse(tool, stdout)
    for name, cpu0 in before.items():
        cpu1 = after[name]
        if cpu0 is not None and cpu1 is not None:
            result.add_cpu(name, cpu1 - cpu0, wall)
    result.add_cpu("load generator", _children_cpu() - before_gen, wall)
    if watch and before_all is not None and after_all is not None:
        ours = sum(result.cpu_percent.values())
        result.cpu_percent["other processes"] = max(
            0.0, 100 * (after_all - before_all) / wall - ours
        )
    return result
