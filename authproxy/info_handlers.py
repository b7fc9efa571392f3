"""The gateway's own endpoints: model list, liveness, readiness."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from authproxy import appkeys as K
from authproxy.upstreams import Upstream


async def list_models(request: web.Request) -> web.Response:
    principal = request[K.PRINCIPAL]
    policy = request.app[K.POLICY]
    catalog = request.app[K.CATALOG]
    data = [
        {
            "id": model,
            "object": "model",
            "created": 0,
            "owned_by": ",".join(u.name for u in catalog.serving(model)),
        }
        for model in catalog.enabled_models()
        if policy.may_use(principal.role, model)
    ]
    return web.json_response({"object": "list", "data": data})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _probe(session: aiohttp.ClientSession, upstream: Upstream) -> bool:
    try:
        async with session.get(
            upstream.url + upstream.health_path,
            headers=upstream.auth_headers(),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=2),
        ) as resp:
            up = resp.status == 200
    except (aiohttp.ClientError, TimeoutError):
        up = False
    upstream.reachable = up
    return up


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    problems = []
    try:
        await app[K.STORE].ping()
    except Exception:
        problems.append("database unavailable")
    upstreams = app[K.CATALOG].upstreams
    states = await asyncio.gather(*(_probe(app[K.SESSION], u) for u in upstreams))
    if not any(states):
        problems.append("no upstream is healthy")
    body = {
        "status": "ready" if not problems else "not ready",
        "problems": problems,
        "upstreams": {u.name: up for u, up in zip(upstreams, states, strict=True)},
    }
    return web.json_response(body, status=200 if not problems else 503)
