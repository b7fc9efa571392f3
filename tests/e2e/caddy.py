"""Run Debian's `caddy` with the project's own Caddyfile on loopback, the way a test needs it.

The Caddyfile is used as shipped; only its environment placeholders change: the site is
`localhost` with `tls internal`, Caddy binds 127.0.0.1 on free ports, its admin API is off,
and its data (the internal CA, certificates) and config live under the test's directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

from .llama_server import REPO_ROOT, free_port
from .process import StartOnEnter

CADDYFILE = REPO_ROOT / "Caddyfile"
SITE = "localhost"


def find_caddy() -> str | None:
    return shutil.which("caddy")


class Caddy(StartOnEnter):
    """`caddy run` in front of ``upstream_port`` (use as a context manager)."""

    stop_timeout = 15.0
    tail_lines = 20

    def __init__(
        self, *, workdir: Path, upstream_port: int, extra_env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.upstream_port = upstream_port
        self.extra_env = dict(extra_env or {})
        self.https_port = 0
        super().__init__(workdir / "caddy.log")

    @property
    def root_cert(self) -> Path:
        """The internal CA's root, which clients must trust (`tls internal`)."""
        return self.workdir / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.root_cert))

    @property
    def base_url(self) -> str:
        return f"https://{SITE}:{self.https_port}"

    def _env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("CADDY_", "AUTHPROXY_"))}
        return {
            **keep,
            "HOME": str(self.workdir),
            "XDG_DATA_HOME": str(self.workdir / "data"),
            "XDG_CONFIG_HOME": str(self.workdir / "config"),
            "CADDY_DOMAIN": SITE,
            "CADDY_TLS": "internal",
            "CADDY_BIND": "127.0.0.1",
            "CADDY_HTTPS_PORT": str(self.https_port),
            "CADDY_HTTP_PORT": str(free_port()),
            "CADDY_ADMIN": "off",
            "CADDY_UPSTREAM": f"127.0.0.1:{self.upstream_port}",
            **self.extra_env,
        }

    def start(self, timeout: float = 30.0) -> None:
        caddy = find_caddy()
        if caddy is None:
            raise AssertionError("caddy is not installed (tests/setup/system_packages.sh)")
        for attempt in range(3):  # a free port can be taken between the check and the bind
            self.https_port = free_port()
            with self.log_path.open("ab") as log:
                self._proc = subprocess.Popen(
                    [caddy, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    env=self._env(),
                )
            if self._wait_tls(timeout):
                return
            in_use = "address already in use" in self.log_tail()
            self.stop()
            if not in_use or attempt == 2:
                break
        raise AssertionError(f"caddy did not serve TLS within {timeout}s:\n{self.log_tail()}")

    def _wait_tls(self, timeout: float) -> bool:
        """True once a TLS handshake for the site verifies against the internal CA."""
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            if self.root_cert.exists():
                try:
                    self._handshake()
                except (OSError, ssl.SSLError):
                    pass
                else:
                    return True
            time.sleep(0.1)
        return False

    def _handshake(self) -> None:
        with socket.create_connection(("127.0.0.1", self.https_port), timeout=2) as sock:
            self.ssl_context().wrap_socket(sock, server_hostname=SITE).close()
