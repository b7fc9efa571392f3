"""Service definitions for engines: systemd units, launchd agents, and the shared hardening."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from authproxy.engines.profile import load_profile, render
from authproxy.engines.units import (
    ENGINE_SERVICE,
    launchd_agent,
    systemd_quote,
    systemd_unit,
)

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "systemd" / "authproxy-engine@.service"


def _service_lines(unit: str) -> list[str]:
    section = unit.split("[Service]\n", 1)[1].split("\n[", 1)[0]
    return [line for line in section.splitlines() if line and not line.startswith("#")]


def test_the_template_unit_has_exactly_the_shared_hardening() -> None:
    lines = _service_lines(TEMPLATE.read_text())
    shared = [f"{k}={v}" for k, v in ENGINE_SERVICE]
    assert [line for line in lines if line in shared] == shared
    own = [line for line in lines if line not in shared]
    assert all(line.startswith(("ExecStart=", "EnvironmentFile=", "DeviceAllow=")) for line in own)


def test_systemd_quote() -> None:
    assert systemd_quote("/srv/models/a.gguf") == "/srv/models/a.gguf"
    assert systemd_quote("threads=4") == "threads=4"
    assert systemd_quote("/my models/50%.gguf") == '"/my models/50%%.gguf"'
    assert systemd_quote("$HOME") == '"$$HOME"'
    assert systemd_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert systemd_quote(";") == '";"'


def test_a_cpu_unit_is_hardened_and_runs_engine_run() -> None:
    rendered = render(load_profile("llama-server-cpu"), {"model": "/m/tiny.gguf", "port": "8090"})
    unit = systemd_unit(rendered, ["engine", "run", "llama-server-cpu", "--model", "/m/tiny.gguf"])
    lines = _service_lines(unit)
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    assert exec_start.endswith(" engine run llama-server-cpu --model /m/tiny.gguf")
    for key, value in ENGINE_SERVICE:
        assert f"{key}={value}" in lines
    assert "PrivateDevices=yes" in lines and "MemoryDenyWriteExecute=yes" in lines
    assert "authproxy-engine-tiny.service" in unit  # where to save it
    assert unit.index("[Unit]") < unit.index("[Service]") < unit.index("[Install]")


def test_gpu_units_open_only_their_devices() -> None:
    vllm = render(load_profile("vllm-cuda"), {"model": "Qwen/Qwen2.5-7B-Instruct"})
    lines = _service_lines(systemd_unit(vllm, ["engine", "run", "vllm-cuda"]))
    assert "DevicePolicy=closed" in lines and "PrivateDevices=no" in lines
    assert "DeviceAllow=char-nvidia-uvm rw" in lines
    assert not [line for line in lines if line.startswith("MemoryDenyWriteExecute")]  # CUDA JIT
    vulkan = render(load_profile("llama-server-vulkan"), {"model": "/m/x.gguf"})
    lines = _service_lines(systemd_unit(vulkan, ["engine", "run", "llama-server-vulkan"]))
    assert "DeviceAllow=char-drm rw" in lines
    assert "SupplementaryGroups=render video" in lines


@pytest.mark.parametrize("run_args", [["engine", "run", "llama-server-metal", "--model", "/m/x"]])
def test_macos_profiles_get_a_launchd_agent(run_args: list[str]) -> None:
    rendered = render(load_profile("llama-server-metal"), {"model": "/m/x.gguf"})
    agent = plistlib.loads(launchd_agent(rendered, run_args).encode())
    assert agent["Label"] == "dev.authproxy.engine-x"
    assert agent["ProgramArguments"][-len(run_args) :] == run_args
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
