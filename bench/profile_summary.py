"""Hot spots from a py-spy ``--format raw`` profile (collapsed stacks, root first).

    python -m bench.profile_summary /tmp/gateway.txt [--top 20] [--package authproxy]

Views, in % of all samples (py-spy records only non-idle samples unless ``--idle``):
* threads (when recorded with ``--threads``). A thread that waits for the GIL can count as
  active here: check a thread's real CPU use in /proc/PID/task/TID/stat;
* inclusive: samples where a function of the package is anywhere on the stack;
* attributed: each sample charged to the deepest frame of the package (what that code spends,
  including the library calls it makes); the entry chain (``__main__``, ``cli/main``,
  ``serve``) does not count, so event-loop and protocol work shows as "no frame of" the package;
* self, any code: the leaf frames, grouped by function, to see what the CPU actually runs.
C code (sqlite3, uvloop, the HTTP parser) has no frames of its own unless py-spy ran with
``--native``: its time shows in the Python function that called it.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
_THREAD = re.compile(r"^thread \((?:0x)?[0-9A-Fa-f]+\)(?::\s*(?P<name>.*))?$")
_ENTRY_FILES = ("__main__.py", "cli/main.py", "serve.py")


def py_spy_path() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _frame_key(frame: str) -> tuple[str, str]:
    """(short file, function) of one `func (file:line)` frame."""
    match = _FRAME.match(frame)
    if match is None:
        return ("?", frame)
    path = match.group("file")
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return (path, match.group("func"))


def _in_package(key: tuple[str, str], package: str) -> bool:
    path = key[0]
    return path.startswith(f"{package}/") or f"/{package}/" in path


def _is_entry(key: tuple[str, str], package: str) -> bool:
    return any(key[0] == f"{package}/{name}" for name in _ENTRY_FILES)


Stack = tuple[str | None, list[tuple[str, str]], int]  # thread id, frames root first, samples


def parse(text: str) -> list[Stack]:
    stacks: list[Stack] = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        raw = stack.split(";")
        match = _THREAD.match(raw[0]) if raw else None
        thread = None
        if match is not None:
            raw.pop(0)
            thread = match.group("name") or match.group(0)
        stacks.append((thread, [_frame_key(f) for f in raw], int(count)))
    return stacks


def summarize(
    text: str, *, top: int = 15, package: str = "authproxy", thread: str | None = None
) -> str:
    """The views as text; with `thread`, all but the threads block count that thread only."""
    stacks = parse(text)
    all_samples = sum(n for _, _, n in stacks)
    if thread is not None:
        per_thread: list[Stack] = [(t, f, n) for t, f, n in stacks if t == thread]
        if per_thread:
            stacks = per_thread
        else:
            thread = None
    total = sum(n for _, _, n in stacks)
    if total == 0:
        return "profile: no samples"
    threads: Counter[tuple[str, str]] = Counter()
    inclusive: Counter[tuple[str, str]] = Counter()
    attributed: Counter[tuple[str, str]] = Counter()
    leaves: Counter[tuple[str, str]] = Counter()
    for name, _, n in parse(text):
        if name is not None:
            threads[("thread", name)] += n
    for _, frames, n in stacks:
        for key in set(frames):
            if _in_package(key, package):
                inclusive[key] += n
        ours = [f for f in frames if _in_package(f, package) and not _is_entry(f, package)]
        attributed[ours[-1] if ours else (f"(no frame of {package}/)", "event loop, I/O")] += n
        if frames:
            leaves[frames[-1]] += n

    def block(title: str, counts: Counter[tuple[str, str]], of: int = total) -> list[str]:
        lines = [f"{title}:"]
        for (path, func), n in counts.most_common(top):
            lines.append(f"  {100 * n / of:5.1f} %  {path}:{func}")
        return lines

    out = [f"{all_samples} samples"]
    if threads:
        out += block("threads (% of all samples)", threads, all_samples)
    if thread is not None:
        out.append(f"below: % of the {total} samples of thread {thread}")
    out += block(f"inclusive, {package}/ functions", inclusive)
    out += block(f"attributed to the deepest {package}/ frame", attributed)
    out += block("self (leaf frames), any code", leaves)
    return "\n".join(out)


def summarize_file(
    path: Path, *, top: int = 15, package: str = "authproxy", thread: str | None = None
) -> str:
    text = path.read_text(errors="replace")
    return summarize(text, top=top, package=package, thread=thread)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Summarize a py-spy raw profile.")
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--package", default="authproxy")
    parser.add_argument("--thread", default=None, help="only this thread, e.g. MainThread")
    args = parser.parse_args(argv)
    print(summarize_file(args.file, top=args.top, package=args.package, thread=args.thread))


if __name__ == "__main__":
    main()
