"""``GET /metrics``: for an admin key, or for a scraper on this very machine.

A request that presents credentials is authenticated like any other and must act as an admin
(else 403). A request without credentials is let through only when it is a *direct* local
scrape: the TCP peer is a loopback address and no proxy header says it was relayed. A reverse
proxy on the same host (Caddy) connects from loopback too, so without that second check anyone
on the internet could read the metrics through it.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from authproxy import appkeys as K
from authproxy.endpoints import METRICS_PATH
from authproxy.errors import AuthenticationFailed, PermissionDenied

# Set by reverse proxies (X-Forwarded-For: Caddy, nginx, Traefik; Forwarded: RFC 7239;
# X-Real-IP: nginx setups). Any of them means the real client is somewhere else.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def is_direct_local(request: web.Request) -> bool:
    """The peer is loopback and nothing says the request was relayed for someone else."""
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:  # a unix socket, or no peer at all
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack listener
    if not peer.is_loopback:
        return False
    return not any(name in request.headers for name in PROXY_HEADERS)


def anonymous_scrape(path: str, request: web.Request, failure: AuthenticationFailed) -> bool:
    """Whether an authentication ``failure`` is a credential-less local scrape of /metrics.

    Only "no credential at all" qualifies: a wrong key is refused even from loopback.
    """
    return path == METRICS_PATH and failure.code == "missing_api_key" and is_direct_local(request)


async def metrics(request: web.Request) -> web.Response:
    principal = request.get(K.PRINCIPAL)  # None: a direct local scrape (see anonymous_scrape)
    if principal is None and not is_direct_local(request):  # the middleware let it in: recheck
        raise AuthenticationFailed("missing credentials", code="missing_api_key")
    if principal is not None and not request.app[K.POLICY].is_admin(principal.role):
        raise PermissionDenied("only admins may read the metrics", code="admin_only")
    body, content_type = request.app[K.METRICS].render()
    return web.Response(body=body, headers={"Content-Type": content_type})
