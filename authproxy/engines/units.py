"""Service definitions for an engine: a hardened systemd unit (Linux) or a launchd agent (macOS).

Both run ``authproxy engine run …`` rather than the engine itself, so that the service is
reported ready only once the engine answers its health check (systemd ``Type=notify``).
``ENGINE_SERVICE`` is shared with ``systemd/authproxy-engine@.service`` (a test keeps the two
in step); a profile's ``unit:`` settings are added to, or replace, it.
"""

from __future__ import annotations

import plistlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from authproxy.engines.profile import Rendered

__all__ = [
    "ENGINE_SERVICE",
    "authproxy_command",
    "launchd_agent",
    "systemd_quote",
    "systemd_unit",
    "unit_name",
]

ENGINE_SERVICE: tuple[tuple[str, str], ...] = (
    ("Type", "notify"),  # `engine run` says READY=1 once the health check passes
    ("NotifyAccess", "main"),
    ("DynamicUser", "yes"),  # a throwaway uid: the engine owns nothing on the host
    ("User", "authproxy-engine"),  # one name (and uid) for every engine: they share the cache
    ("CacheDirectory", "authproxy-engine"),  # downloaded weights, compile caches
    ("Environment", "HOME=%C/authproxy-engine XDG_CACHE_HOME=%C/authproxy-engine"),
    ("Environment", "HF_HOME=%C/authproxy-engine/huggingface"),
    ("TimeoutStartSec", "20min"),  # big models load (or download) for a long time
    ("TimeoutStopSec", "60s"),
    ("KillMode", "mixed"),  # SIGTERM to `engine run`, which passes it on exactly once
    ("Restart", "on-failure"),
    ("RestartSec", "10s"),
    ("NoNewPrivileges", "yes"),
    ("CapabilityBoundingSet", ""),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "read-only"),  # models are read from wherever they are
    ("PrivateTmp", "yes"),
    ("PrivateMounts", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectProc", "invisible"),
    ("DevicePolicy", "closed"),  # only /dev/null & co, plus a profile's DeviceAllow=
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK"),
    ("RestrictNamespaces", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"),
    ("SystemCallArchitectures", "native"),
    ("SystemCallFilter", "@system-service"),
    ("SystemCallFilter", "~@privileged"),
    ("SystemCallErrorNumber", "EPERM"),
    ("UMask", "0077"),
)

_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def systemd_quote(arg: str) -> str:
    """One ExecStart= word: specifiers and variables escaped, quoted when needed."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if _SAFE.match(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authproxy_command() -> list[str]:
    """How a service starts this authproxy: its console script, else ``python -m authproxy``."""
    script = Path(sys.executable).parent / "authproxy"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "authproxy"]


def unit_name(rendered: Rendered) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", rendered.served_name).strip("-") or "engine"
    return f"authproxy-engine-{safe}"


def _settings(rendered: Rendered) -> list[tuple[str, str]]:
    extra = rendered.profile.unit
    out = [(k, v) for k, v in ENGINE_SERVICE if k not in extra]
    for key, value in extra.items():
        out.extend((key, v) for v in ([value] if isinstance(value, str) else value))
    return out


def systemd_unit(rendered: Rendered, run_args: Sequence[str]) -> str:
    """A complete unit that runs ``authproxy engine run`` with ``run_args``."""
    profile = rendered.profile
    exec_start = " ".join(systemd_quote(a) for a in [*authproxy_command(), *run_args])
    name = unit_name(rendered)
    lines = [
        f"# {profile.description}: {rendered.served_name} on {rendered.base_url}",
        f"# Save as /etc/systemd/system/{name}.service, then:",
        f"#   systemctl daemon-reload && systemctl enable --now {name}",
        "[Unit]",
        f"Description=authproxy engine {profile.name}: {rendered.served_name}"
        f" on {rendered.base_url}",
        "Wants=network-online.target",
        "After=network-online.target",
        "Before=authproxy.service",
        "",
        "[Service]",
        f"ExecStart={exec_start}",
        *(f"{k}={v}" for k, v in _settings(rendered)),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


def launchd_agent(rendered: Rendered, run_args: Sequence[str]) -> str:
    """A launchd agent (macOS) that keeps ``authproxy engine run`` going while you are logged in."""
    label = "dev.authproxy." + unit_name(rendered).removeprefix("authproxy-")
    logs = Path.home() / "Library" / "Logs" / f"{unit_name(rendered)}.log"
    agent = {
        "Label": label,
        "ProgramArguments": [*authproxy_command(), *run_args],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a crash, not after a stop
        "ProcessType": "Interactive",  # no background throttling of the GPU work
        "StandardOutPath": str(logs),
        "StandardErrorPath": str(logs),
    }
    header = (
        f"<!-- {rendered.profile.description}: {rendered.served_name} on {rendered.base_url}\n"
        f"     Save as ~/Library/LaunchAgents/{label}.plist, then:\n"
        f"       launchctl load -w ~/Library/LaunchAgents/{label}.plist -->\n"
    )
    body = plistlib.dumps(agent).decode()
    first, rest = body.split("\n", 1)  # the XML declaration must stay first
    return f"{first}\n{header}{rest}"
