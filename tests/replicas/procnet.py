"""Which process holds the server side of a TCP connection (Linux ``/proc``): how the tests see
which worker the kernel gave a connection to, without the gateway saying anything."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["children", "listeners", "owner_of_connection"]

LISTEN = "0A"  # the state column of a listening socket in /proc/net/tcp


def listeners(port: int) -> int:
    """How many sockets listen on 127.0.0.1:``port`` (one per live worker)."""
    local = f"0100007F:{_hex(port)}"
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    return sum(1 for f in rows if f[1] == local and f[3] == LISTEN)


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid``."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(p) for p in text)
    return found


def _hex(port: int) -> str:
    return f"{port:04X}"


def _server_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the accepted socket 127.0.0.1:server_port <- 127.0.0.1:client_port."""
    local, remote = f"0100007F:{_hex(server_port)}", f"0100007F:{_hex(client_port)}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return int(fields[9])
    return None


def owner_of_connection(pids: list[int], server_port: int, client_port: int) -> int | None:
    """Which of ``pids`` holds the accepted end of that connection (None: none of them)."""
    inode = _server_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        try:
            for fd in fds.iterdir():
                try:
                    if os.readlink(fd) == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None
