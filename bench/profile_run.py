"""`overhead.py --profile PREFIX`: py-spy records the gateway, then the floor, under the plain
load (c64, static upstream) and the streaming load (fake engine), one raw profile each, and
prints hot spots and the share of each function group (bench/profile_groups.py).

py-spy must be installed (``pip install py-spy``) and allowed to ptrace the gateway (root, or
``kernel.yama.ptrace_scope`` 0). The raw files are collapsed stacks; ``python -m
bench.profile_summary FILE --thread MainThread`` summarizes them again later.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from bench.load import LoadSpec, run_load
from bench.procs import thread_cpu_seconds
from bench.profile_groups import summarize_groups
from bench.profile_summary import parse, py_spy_path, summarize_file
from bench.runs import CHAT_PATH, Settings
from bench.stack import Running, chat_body

__all__ = ["profile_gateway", "profile_path"]


def profile_path(
    running: Running, s: Settings, *, upstream: str, body: bytes, conns: int, out: Path, path: str
) -> None:
    spy = py_spy_path()
    if spy is None:
        print("\nprofile: py-spy not found (pip install py-spy into this venv)")
        return
    pid = running.pids[upstream][path]
    target = running.targets[upstream][path]
    seconds = max(3, round(s.seconds))
    print(f"\nprofiling {path} (pid {pid}): {upstream} upstream, c{conns} ...", flush=True)
    argv = [spy, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250"]
    argv += ["--threads", "--format", "raw", "--output", str(out), "--nonblocking"]
    spy_proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)  # let py-spy attach before the load starts
        spec = LoadSpec(
            port=target.port, path=CHAT_PATH, body=body, key=target.key, connections=conns,
            seconds=seconds,
        )  # fmt: skip
        before = thread_cpu_seconds(pid)
        started = time.perf_counter()
        result = run_load(spec, threads=s.threads, watch={})
        wall = time.perf_counter() - started
        after = thread_cpu_seconds(pid)
        spy_proc.wait(timeout=seconds + 30)
    finally:
        if spy_proc.poll() is None:
            spy_proc.terminate()
            spy_proc.wait(timeout=10)
    if spy_proc.returncode != 0 or not out.exists():
        print(f"profile: py-spy failed ({spy_proc.returncode}); is ptrace allowed?")
        return
    print(f"profile written to {out} (py-spy raw / collapsed stacks); {result.rps:.0f} req/s")
    used = {t: 100 * (after[t] - before[t]) / wall for t in after if t in before}
    busy = ", ".join(f"{t} {pct:.0f} %" for t, pct in sorted(used.items()) if pct >= 0.5)
    print(f"threads, real CPU from /proc (% of one core): {busy}")
    print(summarize_file(out, top=15, thread="MainThread"))
    stacks = [st for st in parse(out.read_text(errors="replace")) if st[0] == "MainThread"]
    print(summarize_groups(stacks))


def profile_gateway(running: Running, s: Settings, prefix: str) -> None:
    """The gateway, then the floor for comparison, under each load: PREFIX.PATH.KIND.txt."""
    plain = chat_body("static", 8, stream=False)
    stream = chat_body("fake", s.stream_tokens, stream=True)
    for path in ("gateway", "floor"):
        for kind, upstream, body, conns in (
            ("plain", "static", plain, s.connections),
            ("stream", "fake", stream, s.streams),
        ):
            out = Path(f"{prefix}.{path}.{kind}.txt")
            profile_path(running, s, upstream=upstream, body=body, conns=conns, out=out, path=path)
