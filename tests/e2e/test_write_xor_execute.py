"""`MemoryDenyWriteExecute=yes` in the gateway unit and the llama-server-cpu unit is safe.

systemd-analyze cannot run a service here (systemd is not PID 1), so the one setting that can
break a working program at run time is reproduced by hand: the kernel's PR_SET_MDWE (Linux 6.3
and later), the same "no writable and executable memory" rule, inherited across exec. The real
gateway and the real llama-server then serve a streamed completion under it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .gateway import Gateway
from .llama_server import LlamaServer, find_llama_server

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PR_SET_MDWE, PR_GET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 66, 1
WRAPPER = """#!{python}
import ctypes, os, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
if libc.prctl({set_mdwe}, {refuse_exec_gain}, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE failed")
os.execv({target!r}, [{target!r}, *sys.argv[1:]])
"""


def _kernel_has_mdwe() -> bool:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    return bool(libc.prctl(PR_GET_MDWE, 0, 0, 0, 0) >= 0)


pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not _kernel_has_mdwe(),
    reason="the kernel has no PR_SET_MDWE (Linux 6.3+)",
)


def _wrapper(tmp_path: Path, target: str) -> Path:
    """An executable that turns on W^X for itself, then execs ``target`` with its arguments."""
    path = tmp_path / f"wx-{Path(target).name}"
    path.write_text(
        WRAPPER.format(
            python=sys.executable,
            set_mdwe=PR_SET_MDWE,
            refuse_exec_gain=PR_MDWE_REFUSE_EXEC_GAIN,
            target=target,
        )
    )
    path.chmod(0o755)
    return path


def test_the_wrapper_really_forbids_writable_executable_memory(tmp_path: Path) -> None:
    wrapper = _wrapper(tmp_path, sys.executable)
    probe = (
        "import mmap\n"
        "try:\n"
        "    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "except PermissionError:\n"
        "    print('refused')\n"
    )
    done = subprocess.run([str(wrapper), "-c", probe], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "refused", done.stderr


def test_gateway_and_llama_server_work_without_writable_executable_memory(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    engine_bin = _wrapper(tmp_path, str(find_llama_server()))
    with LlamaServer(tiny_model_path, binary=engine_bin, parallel=1, embeddings=False) as engine:
        gateway = Gateway(
            workdir=tmp_path,
            settings={"upstreams": [{"name": "llama", "url": engine.base_url, "models": ["tiny"]}]},
        )
        key = gateway.run("init").strip()
        python_wx = _wrapper(tmp_path, sys.executable)
        proc = subprocess.Popen(
            [str(python_wx), "-m", "authproxy", "--config", str(gateway.config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("AUTHPROXY_")},
        )
        try:
            _wait_healthy(gateway.base_url)
            body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}],
                    "max_tokens": 16, "stream": True}  # fmt: skip
            request = urllib.request.Request(
                f"http://127.0.0.1:{gateway.port}/v1/chat/completions",
                data=json.dumps(body).encode(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            with _DIRECT.open(request, timeout=60) as resp:
                events = [line for line in resp.read().decode().splitlines() if line]
            assert events[-1] == "data: [DONE]"
            assert len(events) > 5
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0
        assert engine.health_status() == 200  # the engine is still up, under W^X too


def _wait_healthy(base_url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with _DIRECT.open(base_url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gateway under W^X did not become healthy")
