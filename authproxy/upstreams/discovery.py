"""Asking an engine which models it serves (its ``/v1/models``)."""

from __future__ import annotations

import logging

import aiohttp

from authproxy.upstreams.catalog import UpstreamState

__all__ = ["DISCOVERY_TIMEOUT", "discover"]

log = logging.getLogger(__name__)

DISCOVERY_TIMEOUT = 5.0


async def discover(
    session: aiohttp.ClientSession, upstream: UpstreamState, timeout: float = DISCOVERY_TIMEOUT
) -> bool:
    """Refresh ``upstream.discovered``; False (and the upstream ejected) when the engine could
    not be asked. A failed read keeps the last known list: a blip must not make models vanish,
    while the ejection keeps traffic away until a check reads the list again."""
    try:
        async with session.get(
            upstream.url + "/v1/models",
            headers=upstream.auth_headers(),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            body = await resp.json(content_type=None)
        ids = frozenset(
            str(m["id"]) for m in body.get("data", []) if isinstance(m, dict) and "id" in m
        )
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError, TypeError) as exc:
        upstream.discovery_failed = True
        upstream.eject(f"model discovery failed: {str(exc) or type(exc).__name__}")
        return False
    if ids != upstream.discovered:
        log.info("upstream %s serves %s", upstream.name, ", ".join(sorted(ids)) or "nothing")
    upstream.discovered = ids
    upstream.discovery_failed = False
    return True
