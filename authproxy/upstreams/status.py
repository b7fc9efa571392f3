"""The admin's view of the upstreams: are they up, and which models does each serve.

Read-only and short-lived (a fresh HTTP session per call), for the CLI and the TUI; the
gateway keeps its own, long-lived view in ``catalog.ModelCatalog``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from authproxy.auth.policy import Policy
from authproxy.config.schema import Config
from authproxy.upstreams.catalog import UpstreamState
from authproxy.upstreams.discovery import discover
from authproxy.upstreams.health import probe

__all__ = ["ModelInfo", "ModelOverview", "UpstreamHealth", "model_overview", "upstream_health"]


@dataclass(frozen=True, slots=True)
class UpstreamHealth:
    name: str
    url: str
    up: bool
    detail: str  # "ok", "HTTP 503", "connection refused", ...


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str  # the public name clients send
    upstreams: tuple[str, ...]  # which upstreams serve it (empty: none right now)
    configured: bool  # listed under an upstream's `models`
    discovered: bool  # reported by an engine's /v1/models
    enabled: bool  # the admin's switch for this name (models are enabled unless switched off)
    roles: tuple[str, ...]  # the roles whose model globs allow this name
    alias_of: str | None = None  # `model_aliases`: the engine's model id behind this name


@dataclass(frozen=True, slots=True)
class ModelOverview:
    models: list[ModelInfo]
    unreachable: list[str]  # discovering upstreams that did not answer


async def _health(
    session: aiohttp.ClientSession, u: UpstreamState, timeout: float
) -> UpstreamHealth:
    checked = await probe(session, u.url + u.health_path, headers=u.auth_headers(), timeout=timeout)
    return UpstreamHealth(u.name, u.url, checked.ok, checked.detail)


async def upstream_health(config: Config, *, timeout: float = 2.0) -> list[UpstreamHealth]:
    """One GET of each upstream's health path, all at once."""
    upstreams = [UpstreamState.from_config(u) for u in config.upstreams]
    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(_health(session, u, timeout) for u in upstreams)))


async def model_overview(
    config: Config, enabled: dict[str, bool], *, timeout: float = 3.0
) -> ModelOverview:
    """Configured, discovered and aliased models, with the admin's switches (``enabled``: name
    -> on) and the roles that may use each name."""
    upstreams = [UpstreamState.from_config(u) for u in config.upstreams]
    if any(u.discover for u in upstreams):
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(discover(session, u, timeout) for u in upstreams if u.discover))
    aliases = config.model_aliases
    policy = Policy(roles=config.roles)
    names = sorted({m for u in upstreams for m in u.models} | set(enabled) | set(aliases))
    models = []
    for name in names:
        target = aliases.get(name, name)
        models.append(
            ModelInfo(
                name=name,
                upstreams=tuple(u.name for u in upstreams if target in u.models),
                configured=name not in aliases and any(name in u.static_models for u in upstreams),
                discovered=name not in aliases and any(name in u.discovered for u in upstreams),
                enabled=enabled.get(name, True),
                roles=tuple(r for r in config.roles if policy.may_use(r, name)),
                alias_of=aliases.get(name),
            )
        )
    unreachable = [u.name for u in upstreams if u.discover and u.discovery_failed]
    return ModelOverview(models, unreachable)
