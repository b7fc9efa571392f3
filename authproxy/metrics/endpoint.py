"""``GET /metrics``: for an admin key, or for a scraper on this very machine.

A request that presents credentials is authenticated like any other and must act as an admin
(else 403). A request without credentials is let through only when it is a *direct* local
scrape: the TCP peer is a loopback address, no proxy header says it was relayed, and the
``Host`` header names a loopback host. A reverse proxy on the same host (Caddy) connects from
loopback too, so without the second check anyone on the internet could read the metrics through
it; a page in a browser on this machine can reach loopback too (DNS rebinding: its own name
made to resolve to 127.0.0.1), but its requests carry its own name in ``Host``, hence the third.
"""

from __future__ import annotations

import ipaddress
import re

from aiohttp import web

from authproxy import appkeys as K
from authproxy.errors import AuthenticationFailed, PermissionDenied

__all__ = [
    "METRICS_PATH",
    "PROXY_HEADERS",
    "anonymous_scrape",
    "is_direct_local",
    "metrics",
    "names_loopback",
]

METRICS_PATH = "/metrics"  # where the admin's scraper (admin/gateway_status) finds it too
# Set by reverse proxies (X-Forwarded-For: Caddy, nginx, Traefik; Forwarded: RFC 7239;
# X-Real-IP: nginx setups). Any of them means the real client is somewhere else.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
# A Host header: `[v6]` or a name or IPv4 address, then an optional port.
_HOST_RE = re.compile(r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9.-]+))(?::[0-9]{1,5})?")


def _loopback_address(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:  # a unix socket, no peer at all, or not an address
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack listener
    return address.is_loopback


def names_loopback(host: str | None) -> bool:
    """Whether a ``Host`` header names this machine's loopback: 127.0.0.1, [::1], localhost.

    An address literal cannot be rebound to anything, and ``localhost`` is resolved by the
    browser itself; any other name may be an attacker's that resolves to 127.0.0.1.
    """
    if not host:
        return False
    host = host.strip().lower()
    if _loopback_address(host):  # a bare ::1
        return True
    match = _HOST_RE.fullmatch(host)
    if match is None:
        return False
    if match["v6"] is not None:
        return ":" in match["v6"] and _loopback_address(match["v6"])
    return match["name"] == "localhost" or _loopback_address(match["name"])


def is_direct_local(request: web.Request) -> bool:
    """The peer is loopback, nothing says the request was relayed for someone else, and it was
    addressed to a loopback host name."""
    if not _loopback_address(request.remote or ""):
        return False
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    hosts = request.headers.getall("Host", [])
    return len(hosts) == 1 and names_loopback(hosts[0])


def anonymous_scrape(request: web.Request, failure: AuthenticationFailed) -> bool:
    """Whether an authentication ``failure`` on /metrics is a credential-less local scrape.

    Only "no credential at all" qualifies: a wrong key is refused even from loopback.
    """
    return failure.code == "missing_api_key" and is_direct_local(request)


async def metrics(request: web.Request) -> web.Response:
    principal = request.get(K.PRINCIPAL)  # None: a direct local scrape (see anonymous_scrape)
    if principal is None and not is_direct_local(request):  # the middleware let it in: recheck
        raise AuthenticationFailed("missing credentials", code="missing_api_key")
    if principal is not None and not request.app[K.POLICY].is_admin(principal.role):
        raise PermissionDenied("only admins may read the metrics", code="admin_only")
    body, content_type = request.app[K.METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})
