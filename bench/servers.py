"""The benchmark's other servers: Caddy (a static upstream, and reverse_proxy in front of each
upstream), the floor proxy (bench/floor_proxy.py) and the real llama-server with the tiny model.

All bind 127.0.0.1 on free ports and run as `Children` of the benchmark, so they are stopped on
the way out. Caddy gets a JSON config of its own (admin API off, no automatic HTTPS) and its
state directories under the run's temporary directory.
"""

from __future__ import annotations

import importlib
import json
import re
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

from bench.procs import HOST, BenchError, Children, child_env, free_port, get_status, tail

STATIC_BODY = json.dumps(
    {
        "id": "chatcmpl-static",
        "object": "chat.completion",
        "created": 0,
        "model": "static",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "tok0 tok1 tok2 tok3 tok4 tok5 "},
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 6, "completion_tokens": 6, "total_tokens": 12},
    },
    separators=(",", ":"),
)
_FLOOR_LINE = re.compile(r"floor proxy listening on http://127\.0\.0\.1:(\d+)")


def caddy_path() -> str | None:
    return shutil.which("caddy")


def _caddy_server(port: int, handler: dict[str, object]) -> dict[str, object]:
    return {
        "listen": [f"{HOST}:{port}"],
        "automatic_https": {"disable": True},
        "routes": [{"handle": [handler]}],
    }


def _start_caddy(children: Children, name: str, servers: dict[str, dict[str, object]]) -> None:
    caddy = caddy_path()
    if caddy is None:
        raise BenchError("caddy is not installed (apt-get install caddy)")
    home = children.workdir / name
    home.mkdir(exist_ok=True)
    config = {"admin": {"disabled": True}, "apps": {"http": {"servers": servers}}}
    path = home / "caddy.json"
    path.write_text(json.dumps(config, indent=2) + "\n")
    env = child_env(
        HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config")
    )
    proc = children.start(name, [caddy, "run", "--config", str(path)], env, cwd=home)
    ports = [int(s["listen"][0].rsplit(":", 1)[1]) for s in servers.values()]  # type: ignore[index]
    _wait_ready(children, proc, name, ports, "/")


def _wait_ready(
    children: Children, proc: object, name: str, ports: list[int], path: str, within: float = 60
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        children.check_alive()
        if all(get_status(port, path) is not None for port in ports):
            return
        time.sleep(0.05)
    log = children.workdir / f"{name}.log"
    raise BenchError(f"{name} did not answer within {within:g} s:\n{tail(log)}")


def start_caddy_static(children: Children) -> tuple[int, int]:
    """Caddy answering every request with one fixed chat completion; (pid, port)."""
    port = free_port()
    handler = {
        "handler": "static_response",
        "status_code": 200,
        "headers": {"Content-Type": ["application/json"]},
        "body": STATIC_BODY,
    }
    _start_caddy(children, "caddy-static", {"static": _caddy_server(port, handler)})
    return children.pid_of("caddy-static"), port


def start_caddy_proxy(children: Children, upstreams: dict[str, int]) -> tuple[int, dict[str, int]]:
    """One Caddy with a reverse_proxy listener per upstream (flush_interval -1: no buffering);
    (pid, {upstream name: port})."""
    ports = {name: free_port() for name in upstreams}
    servers = {
        name: _caddy_server(
            ports[name],
            {
                "handler": "reverse_proxy",
                "upstreams": [{"dial": f"{HOST}:{upstream_port}"}],
                "flush_interval": -1,
            },
        )
        for name, upstream_port in upstreams.items()
    }
    _start_caddy(children, "caddy-proxy", servers)
    return children.pid_of("caddy-proxy"), ports


def start_floor(children: Children, name: str, upstream_port: int) -> tuple[int, int]:
    """The bare aiohttp proxy in front of one upstream; (pid, port)."""
    argv = [
        sys.executable,
        "-m",
        "bench.floor_proxy",
        "--upstream",
        f"http://{HOST}:{upstream_port}",
    ]
    proc = children.start(name, argv, child_env(PYTHONUNBUFFERED="1"))
    log = children.log_of(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = _FLOOR_LINE.search(log.read_text(errors="replace"))
        if match:
            return proc.pid, int(match.group(1))
        children.check_alive()
        time.sleep(0.05)
    raise BenchError(f"{name} did not start within 30 s:\n{tail(log)}")


def _e2e(module: str) -> ModuleType:
    """A helper of the e2e tier (tests/e2e), imported by name: the tests are not a package that
    the type checker sees under this name."""
    return importlib.import_module(f"tests.e2e.{module}")


def start_llama(children: Children) -> tuple[int, int]:
    """The real llama-server serving the tiny test model, started as the e2e tests start it
    (tests/e2e/llama_server.py: $LLAMA_SERVER_BIN or the cached build); (pid, port)."""
    llama = _e2e("llama_server")
    try:
        binary = Path(llama.find_llama_server())
    except llama.LlamaServerError as exc:
        raise BenchError(f"llama-server: {exc} (tests/run.sh builds and caches it)") from None
    model = Path(_e2e("tiny_model").write_tiny_model(children.workdir / "tiny.gguf"))
    port = free_port()
    argv = [str(a) for a in llama.LlamaServer(model).argv(binary, port)]
    proc = children.start("llama-server", argv, child_env())
    deadline = time.monotonic() + 120
    while get_status(port, "/health") != 200:  # nothing, then 503 while the model loads
        children.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"llama-server not healthy:\n{tail(children.log_of(proc))}")
        time.sleep(0.05)
    return proc.pid, port


__all__ = [
    "STATIC_BODY",
    "caddy_path",
    "start_caddy_proxy",
    "start_caddy_static",
    "start_floor",
    "start_llama",
]
