"""An engine's base URL, taken apart once: where to connect and what to put in ``Host``."""

from __future__ import annotations

import base64
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

__all__ = ["Origin"]


class Origin(NamedTuple):
    """An engine's base URL, taken apart once. A named tuple: the pool's key, hashed on every
    request (a dataclass hashes in Python)."""

    host: str  # what to connect to (an IPv6 literal without brackets)
    port: int
    tls: bool
    host_header: str  # ``host[:port]`` as the Host header carries it (no default port)
    prefix: str  # the URL's path, put before every request's path ("" for none)
    authorization: str | None  # Basic credentials written in the URL, if any

    @classmethod
    def parse(cls, url: str) -> Origin:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        default = 443 if tls else 80
        port = parts.port or default
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return cls(
            host=host,
            port=port,
            tls=tls,
            host_header=shown if port == default else f"{shown}:{port}",
            prefix=parts.path.rstrip("/"),
            authorization=authorization,
        )
