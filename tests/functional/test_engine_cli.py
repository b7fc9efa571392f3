"""`authproxy engine …` and `init --engine` in real processes, with a stand-in engine.

The stand-in is a small HTTP server run through a profile file of its own, so that what
`engine run` does around an engine — waiting for health, telling systemd it is ready,
passing SIGTERM on exactly once, reporting an engine that dies or hangs — is checked here
without llama-server (tests/e2e/test_engine_run.py runs the real one).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .helpers import AUTHPROXY, cli_env, run_cli

STAND_IN = """\
import http.server, os, signal, sys, threading, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
port, ready_after, log = int(args["--port"]), float(args["--ready-after"]), args["--log"]
if args.get("--exit"):
    sys.exit(int(args["--exit"]))
started = time.monotonic()
def noted(signum, frame):  # note every signal; exit half a second after the first
    with open(log, "a") as f:
        f.write(f"signal {signum}\\n")
    if not stopping:
        stopping.append(threading.Timer(0.5, os._exit, (0,)))
        stopping[0].start()
stopping = []
signal.signal(signal.SIGTERM, noted)
signal.signal(signal.SIGINT, noted)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = time.monotonic() - started >= ready_after
        self.send_response(200 if ok else 503)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    """A profile file whose engine is the stand-in above."""
    script = tmp_path / "stand-in-engine"
    script.write_text(f"#!{sys.executable}\n{STAND_IN}")
    script.chmod(0o755)
    profile = {
        "description": "stand-in engine",
        "engine": "stand-in",
        "health_path": "/health",
        "params": {
            "binary": {"default": str(script), "help": "h"},
            "model": {"type": "file", "help": "h"},
            "port": {"type": "int", "default": 8080, "help": "h"},
            "name": {"default": "{model_stem}", "help": "h"},
            "ready_after": {"type": "float", "default": 0, "help": "h"},
            "exit": {"default": "", "help": "h"},
            "log": {"default": str(tmp_path / "signals.log"), "help": "h"},
        },
        "argv": [
            "{binary}",
            ["--port", "{port}"],
            ["--ready-after", "{ready_after}"],
            ["--log", "{log}"],
            ["--exit", "{exit}"],
        ],
    }
    path = tmp_path / "stand-in.yaml"
    path.write_text(yaml.safe_dump(profile))
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    return path


