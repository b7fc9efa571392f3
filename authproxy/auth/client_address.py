"""The client's address: X-Forwarded-For is believed only when it comes from a trusted proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import web

__all__ = ["ClientAddress"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    def __init__(self, *, trusted_proxies: Iterable[str]) -> None:
        self._trusted: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(p, strict=False) for p in trusted_proxies
        )
        self._verdicts: dict[str, bool] = {}  # peers repeat: parse each address once

    def _is_trusted(self, address: str) -> bool:
        verdict = self._verdicts.get(address)
        if verdict is None:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                verdict = False
            else:
                verdict = any(ip in net for net in self._trusted)
            if len(self._verdicts) < 10_000:
                self._verdicts[address] = verdict
        return verdict

    def of(self, request: web.Request) -> str:
        peer = request.remote or ""
        if not self._trusted or not self._is_trusted(peer):
            return peer
        hops: list[str] = []
        for header in request.headers.getall("X-Forwarded-For", ()):
            hops.extend(h.strip() for h in header.split(",") if h.strip())
        # Walk from the nearest hop outwards; the first one we don't trust is the client.
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer
        return hops[0] if hops else peer

    def came_over_tls(self, request: web.Request) -> bool:
        if request.secure:
            return True
        if not self._is_trusted(request.remote or ""):
            return False
        return request.headers.get("X-Forwarded-Proto", "").lower() == "https"
