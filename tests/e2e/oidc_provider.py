"""Run the real OIDC provider (npm `oidc-provider`, tests/oidc/provider.mjs) on loopback.

The package is installed by ``tests/setup/install_oidc_provider.sh`` (``$OIDC_PROVIDER_DIR``
when the test command already ran it). Its development login screen accepts any login name.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import time
from functools import cache
from pathlib import Path

from .llama_server import HOST, REPO_ROOT, free_port
from .process import ChildProcess

OIDC_DIR = REPO_ROOT / "tests" / "oidc"
INSTALL_SCRIPT = REPO_ROOT / "tests" / "setup" / "install_oidc_provider.sh"
CLIENT_ID = "authproxy-e2e"
CLIENT_SECRET = "e2e-secret-not-for-production"


@cache
def provider_dir() -> Path:
    env = os.environ.get("OIDC_PROVIDER_DIR")
    if env and (Path(env) / "node_modules" / "oidc-provider").is_dir():
        return Path(env)
    proc = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{INSTALL_SCRIPT} failed with exit code {proc.returncode}")
    return Path(lines[-1])


class OidcProvider(ChildProcess):
    def __init__(self, *, workdir: Path) -> None:
        self.port = free_port()
        super().__init__(workdir / "oidc-provider.log")

    @property
    def issuer(self) -> str:
        return f"http://{HOST}:{self.port}"

    def settings(self, redirect_url: str) -> dict[str, object]:
        """The gateway's `oidc:` section for this provider."""
        return {
            "issuer": self.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_url": redirect_url,
            "scopes": ["openid", "email", "profile", "groups"],
            "roles_map": {"llm-admins": "admin"},
            "button_label": "Sign in with the test provider",
        }

    def start(self, redirect_url: str, timeout: float = 30.0) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed (tests/setup/system_packages.sh)")
        directory = provider_dir()
        argv = [node, "provider.mjs", str(self.port), CLIENT_ID, CLIENT_SECRET, redirect_url]
        with self.log_path.open("ab") as log:  # the child has its own copy of the descriptor
            self._proc = subprocess.Popen(
                argv, cwd=directory, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
            )
        assert self._proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited:\n{self.log_tail()}")
            ready, _, _ = select.select([self._proc.stdout], [], [], 0.2)
            if ready and self._proc.stdout.readline().startswith(b"ready "):
                return
        self.stop()
        raise RuntimeError(f"oidc-provider not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float | None = None) -> int | None:
        proc = self._proc
        code = super().stop(timeout)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        return code
