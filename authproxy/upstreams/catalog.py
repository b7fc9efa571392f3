"""Which engine serves which model: the configured upstreams, their discovered models, the
config's model aliases, the admin's enable / disable switches from the store, and the choice
of one upstream for a request (least outstanding requests among the healthy ones, counting
those waiting in its fair queue)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

from authproxy.config.schema import Queue, Upstream
from authproxy.queue.fair_queue import FairQueue
from authproxy.store.contracts import ModelStore
from authproxy.upstreams.health import HealthState

__all__ = ["ModelCatalog", "UpstreamState"]

log = logging.getLogger(__name__)


@dataclass(eq=False, kw_only=True)
class UpstreamState:
    """The gateway's live view of one configured upstream (``config.schema.Upstream``): its
    discovered models, health, requests in flight, and its fair queue when it has a capacity
    (``max_inflight``; for ``auto`` from the first time llama-server's slots are read)."""

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
    max_inflight: int | Literal["auto"] | None = None
    queue_settings: Queue = field(default_factory=Queue)
    queue: FairQueue | None = None
    capacity_problem: str | None = None  # why `auto` could not read the slots, last time

    @classmethod
    def from_config(cls, cfg: Upstream, queue: Queue | None = None) -> UpstreamState:
        state = cls(
            name=cfg.name,
            url=cfg.url,
            api_key=cfg.api_key.get_secret_value() if cfg.api_key else None,
            health_path=cfg.health_path,
            static_models=frozenset(cfg.models),
            discover=cfg.discover,
            max_inflight=cfg.max_inflight,
            queue_settings=queue or Queue(),
        )
        if isinstance(cfg.max_inflight, int):
            state.set_capacity(cfg.max_inflight)
        return state

    @property
    def models(self) -> frozenset[str]:
        return self.static_models | self.discovered

    @property
    def routable(self) -> bool:
        return self.health.routable

    @property
    def load(self) -> int:
        """Requests in flight plus those waiting for a slot: what the choice compares."""
        return self.outstanding + (self.queue.waiting if self.queue else 0)

    def set_capacity(self, capacity: int) -> None:
        """At most ``capacity`` requests in flight from now on; the first call opens the queue."""
        if self.queue is None:
            q = self.queue_settings
            self.queue = FairQueue(
                capacity=capacity,
                timeout=q.timeout,
                max_per_user=q.max_per_user,
                output_weight=q.output_weight,
            )
        elif self.queue.capacity != capacity:
            log.info("upstream %s: capacity %d -> %d", self.name, self.queue.capacity, capacity)
            self.queue.capacity = capacity

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def eject(self, reason: str) -> None:
        """Take it out of rotation now (a real request could not reach it)."""
        if self.health.eject(reason):
            log.warning("upstream %s is out of rotation: %s", self.name, reason)
        self._drain()

    def probed(self, problem: str | None, *, healthy_after: int, unhealthy_after: int) -> None:
        """Record an active check: ``problem`` is None when it passed."""
        if problem is None:
            if self.health.probe_succeeded(healthy_after=healthy_after):
                log.info("upstream %s is healthy", self.name)
        elif self.health.probe_failed(problem, unhealthy_after=unhealthy_after):
            log.warning("upstream %s is out of rotation: %s", self.name, problem)
        if not self.routable:
            self._drain()

    def _drain(self) -> None:
        """Out of rotation: who waits for it moves to another upstream or fails fast (the
        failover loop sees ``QueueDrained``); the requests in flight keep their slots."""
        if self.queue is None:
            return
        moved = self.queue.drain("the engine serving this model went down while the request waited")
        if moved:
            log.warning("upstream %s: %d waiting request(s) sent elsewhere", self.name, moved)


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
        """The healthy upstream with the fewest requests in flight or waiting for a slot,
        ties taken in turn.

        ``exclude`` holds the upstreams a failover already tried. When none of the model's
        upstreams is healthy, the untried ones are tried anyway (least loaded first): a stale
        health view must never turn a request that could succeed into a refusal, and a dead
        engine fails fast (connection refused).
        """
        candidates = self.serving(name)
        if len(candidates) == 1:  # one upstream serves it (the common case): no choice to make
            (only,) = candidates
            return None if only in exclude else only
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
        return min(rotated, key=lambda u: u.load)
