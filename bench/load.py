"""Throughput at concurrency N with wrk and a POST script (bench/wrk_post.lua).

While wrk runs, the CPU time of the watched processes is sampled from /proc, wrk's own from the
rusage of reaped children, and the whole machine's from /proc/stat, so the report can say who
used the CPU and how busy the rest of the machine was.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import HOST, ROOT, BenchError, child_env, cpu_seconds, system_busy_seconds

__all__ = ["LoadResult", "LoadSpec", "run_load", "wrk_path"]

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
    requests: int  # complete answers
    failed: int  # of those, answered with a status >= 400
    socket_errors: int  # connect / read / write errors and timeouts (no answer counted)
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_percent: dict[str, float] = field(default_factory=dict)  # process -> % of one core
    cpu_us_per_request: dict[str, float] = field(default_factory=dict)  # process -> CPU µs

    @property
    def rps(self) -> float:
        """Successful answers per second."""
        return (self.requests - self.failed) / self.seconds if self.seconds > 0 else 0.0

    def add_cpu(self, name: str, cpu_seconds: float, wall: float) -> None:
        """Record a process's CPU use over the phase; per request is robust to contention."""
        self.cpu_percent[name] = 100 * cpu_seconds / wall
        if self.requests > self.failed:
            self.cpu_us_per_request[name] = 1e6 * cpu_seconds / (self.requests - self.failed)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk_argv(spec: LoadSpec, threads: int) -> list[str]:
    wrk = wrk_path()
    if wrk is None:
        raise BenchError("wrk is not installed (apt-get install wrk)")
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


def _parse(output: str) -> LoadResult:
    line = next((ln for ln in output.splitlines() if ln.startswith(RESULT_PREFIX)), None)
    if line is None:
        raise BenchError(f"wrk printed no result:\n{output[-2000:]}")
    raw = json.loads(line[len(RESULT_PREFIX) :])
    return LoadResult(
        requests=int(raw["requests"]),
        failed=int(raw["status"]),
        socket_errors=sum(int(raw[k]) for k in ("connect", "read", "write", "timeout")),
        seconds=int(raw["duration_us"]) / 1e6,
        p50_ms=int(raw["p50_us"]) / 1000,
        p99_ms=int(raw["p99_us"]) / 1000,
    )


def _run_to_end(argv: list[str], env: dict[str, str], timeout: float) -> tuple[str, str, int]:
    """Run wrk; on a timeout or Ctrl-C it is killed and reaped before raising."""
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


def run_load(spec: LoadSpec, *, threads: int, watch: dict[str, int]) -> LoadResult:
    """Run one load phase; `watch` maps names to pids whose CPU use is reported. What the
    machine used beyond them and wrk is reported as "other processes"."""
    env = child_env(BENCH_BODY=spec.body.decode(), BENCH_AUTH=spec.key or "")
    before = {name: cpu_seconds(pid) for name, pid in watch.items()}
    before_gen = _children_cpu()
    before_all = system_busy_seconds()
    started = time.perf_counter()
    stdout, stderr, returncode = _run_to_end(_wrk_argv(spec, threads), env, spec.seconds + 60)
    wall = time.perf_counter() - started
    after = {name: cpu_seconds(pid) for name, pid in watch.items()}
    after_all = system_busy_seconds()
    if returncode != 0:
        raise BenchError(f"wrk failed ({returncode}): {stderr.strip()[-2000:]}")
    result = _parse(stdout)
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
