"""Which engine serves which model: the configured upstreams, their discovered models, and the
admin's enable / disable switches from the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp

from authproxy.config import Upstream as UpstreamConfig
from authproxy.store.base import Store

log = logging.getLogger("authproxy.upstreams")


@dataclass(eq=False)
class Upstream:
    name: str
    url: str
    api_key: str | None
    health_path: str
    static_models: frozenset[str]
    discover: bool
    discovered: frozenset[str] = frozenset()
    outstanding: int = 0
    reachable: bool | None = None  # None until first contact
    last_error: str | None = field(default=None, repr=False)

    @classmethod
    def from_config(cls, cfg: UpstreamConfig) -> Upstream:
        return cls(
            name=cfg.name,
            url=cfg.url,
            api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
            health_path=cfg.health_path,
            static_models=frozenset(cfg.models),
            discover=cfg.discover,
        )

    @property
    def models(self) -> frozenset[str]:
        return self.static_models | self.discovered

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


class ModelCatalog:
    def __init__(self, *, upstreams: list[Upstream], store: Store) -> None:
        self.upstreams = upstreams
        self._store = store
        self._disabled: frozenset[str] = frozenset()
        self._routes: dict[str, tuple[Upstream, ...]] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        routes: dict[str, list[Upstream]] = {}
        for upstream in self.upstreams:
            for model in upstream.models:
                routes.setdefault(model, []).append(upstream)
        self._routes = {m: tuple(u) for m, u in routes.items()}

    async def reload(self) -> None:
        """Re-read the admin's model switches (subscribed to ``StoreWatch``)."""
        settings = await self._store.list_model_settings()
        self._disabled = frozenset(s.name for s in settings if not s.enabled)

    def all_models(self) -> list[str]:
        return sorted(self._routes)

    def enabled_models(self) -> list[str]:
        return [m for m in sorted(self._routes) if m not in self._disabled]

    def is_disabled(self, model: str) -> bool:
        return model in self._disabled

    def serving(self, model: str) -> tuple[Upstream, ...]:
        """Upstreams that serve an enabled ``model`` (empty if unknown or disabled)."""
        if model in self._disabled:
            return ()
        return self._routes.get(model, ())

    def pick(self, model: str) -> Upstream | None:
        candidates = self.serving(model)
        if not candidates:
            return None
        healthy = [u for u in candidates if u.reachable is not False] or list(candidates)
        return min(healthy, key=lambda u: u.outstanding)

    # -- discovery --------------------------------------------------------------------------

    async def discover(self, session: aiohttp.ClientSession, timeout: float = 5.0) -> None:
        await asyncio.gather(*(discover(session, u, timeout) for u in self.upstreams if u.discover))
        self._rebuild()

    @asynccontextmanager
    async def discovering(
        self, session: aiohttp.ClientSession, interval: float
    ) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                await self.discover(session)

        if any(u.discover for u in self.upstreams):
            await self.discover(session)
            task = asyncio.create_task(loop(), name="model-discovery")
            try:
                yield
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        else:
            yield


async def discover(session: aiohttp.ClientSession, upstream: Upstream, timeout: float) -> None:
    """Ask an engine which models it serves (its ``/v1/models``); mark it reachable or not."""
    try:
        async with session.get(
            upstream.url + "/v1/models",
            headers=upstream.auth_headers(),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            resp.raise_for_status()
            body = await resp.json(content_type=None)
        ids = frozenset(
            str(m["id"]) for m in body.get("data", []) if isinstance(m, dict) and "id" in m
        )
    except (aiohttp.ClientError, TimeoutError, ValueError, AttributeError) as exc:
        if upstream.reachable is not False:
            log.warning("upstream %s: model discovery failed: %s", upstream.name, exc)
        upstream.reachable = False
        upstream.last_error = str(exc) or type(exc).__name__
        return
    if ids != upstream.discovered:
        log.info("upstream %s serves %s", upstream.name, ", ".join(sorted(ids)) or "nothing")
    upstream.discovered = ids
    upstream.reachable = True
    upstream.last_error = None
