"""The model lists the gateway answers itself: only the models the caller's role may use, by
their public names (aliases included), in OpenAI's shape (``GET /v1/models``) and in Ollama's
(``GET /api/tags``).

Next to OpenAI's fields each model carries ``display_name``, which Claude Code shows in its
model picker (it reads this list with ``CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1`` and
keeps only ids containing ``claude`` or ``anthropic``: an alias so named is how an admin puts a
model there). Query parameters (Claude Code sends ``?limit=1000``) change nothing: the list is
whole.
"""

from __future__ import annotations

from aiohttp import web

from authproxy import appkeys as K

__all__ = ["list_models", "list_tags"]

_EPOCH = "1970-01-01T00:00:00Z"  # Ollama clients parse modified_at as a time


def _allowed(request: web.Request) -> list[str]:
    principal = request[K.PRINCIPAL]
    policy = request.app[K.POLICY]
    catalog = request.app[K.CATALOG]
    return [m for m in catalog.enabled_models() if policy.may_use(principal.role, m)]


async def list_models(request: web.Request) -> web.Response:
    catalog = request.app[K.CATALOG]
    data = [
        {
            "id": model,
            "object": "model",
            "created": 0,
            "owned_by": ",".join(u.name for u in catalog.serving(model)),
            "display_name": model,
        }
        for model in _allowed(request)
    ]
    return web.json_response({"object": "list", "data": data})


async def list_tags(request: web.Request) -> web.Response:
    models = [
        {
            "name": model,
            "model": model,
            "modified_at": _EPOCH,
            "size": 0,
            "digest": "",
            "details": {},
        }
        for model in _allowed(request)
    ]
    return web.json_response({"models": models})
