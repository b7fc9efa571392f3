"""The measured phases: the same load through every path (direct, Caddy, the floor, authproxy)
in turn, several rounds with the order rotated, the best round kept per path.

A phase during which other processes on the machine used much CPU is run again (up to
`retries` times) and the quietest attempt is kept; what the others used is reported either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bench.latency import Target
from bench.load import LoadResult, LoadSpec, run_load

__all__ = ["Bench", "Phase", "PhaseResult", "run_phase"]

NOISY_PERCENT = 25.0  # other processes' CPU (% of one core) that makes a phase worth redoing


@dataclass(frozen=True, slots=True)
class Bench:
    """How to run load phases."""

    threads: int
    seconds: float
    warmup_seconds: float
    rounds: int
    retries: int


@dataclass(frozen=True, slots=True)
class Phase:
    """One kind of load, put on each path's target; `pids` are the processes serving a path
    (the proxy, or the upstream for `direct`) whose CPU per request is recorded."""

    name: str
    path: str
    body: bytes
    connections: int
    targets: dict[str, Target]
    pids: dict[str, int]
    settle: Callable[[], None] | None = None  # before each path's turn (llama: slots idle)


@dataclass(slots=True)
class PhaseResult:
    best: dict[str, LoadResult] = field(default_factory=dict)
    other_cpu: dict[str, list[float]] = field(default_factory=dict)  # per path, per attempt

    def cpu_us_per_request(self, path: str) -> float | None:
        result = self.best.get(path)
        return None if result is None else result.cpu_us_per_request.get("server")


def _quietest(
    bench: Bench, phase: Phase, spec: LoadSpec, watch: dict[str, int], noise: list[float]
) -> LoadResult:
    best: LoadResult | None = None
    for attempt in range(1 + bench.retries):
        if attempt and phase.settle is not None:
            phase.settle()
        result = run_load(spec, threads=bench.threads, watch=watch)
        other = result.cpu_percent.get("other processes", 0.0)
        noise.append(other)
        if best is None or other < best.cpu_percent.get("other processes", 0.0):
            best = result
        if other <= NOISY_PERCENT:
            break
    assert best is not None
    return best


def run_phase(bench: Bench, phase: Phase, log: list[str]) -> PhaseResult:
    """Each path `rounds` times (order rotated); per path the round with the most requests."""
    out = PhaseResult()
    paths = list(phase.targets)
    for round_no in range(bench.rounds):
        shift = round_no % len(paths)
        for path in paths[shift:] + paths[:shift]:
            target = phase.targets[path]
            spec = LoadSpec(
                port=target.port,
                path=phase.path,
                body=phase.body,
                key=target.key,
                connections=phase.connections,
                seconds=bench.seconds,
            )
            print(f"  {phase.name}: {path}, round {round_no + 1} ...", flush=True)
            if phase.settle is not None:
                phase.settle()
            warm = replace(spec, seconds=bench.warmup_seconds)
            run_load(warm, threads=bench.threads, watch={})
            noise = out.other_cpu.setdefault(path, [])
            watch = {"server": phase.pids[path]}
            if path != "direct":
                watch["upstream"] = phase.pids["direct"]
            result = _quietest(bench, phase, spec, watch, noise)
            if result.failed:
                log.append(f"{phase.name} {path}: {result.failed} answers with status >= 400")
            best = out.best.get(path)
            if best is None or result.rps > best.rps:
                out.best[path] = result
    return out
