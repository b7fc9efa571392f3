"""The systemd units, checked by systemd itself: `systemd-analyze verify` and `security`.

Both run offline, without systemd as PID 1 (Debian's `systemd` package is installed by
tests/setup/system_packages.sh). `verify` runs against a throwaway root (`--root`) holding
systemd's own units, ours, and stand-ins for the executables the units name, so that it can
check ExecStart= without anything being installed on this machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from authproxy.engines.profile import available, load_profile, render
from authproxy.engines.units import systemd_unit

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "systemd"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")
SAMPLE_MODEL = {"vllm-cuda": "Qwen/Qwen2.5-7B-Instruct"}
OK_EXPOSURE = 4.9  # systemd-analyze security: below 5.0 is "OK", below 1.0 "SAFE"

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze missing: tests/setup/system_packages.sh installs it"
)


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, timeout=120, check=False
    )


def _root_with(tmp_path: Path, units: dict[str, str]) -> Path:
    """A filesystem root with systemd's units, ours, and a stand-in for each ExecStart binary."""
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name, text in units.items():
        (root / "etc/systemd/system" / name).write_text(text)
        for program in re.findall(r"^ExecStart=(\S+)", text, flags=re.MULTILINE):
            stand_in = root / program.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
    return root


def _generated_units() -> dict[str, str]:
    units = {}
    for name in available():
        profile = load_profile(name)
        if profile.platform != "linux":
            continue
        model = SAMPLE_MODEL.get(name, "/srv/models/qwen2.5-7b-instruct-q4_k_m.gguf")
        rendered = render(profile, {"model": model})
        units[f"generated-{name}.service"] = systemd_unit(
            rendered, ["engine", "run", name, "--model", model]
        )
    return units


def test_every_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    units = {p.name: p.read_text() for p in UNITS.glob("*.service")}
    assert set(units) == {"authproxy.service", "authproxy-engine@.service"}
    units.update(_generated_units())
    root = _root_with(tmp_path, units)
    names = [n.replace("@.service", "@qwen.service") for n in sorted(units)]  # an instance
    result = _analyze("verify", f"--root={root}", *names)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""  # warnings (unknown keys, …) count as failures


def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    """The check above is not vacuous: a typo'd setting is reported (on stderr, with exit
    status 0, which is why the test above wants no output at all)."""
    text = (UNITS / "authproxy.service").read_text().replace("ProtectHome=", "ProtectHom=")
    root = _root_with(tmp_path, {"authproxy.service": text})
    result = _analyze("verify", f"--root={root}", "authproxy.service")
    assert "Unknown key 'ProtectHom' in section [Service]" in result.stderr


def _exposure(unit: Path) -> tuple[float, str]:
    result = _analyze("security", "--offline=true", "--no-pager", str(unit))
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d) (\w+)", result.stdout)
    assert match, result.stdout[-500:]
    return float(match.group(1)), match.group(2)


def test_the_gateway_unit_rates_ok_or_better() -> None:
    exposure, rating = _exposure(UNITS / "authproxy.service")
    assert exposure <= OK_EXPOSURE and rating in ("OK", "SAFE", "PERFECT"), (exposure, rating)


def test_engine_units_rate_ok_or_better(tmp_path: Path) -> None:
    scores = {}
    for name, text in _generated_units().items():
        path = tmp_path / name
        path.write_text(text)
        scores[name] = _exposure(path)
    template = tmp_path / "authproxy-engine@qwen.service"
    template.write_text((UNITS / "authproxy-engine@.service").read_text())
    scores[template.name] = _exposure(template)
    assert all(e <= OK_EXPOSURE for e, _ in scores.values()), scores
