"""The background work that keeps the gateway's view of its upstreams current: a health
probe of every upstream each ``health.interval`` seconds (and, for ``max_inflight: auto``, a
read of its slots after a probe that passed) and a model discovery of every ``discover: true``
upstream each ``discover_interval`` seconds, both run once at start so that routing,
``/readyz`` and the queues are right from the first request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp

from authproxy.config.schema import HealthChecks
from authproxy.upstreams.capacity import refresh_capacity
from authproxy.upstreams.catalog import ModelCatalog, UpstreamState
from authproxy.upstreams.discovery import discover
from authproxy.upstreams.health import probe

__all__ = ["UpstreamMonitor"]

log = logging.getLogger(__name__)


class UpstreamMonitor:
    def __init__(
        self,
        *,
        catalog: ModelCatalog,
        session: aiohttp.ClientSession,
        checks: HealthChecks,
        discover_interval: float,
    ) -> None:
        self._catalog = catalog
        self._session = session
        self._checks = checks
        self._discover_interval = discover_interval

    async def check(self, upstream: UpstreamState) -> None:
        """One active check. An upstream whose model list could not be read stays out until
        the list is read again, so a check re-reads it (a broken API behind a healthy
        ``/health``, e.g. a wrong upstream key, must not flap back into rotation)."""
        checked = await probe(
            self._session,
            upstream.url + upstream.health_path,
            headers=upstream.auth_headers(),
            timeout=self._checks.timeout,
        )
        problem = checked.problem
        if problem is None and upstream.discover and upstream.discovery_failed:
            if await discover(self._session, upstream, self._checks.timeout):
                self._catalog.rebuild()
            else:
                problem = upstream.health.reason or "model discovery failed"
        upstream.probed(
            problem,
            healthy_after=self._checks.healthy_after,
            unhealthy_after=self._checks.unhealthy_after,
        )
        if problem is None and upstream.max_inflight == "auto":
            await refresh_capacity(self._session, upstream, timeout=self._checks.timeout)

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(u) for u in self._catalog.upstreams))

    async def discover_all(self) -> None:
        await asyncio.gather(
            *(discover(self._session, u) for u in self._catalog.upstreams if u.discover)
        )
        self._catalog.rebuild()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        await self.discover_all()
        await self.check_all()
        tasks = [asyncio.create_task(_every(self._checks.interval, self.check_all), name="health")]
        if any(u.discover for u in self._catalog.upstreams):
            tasks.append(
                asyncio.create_task(
                    _every(self._discover_interval, self.discover_all), name="discovery"
                )
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _every(interval: float, job: Callable[[], Awaitable[None]]) -> None:
    """Run ``job`` after each ``interval`` of quiet; a bug in one round must not end them all."""
    while True:
        await asyncio.sleep(interval)
        try:
            await job()
        except Exception:
            log.exception("upstream monitoring round failed")
