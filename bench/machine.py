"""How busy the machine is: before the benchmark starts, and during a phase, without the
benchmark's own processes (Linux /proc)."""

from __future__ import annotations

import os
import time

from bench.procs import cpu_seconds, system_busy_seconds

__all__ = ["OtherLoad", "background_load"]


def background_load(seconds: float = 1.0) -> float | None:
    """% of one core the machine is busy before the benchmark starts anything."""
    before = system_busy_seconds()
    time.sleep(seconds)
    after = system_busy_seconds()
    if before is None or after is None:
        return None
    return 100 * (after - before) / seconds


class OtherLoad:
    """% of one core that processes other than the benchmark's used between start and stop."""

    def __init__(self, pids: list[int]) -> None:
        self._pids = [os.getpid(), *pids]
        self._start = self._sample()

    def _sample(self) -> tuple[float, float | None, float]:
        ours = sum(cpu_seconds(pid) or 0.0 for pid in self._pids)
        return time.perf_counter(), system_busy_seconds(), ours

    def percent(self) -> float | None:
        t0, busy0, ours0 = self._start
        t1, busy1, ours1 = self._sample()
        if busy0 is None or busy1 is None or t1 <= t0:
            return None
        return max(0.0, 100 * ((busy1 - busy0) - (ours1 - ours0)) / (t1 - t0))
