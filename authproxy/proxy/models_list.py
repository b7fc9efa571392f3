"""``GET /v1/models``: the models the caller's role may use, by their public names."""

from __future__ import annotations

from aiohttp import web

from authproxy import appkeys as K

__all__ = ["list_models"]


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
