"""The benchmark's child processes: the fake engine and the gateway, on 127.0.0.1 only.

Children run in their own session, so a Ctrl-C in the terminal reaches only the benchmark,
whose ``finally`` stops them in order (terminate, wait, kill).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
_ENGINE_LINE = re.compile(r"fake engine listening on http://127\.0\.0\.1:(\d+)")


class BenchError(Exception):
    """The benchmark cannot go on (a child failed to start, a request failed)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def child_env(**extra: str) -> dict[str, str]:
    """This environment without AUTHPROXY_* overrides, with the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHPROXY_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a live process (Linux /proc), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time of each live thread of a process, keyed `tid name` (Linux /proc), else {}."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        out[f"{task.name} {name}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


def system_busy_seconds() -> float | None:
    """CPU time all processes of the machine have used since boot (Linux /proc/stat), else None."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy
    busy = sum(int(v) for i, v in enumerate(first[1:9]) if i not in (3, 4))
    return busy / os.sysconf("SC_CLK_TCK")


class Children:
    """Owns every long-running process the benchmark starts; `stop_all` is idempotent."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path | str = ROOT
    ) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append((name, proc, log))
        return proc

    def log_of(self, proc: subprocess.Popen[bytes]) -> Path:
        return next(log for _, p, log in self._procs if p is proc)

    def pid_of(self, name: str) -> int:
        return next(p.pid for n, p, _ in self._procs if n == name)

    def check_alive(self) -> None:
        for name, proc, log in self._procs:
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with {proc.returncode}:\n{tail(log)}")

    def stop_all(self, timeout: float = 10.0) -> None:
        procs = list(reversed(self._procs))
        self._procs.clear()
        for _, proc, _ in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for _, proc, _ in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_engine(
    children: Children, token_delay: float, model: str
) -> tuple[subprocess.Popen[bytes], int]:
    argv = [sys.executable, "-m", "tests.fakes.engine", "--port", "0", "--models", model]
    argv += ["--token-delay", repr(token_delay)]
    proc = children.start("engine", argv, child_env(PYTHONUNBUFFERED="1"))
    log = children.log_of(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = _ENGINE_LINE.search(log.read_text(errors="replace"))
        if match:
            return proc, int(match.group(1))
        children.check_alive()
        time.sleep(0.05)
    raise BenchError(f"the fake engine did not start within 30 s:\n{tail(log)}")


def write_gateway_config(workdir: Path, upstreams: dict[str, int], *, access_log: bool) -> Path:
    """The gateway config (JSON is YAML): one upstream per model (its name) at its port; the
    access log is off unless asked for (log_level warning)."""
    config = {
        "listen": {"host": HOST, "port": free_port()},
        "data_dir": str(workdir / "data"),
        "upstreams": [
            {"name": model, "url": f"http://{HOST}:{port}", "models": [model]}
            for model, port in upstreams.items()
        ],
        "log_level": "info" if access_log else "warning",
        "shutdown_grace": 2,
    }
    path = workdir / "authproxy.yaml"
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def gateway_port(config_path: Path) -> int:
    port: int = json.loads(config_path.read_text())["listen"]["port"]
    return port


def init_gateway(config_path: Path) -> str:
    """Run `authproxy init`; return the admin key it prints (the caller never prints it)."""
    argv = [sys.executable, "-m", "authproxy", "--config", str(config_path), "init"]
    done = subprocess.run(
        argv, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60, check=False
    )
    key = done.stdout.strip()
    if done.returncode != 0 or not key.startswith("sk-") or "\n" in key:
        raise BenchError(f"`authproxy init` failed ({done.returncode}): {done.stderr.strip()}")
    return key


def start_gateway(children: Children, config_path: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "authproxy", "--config", str(config_path), "serve"]
    proc = children.start("gateway", argv, child_env())
    port = gateway_port(config_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children.check_alive()
        if get_status(port, "/healthz") == 200:
            return proc
        time.sleep(0.05)
    raise BenchError(
        f"the gateway did not answer /healthz within 30 s:\n{tail(children.log_of(proc))}"
    )


def get_status(port: int, path: str) -> int | None:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return None
    finally:
        conn.close()
