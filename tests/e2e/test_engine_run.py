"""The llama-server profiles against the real llama-server: its --help and `engine run`."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from authproxy.engines.profile import load_profile, render

from .llama_server import find_llama_server, free_port

LLAMA_PROFILES = ["llama-server-cpu", "llama-server-metal", "llama-server-vulkan"]
AUTHPROXY = [sys.executable, "-m", "authproxy"]
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_FLAG = re.compile(r"(?:^|[\s,])(-{1,2}[A-Za-z0-9][\w-]*)")


def help_flags(binary: Path) -> set[str]:
    """Every option llama-server's --help lists: the first 40 columns of lines starting with
    `-`, or the whole line when the option names overflow into the description column."""
    text = subprocess.run(
        [str(binary), "--help"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    flags: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("-") or line.startswith("-----"):
            continue
        column = line[:40] if len(line) <= 40 or line[39] == " " else line
        flags.update(_FLAG.findall(column))
    return flags


@pytest.mark.parametrize("name", LLAMA_PROFILES)
def test_profile_flags_are_options_of_the_real_llama_server(name: str) -> None:
    known = help_flags(find_llama_server())
    assert {"--model", "--ctx-size", "--n-gpu-layers", "--flash-attn"} <= known  # parser sanity
    every = {"model": "/m/x.gguf", "api_key_file": "/k", "device": "Vulkan0"}
    profile = load_profile(name)
    argv = render(profile, {k: v for k, v in every.items() if k in profile.params}).argv
    flags = {a for a in argv if a.startswith("-") and not a.lstrip("-").isdigit()}
    assert flags <= known, f"not in llama-server --help: {sorted(flags - known)}"


class EngineRun:
    """`authproxy engine run …` in a subprocess; stderr lines collected as they come."""

    def __init__(self, *, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [*AUTHPROXY, "engine", "run", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, within: float) -> str:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        tail = "\n".join(self.seen[-30:])
        raise AssertionError(f"no {text!r} from engine run within {within}s:\n{tail}")

    def stop(self, within: float = 20.0) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(within)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    raise
        finally:
            self._reader.join(10)  # the pipe is at its end once the process is gone
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
        return self.proc.returncode


def _get(url: str) -> dict[str, object]:
    with _DIRECT.open(url, timeout=10) as resp:
        body: dict[str, object] = json.load(resp)
        return body


@pytest.mark.parametrize("name", LLAMA_PROFILES)
def test_engine_run_serves_the_tiny_model_and_stops_cleanly(
    name: str, tiny_model_path: Path
) -> None:
    """Each llama-server profile, as rendered, starts the real (CPU-built) llama-server."""
    port = free_port()
    options = ["--set", "threads=1"] if name == "llama-server-cpu" else []
    run = EngineRun(
        args=[name, "--model", str(tiny_model_path), "--port", str(port),
              "--set", f"binary={find_llama_server()}", "--set", "ctx_size=4096", *options]
    )  # fmt: skip
    try:
        healthy = run.wait_for("is healthy at", within=90)
        assert f"authproxy: {name} is healthy at http://127.0.0.1:{port}" in healthy
        assert "(model tiny)" in healthy
        models = _get(f"http://127.0.0.1:{port}/v1/models")
        assert [m["id"] for m in models["data"]] == ["tiny"]  # type: ignore[attr-defined]
        body = json.dumps({"model": "tiny", "prompt": "a", "max_tokens": 4}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/completions",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with _DIRECT.open(request, timeout=30) as resp:
            assert json.load(resp)["usage"]["completion_tokens"] == 4
    finally:
        code = run.stop()
    assert code == 0, "\n".join(run.seen[-20:])
    with pytest.raises(ConnectionRefusedError):  # the engine is gone, not orphaned
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
