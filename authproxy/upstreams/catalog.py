"""Which engine serves which model: the configured upstreams, their discovered models, the
config's model aliases, the admin's enable / disable switches from the store, and the choice
of one upstream for a request (least outstanding requests among the healthy ones)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from authproxy.config.schema import Upstream
from authproxy.store.contracts import ModelStore
from authproxy.upstreams.health import HealthState

__all__ = ["ModelCatalog", "UpstreamState"]

log = logging.getLogger(__name__)


@dataclass(eq=False, kw_only=True)
class UpstreamState:
    """The gateway's live view of one configured upstream (``config.schema.Upstream``): its
    discovered models, health, and requests in flight."""

    name: str
    url: str
    api_key: str | None
    health_path: str
    static_models: frozenset[str]
    discover: bool
    discovered: frozenset[str] = frozenset()
    discovery_failed: bool = False  # the last /v1/models read failed: keep the last list
    outstanding: int = 0
    health: HealthState = field(default_factory=HealthState)

    @classmethod
    def from_config(cls, cfg: Upstream) -> UpstreamState:
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

    @property
    def routable(self) -> bool:
        return self.health.routable

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def eject(self, reason: str) -> None:
        """Take it out of rotation now (a real request could not reach it)."""
        if self.health.eject(reason):
            log.warning("upstream %s is out of rotation: %s", self.name, reason)

    def probed(self, problem: str | None, *, healthy_after: int, unhealthy_after: int) -> None:
        """Record an active check: ``problem`` is None when it passed."""
        if problem is None:
            if self.health.probe_succeeded(healthy_after=healthy_after):
                log.info("upstream %s is healthy", self.name)
        elif self.health.probe_failed(problem, unhealthy_after=unhealthy_after):
            log.warning("upstream %s is out of rotation: %s", self.name, problem)


class ModelCatalog:
    """Public model names (engine ids and aliases) to the upstreams serving them.

    An alias wins over an engine id of the same name discovered later (the config says what
    the name means; a model an engine starts serving must not silently take over its traffic).
    A name is unavailable when the admin disabled it or, for an alias, its target.
    """

    def __init__(
        self,
        *,
        upstreams: list[UpstreamState],
        store: ModelStore,
        aliases: Mapping[str, str] | None = None,
    ) -> None:
        self.upstreams = upstreams
        self._store = store
        self._aliases = dict(aliases or {})
        self._disabled: frozenset[str] = frozenset()
        self._routes: dict[str, tuple[UpstreamState, ...]] = {}
        self._shadowed: frozenset[str] = frozenset()
        self._turn: dict[str, int] = {}
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute the routes after the upstreams' model lists changed (discovery)."""
        routes: dict[str, list[UpstreamState]] = {}
        for upstream in self.upstreams:
            for model in upstream.models:
                routes.setdefault(model, []).append(upstream)
        self._routes = {m: tuple(u) for m, u in routes.items()}
        shadowed = frozenset(self._routes) & frozenset(self._aliases)
        for name in sorted(shadowed - self._shadowed):
            log.warning(
                "an upstream serves a model named %r, which is also an alias for %r: "
                "the alias wins",
                name,
                self._aliases[name],
            )
        self._shadowed = shadowed

    async def reload(self) -> None:
        """Re-read the admin's model switches (subscribed to ``StoreWatch``)."""
        settings = await self._store.list_model_settings()
        self._disabled = frozenset(s.name for s in settings if not s.enabled)

    def resolve(self, name: str) -> str:
        """The engine's model id for a public name (itself unless it is an alias)."""
        return self._aliases.get(name, name)

    def all_models(self) -> list[str]:
        return sorted(set(self._routes) | set(self._aliases))

    def enabled_models(self) -> list[str]:
        """Every public name a request could use now: served ids and aliases of served ids."""
        return [m for m in self.all_models() if self.serving(m)]

    def is_disabled(self, model: str) -> bool:
        return model in self._disabled or self.resolve(model) in self._disabled

    def serving(self, name: str) -> tuple[UpstreamState, ...]:
        """Upstreams that serve an enabled public ``name`` (empty if unknown or disabled)."""
        if self.is_disabled(name):
            return ()
        return self._routes.get(self.resolve(name), ())

    def pick(self, name: str, *, exclude: Collection[UpstreamState] = ()) -> UpstreamState | None:
        """The healthy upstream with the fewest requests in flight, ties taken in turn.

        ``exclude`` holds the upstreams a failover already tried. When none of the model's
        upstreams is healthy, the untried ones are tried anyway (least loaded first): a stale
        health view must never turn a request that could succeed into a refusal, and a dead
        engine fails fast (connection refused).
        """
        candidates = self.serving(name)
        if not candidates:
            return None
        fresh = [u for u in candidates if u not in exclude]
        healthy = [u for u in fresh if u.routable]
        if not healthy and any(u.routable for u in candidates):
            return None  # the healthy ones were tried: do not fall back to ejected ones
        pool = healthy or fresh
        if not pool:
            return None
        target = self.resolve(name)
        turn = self._turn.get(target, 0)
        self._turn[target] = turn + 1
        start = turn % len(pool)
        rotated = pool[start:] + pool[:start]
        return min(rotated, key=lambda u: u.outstanding)
