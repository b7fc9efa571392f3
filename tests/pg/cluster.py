"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, initdb into a
temporary directory, the server on 127.0.0.1 on a free port (its unix socket in that directory
too), a database per test, and `pg_ctl stop -m fast` at the end; nothing is left behind.

PostgreSQL refuses to run as root: run as root (as CI does), the cluster belongs to the
`postgres` system user that Debian's `postgresql` package creates, and its programs run through
`runuser`. Clients (the tests, the gateway) connect over TCP with a password, as in production.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"
USER = "authproxy"
RUN_AS = "postgres"  # the owner of the cluster when the tests run as root
START_TIMEOUT = 60.0


class ClusterError(Exception):
    pass


def find_bindir() -> Path:
    """The newest server in /usr/lib/postgresql/<version>/bin (Debian's layout)."""
    found = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if not found:
        raise ClusterError(
            "no PostgreSQL server under /usr/lib/postgresql (install Debian's `postgresql`:"
            " tests/setup/system_packages.sh does)"
        )
    return max(found, key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)] or [0])


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _progress(message: str) -> None:
    print(f"postgres: {message}", file=sys.stderr, flush=True)


class PostgresCluster:
    """``with PostgresCluster() as pg:`` a running server; ``pg.create_database()`` a URL."""

    def __init__(self, *, bindir: Path | None = None, durable: bool = False) -> None:
        """``durable``: keep PostgreSQL's fsync and synchronous commit (benchmarks); tests
        run without them, for speed."""
        self.bindir = bindir or find_bindir()
        self.durable = durable
        self.password = secrets.token_urlsafe(16)
        self._owner = pwd.getpwnam(RUN_AS) if os.getuid() == 0 else None
        # As root, in /tmp: a $TMPDIR under /root would be out of the postgres user's reach.
        where = "/tmp" if self._owner is not None else None
        self.base = Path(tempfile.mkdtemp(prefix="authproxy-pg-", dir=where))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = 0
        self._names = itertools.count(1)
        self._running = False

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._owner is not None:
            os.chown(self.base, self._owner.pw_uid, self._owner.pw_gid)
        self.base.chmod(0o700)
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._owner is not None:
            os.chown(pwfile, self._owner.pw_uid, self._owner.pw_gid)
        _progress(f"initdb {self.data} ({self.bindir.parent.name})")
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            USER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",  # the socket lives in our private directory
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            *self._linguistic_collation(),
        )
        pwfile.unlink()
        for attempt in range(3):  # another process may take the free port before we bind it
            self.port = free_port()
            if self._start_server():
                return
            _progress(f"port {self.port} was taken; trying another ({attempt + 1})")
        raise ClusterError(f"the server did not start; its log:\n{self.log_tail()}")

    def _linguistic_collation(self) -> list[str]:
        """A linguistic default collation (not byte order), as most real databases have: the
        store must still sort names byte-wise, as SQLite does (ICU defaults: PostgreSQL 15+)."""
        major = int(re.sub(r"\D.*", "", self.bindir.parent.name) or 0)
        return ["--locale-provider=icu", "--icu-locale=en-US"] if major >= 15 else []

    def _start_server(self) -> bool:
        options = " ".join(
            [
                f"-c listen_addresses={HOST}",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.base}",
                "-c max_connections=200",
            ]
        )
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl", "start", "--pgdata", str(self.data), "-l", str(self.log), "-o", options, "-W"
        )
        self._running = True
        started = time.monotonic()
        shown = 0
        while time.monotonic() - started < START_TIMEOUT:
            ready = subprocess.run(
                [str(self.bindir / "pg_isready"), "-q", "-h", HOST, "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                _progress(f"accepting connections on {HOST}:{self.port}")
                return True
            if not (self.data / "postmaster.pid").exists() and time.monotonic() - started > 1:
                self._running = False
                return False  # it gave up (a port in use ends it at once)
            if (waited := int(time.monotonic() - started)) > shown:
                shown = waited
                _progress(f"waiting for {HOST}:{self.port} ({waited} s)")
            time.sleep(0.1)
        raise ClusterError(f"no connection after {START_TIMEOUT:.0f} s; log:\n{self.log_tail()}")

    def pause(self) -> None:
        """Stop the server (fast shutdown: every connection is cut), keeping its data."""
        if self._running:
            self._run("pg_ctl", "--pgdata", str(self.data), "stop", "-m", "fast", "-w")
            self._running = False

    def resume(self) -> None:
        """Start the paused server again, on the same port."""
        if not self._start_server():
            raise ClusterError(f"the server did not start again; log:\n{self.log_tail()}")

    def restart(self) -> None:
        """Stop and start again (what an upgrade or a failover looks like to a client)."""
        self.pause()
        self.resume()

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove the directory; safe to call twice."""
        if self._running:
            self._running = False
            try:
                self._run("pg_ctl", "--pgdata", str(self.data), "stop", "-m", "fast", "-w")
            except ClusterError:
                self._kill_leftover()
        shutil.rmtree(self.base, ignore_errors=True)

    def _kill_leftover(self) -> None:
        try:
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            return

    # -- databases --------------------------------------------------------------------------

    def url(self, database: str) -> str:
        return f"postgresql://{USER}:{self.password}@{HOST}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database (``t1``, ``t2``, … unless named); its URL."""
        name = name or f"t{next(self._names)}"
        self._client("createdb", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop it, ending whatever connections a test left open to it."""
        self._client("dropdb", "--force", name)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- running the programs ---------------------------------------------------------------

    def _client(self, program: str, *args: str) -> None:
        self._run(program, "-h", str(self.base), "-p", str(self.port), "-U", USER, *args)

    def _run(self, program: str, *args: str) -> None:
        argv = [str(self.bindir / program), *args]
        if self._owner is not None:
            argv = ["runuser", "-u", RUN_AS, "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ClusterError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")
