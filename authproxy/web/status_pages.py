"""The gateway's own status: liveness (``/healthz``) and readiness (``/readyz``)."""

from __future__ import annotations

from aiohttp import web

from authproxy import appkeys as K

__all__ = ["healthz", "readyz"]


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers and at least one upstream passed its health checks.

    The upstreams' state comes from the monitor (one round runs before the first request),
    so a load balancer polling this never makes the gateway probe the engines itself.
    """
    app = request.app
    problems = []
    try:
        await app[K.STORE].ping()
    except Exception:
        problems.append("database unavailable")
    states = {u.name: u.health.healthy is True for u in app[K.CATALOG].upstreams}
    if not any(states.values()):
        problems.append("no upstream is healthy")
    body = {
        "status": "ready" if not problems else "not ready",
        "problems": problems,
        "upstreams": states,
    }
    return web.json_response(body, status=200 if not problems else 503)
