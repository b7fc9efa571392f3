"""The measured phases: the same load through every path (direct, Caddy, the floor, authproxy)
in turn, round after round with the order rotated, the best round kept per path.

The machine's other processes are measured during every round. While some path has had no
quiet round (other processes under `NOISY_PERCENT` of a core), the phase runs up to
`extra_rounds` more rounds of every path, so each path gets as many chances as the others;
what the others used is reported either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bench.latency import Target
from bench.load import LoadResult, LoadSpec, run_load

__all__ = ["NOISY_PERCENT", "Bench", "Phase", "PhaseResult", "run_phase"]

NOISY_PERCENT = 25.0  # other processes' CPU (% of one core) that makes a round disturbed


@dataclass(frozen=True, slots=True)
class Bench:
    """How to run load phases."""

    threads: int
    seconds: float
    warmup_seconds: float
    rounds: int
    extra_rounds: int


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
    other_cpu: dict[str, list[float]] = field(default_factory=dict)  # per path, per round

    def cpu_us_per_request(self, path: str) -> float | None:
        result = self.best.get(path)
        return None if result is None else result.cpu_us_per_request.get("server")

    def disturbed(self) -> bool:
        """Some path never had a quiet round."""
        return any(min(v) > NOISY_PERCENT for v in self.other_cpu.values())


def _one(bench: Bench, phase: Phase, path: str) -> LoadResult:
    target = phase.targets[path]
    spec = LoadSpec(
        port=target.port,
        path=phase.path,
        body=phase.body,
        key=target.key,
        connections=phase.connections,
        seconds=bench.seconds,
    )
    if phase.settle is not None:
        phase.settle()
    run_load(replace(spec, seconds=bench.warmup_seconds), threads=bench.threads, watch={})
    watch = {"server": phase.pids[path]}
    if path != "direct":
        watch["upstream"] = phase.pids["direct"]
    return run_load(spec, threads=bench.threads, watch=watch)


def run_phase(bench: Bench, phase: Phase, log: list[str]) -> PhaseResult:
    """Rounds of every path (order rotated); per path the round with the most requests."""
    out = PhaseResult()
    paths = list(phase.targets)
    round_no = 0
    while round_no < bench.rounds or (
        out.disturbed() and round_no < bench.rounds + bench.extra_rounds
    ):
        shift = round_no % len(paths)
        for path in paths[shift:] + paths[:shift]:
            print(f"  {phase.name}: {path}, round {round_no + 1} ...", flush=True)
            result = _one(bench, phase, path)
            out.other_cpu.setdefault(path, []).append(
                result.cpu_percent.get("other processes", 0.0)
            )
            if result.failed:
                log.append(f"{phase.name} {path}: {result.failed} answers with status >= 400")
            best = out.best.get(path)
            if best is None or result.rps > best.rps:
                out.best[path] = result
        round_no += 1
    return out