def _start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [AUTHPROXY, "engine", "run", *args],
        cwd=tmp_path,
        env={**cli_env(), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(20)
    yield sock
    sock.close()


def test_run_waits_for_health_notifies_systemd_and_passes_sigterm_on_once(
    tmp_path: Path, stand_in: Path, notify_socket: socket.socket
) -> None:
    port = _free_port()
    started = time.monotonic()
    proc = _start(
        tmp_path,
        str(stand_in),
        "--model=model.gguf",
        f"--port={port}",
        "--set=ready_after=2.5",  # answers 503 first, like an engine loading its model
        env={"NOTIFY_SOCKET": str(tmp_path / "notify")},
    )
    try:
        messages: list[str] = []
        while not any("READY=1" in m for m in messages):
            messages.append(notify_socket.recv(4096).decode())
        ready_after = time.monotonic() - started
        assert ready_after >= 2.5, "READY=1 must wait for a 200 from the health path"
        assert any(m.startswith("STATUS=loading") for m in messages), messages  # progress
        assert f"STATUS=serving model at http://127.0.0.1:{port}" in messages[-1]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert (tmp_path / "signals.log").read_text() == f"signal {signal.SIGTERM.value}\n"
    assert "waiting for http://127.0.0.1:" in err and "HTTP 503, loading" in err
    assert f"is healthy at http://127.0.0.1:{port}" in err
    assert out == ""


async def test_an_engine_that_dies_or_hangs_is_reported(tmp_path: Path, stand_in: Path) -> None:
    died = await run_cli("engine", "run", str(stand_in), "--model", "model.gguf",
                         "--port", str(_free_port()), "--set", "exit=3", cwd=tmp_path)  # fmt: skip
    assert died.returncode == 3
    assert "exited with status 3 before it became healthy" in died.stderr.splitlines()[-1]

    hung = await run_cli("engine", "run", str(stand_in), "--model", "model.gguf",
                         "--port", str(_free_port()), "--set", "ready_after=600",
                         "--timeout", "1", cwd=tmp_path)  # fmt: skip
    assert hung.returncode == 1
    assert "not healthy after 1s; stopping it" in hung.stderr.splitlines()[-1]
    assert (tmp_path / "signals.log").read_text() == f"signal {signal.SIGTERM.value}\n"


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("authproxy: ")
    return lines[0]


async def test_run_refuses_with_one_line_before_starting_anything(
    tmp_path: Path, stand_in: Path
) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        cases = {
            "engine binary 'no-such-llama-server' was not found; install it or pass --set"
            " binary=": ["llama-server-cpu", "--model", "model.gguf", "--set",
                         "binary=no-such-llama-server"],
            "model file missing.gguf does not exist": [str(stand_in), "--model", "missing.gguf"],
            f"port {busy.getsockname()[1]} on 127.0.0.1 is already in use": [
                str(stand_in), "--model", "model.gguf", "--port", str(busy.getsockname()[1])],
            "llama-server-cpu: model is required": ["llama-server-cpu"],
        }  # fmt: skip
        for expected, args in cases.items():
            result = await run_cli("engine", "run", *args, cwd=tmp_path)
            assert result.returncode == 1
            assert expected in _one_line(result.stderr)
            assert result.stdout == ""
    finally:
        busy.close()
    assert not (tmp_path / "signals.log").exists()


async def test_command_list_and_params(tmp_path: Path) -> None:
    listed = await run_cli("engine", "list")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == [
        "llama-server-cpu", "llama-server-metal", "llama-server-vulkan", "vllm-cuda"]  # fmt: skip
    params = await run_cli("engine", "params", "vllm-cuda")
    assert "gpu_memory_utilization   '0.90'" in params.stdout.replace("'0.9'", "'0.90'")
    shown = await run_cli("engine", "command", "vllm-cuda", "--model", "Qwen/Qwen2.5-7B-Instruct",
                          "--port", "8001", "--set", "gpus=1", "--json")  # fmt: skip
    body = json.loads(shown.stdout)
    assert body["argv"][:3] == ["vllm", "serve", "Qwen/Qwen2.5-7B-Instruct"]
    assert body["env"]["CUDA_VISIBLE_DEVICES"] == "1"
    assert body["health_url"] == "http://127.0.0.1:8001/health"
    text = await run_cli("engine", "command", "llama-server-cpu", "--model", "/m/my model.gguf")
    assert text.stdout.startswith("llama-server --model '/m/my model.gguf' --alias 'my model'")


async def test_unit_names_absolute_paths(tmp_path: Path) -> None:
    (tmp_path / "tiny.gguf").write_bytes(b"GGUF")
    result = await run_cli("engine", "unit", "llama-server-cpu", "--model", "tiny.gguf",
                           "--set", f"binary={sys.executable}", cwd=tmp_path)  # fmt: skip
    exec_start = next(x for x in result.stdout.splitlines() if x.startswith("ExecStart="))
    assert exec_start == (
        f"ExecStart={AUTHPROXY} engine run llama-server-cpu --model {tmp_path}/tiny.gguf"
        f" --set binary={sys.executable}"
    )


CONFIG_WITH_COMMENTS = textwrap.dedent("""\
    # my gateway
    listen: {host: 127.0.0.1, port: 8400}   # loopback only
    roles:
      admin: {models: ["*"]}
      user: {models: ["*"]}
""")


async def test_init_engine_creates_or_appends_but_never_rewrites(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    created = await run_cli("init", "--engine", "llama-server-cpu", cwd=fresh)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("sk-") and len(created.stdout.splitlines()) == 1
    config = yaml.safe_load((fresh / "authproxy.yaml").read_text())
    assert config["upstreams"] == [{"name": "llama-server-cpu", "url": "http://127.0.0.1:8080",
                                    "discover": True, "health_path": "/health"}]  # fmt: skip
    assert (fresh / "data" / "authproxy.db").exists()

    commented = tmp_path / "commented.yaml"
    commented.write_text(CONFIG_WITH_COMMENTS)
    appended = await run_cli("--config", str(commented), "init", "--engine", "vllm-cuda",
                             "--engine-port", "8001", cwd=tmp_path)  # fmt: skip
    assert appended.returncode == 0, appended.stderr
    text = commented.read_text()
    assert text.startswith(CONFIG_WITH_COMMENTS.rstrip("\n"))  # comments and layout kept
    assert yaml.safe_load(text)["upstreams"][0]["url"] == "http://127.0.0.1:8001"
    checked = await run_cli("--config", str(commented), "check-config")
    assert checked.returncode == 0, checked.stderr

    before = text
    again = await run_cli("--config", str(commented), "init", "--engine", "llama-server-cpu",
                          "--name", "second", cwd=tmp_path)  # fmt: skip
    assert commented.read_text() == before  # it lists upstreams: print, don't edit
    assert "add this under `upstreams:` yourself" in again.stderr
    assert "url: http://127.0.0.1:8080" in again.stderr


async def test_init_engine_with_an_unknown_profile_changes_nothing(tmp_path: Path) -> None:
    result = await run_cli("init", "--engine", "tgi", cwd=tmp_path)
    assert result.returncode == 1
    assert "unknown engine profile 'tgi'" in _one_line(result.stderr)
    assert os.listdir(tmp_path) == []
