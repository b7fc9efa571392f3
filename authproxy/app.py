"""The application factory: it wires the parts together and decides nothing itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from authproxy import appkeys as K
from authproxy.admin.entry import open_services
from authproxy.auth.acting_for import ActingFor
from authproxy.auth.authenticate import ApiKeyAuthenticator
from authproxy.auth.client_address import ClientAddress
from authproxy.auth.key_index import KeyIndex
from authproxy.auth.people import PeopleIndex
from authproxy.auth.policy import Policy
from authproxy.config.schema import Config
from authproxy.http1 import Pool
from authproxy.limits.quota import QuotaBook
from authproxy.limits.quota_local import LocalQuotaBook
from authproxy.limits.quota_shared import SharedQuotaBook
from authproxy.limits.throttle import AuthThrottle
from authproxy.login.setup import browser_ctx
from authproxy.metrics.database import DatabaseCollector, DatabaseState
from authproxy.metrics.registry import GatewayMetrics
from authproxy.proxy.accounting import UsageWriter
from authproxy.proxy.forward import Forwarder
from authproxy.store.base import Store
from authproxy.store.contracts import ChangeFeed
from authproxy.store.watch import StoreWatch
from authproxy.upstreams.catalog import ModelCatalog, UpstreamState
from authproxy.upstreams.monitor import UpstreamMonitor
from authproxy.web.middleware import auth_middleware, gateway_middleware
from authproxy.web.routes import add_routes

__all__ = ["build_app"]


def _quota_book(config: Config, store: Store) -> QuotaBook:
    """Counters in the database when several gateway processes share it (PostgreSQL, or
    ``workers`` on one SQLite file); else in this process."""
    if config.database is not None:
        return SharedQuotaBook(store=store, roles=config.roles, settings=config.quotas)
    if config.workers > 1:  # a file on this machine: waiting on it is never a network cut
        return SharedQuotaBook(
            store=store, roles=config.roles, settings=config.quotas, timeout=None
        )
    return LocalQuotaBook(store=store, roles=config.roles, settings=config.quotas)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    """The store and what reads it (key index, model switches, quota book), kept current by
    one StoreWatch (woken by the database's notifications where it sends them); closed last."""
    config = app[K.CONFIG]
    async with open_services(config) as services:
        store = services.store
        app[K.SERVICES] = services
        app[K.STORE] = store
        index = KeyIndex(store=store, hasher=services.secret.hasher)
        catalog = ModelCatalog(
            upstreams=[UpstreamState.from_config(u, config.queue) for u in config.upstreams],
            store=store,
            aliases=config.model_aliases,
        )
        quotas = _quota_book(config, store)
        watch = StoreWatch(store=store, feed=store if isinstance(store, ChangeFeed) else None)
        watch.subscribe(index.reload)
        people = PeopleIndex(store=store)
        watch.subscribe(people.reload)
        watch.subscribe(catalog.reload)
        watch.subscribe(quotas.reload)
        app[K.KEY_INDEX] = index
        app[K.PEOPLE] = people
        app[K.CATALOG] = catalog
        app[K.QUOTAS] = quotas
        app[K.METRICS].watch_upstreams(lambda: catalog.upstreams)
        app[K.WATCH] = watch
        app[K.AUTHENTICATORS] = (ApiKeyAuthenticator(index=index, watch=watch),)
        async with quotas.running(), watch.running():
            yield


async def _client_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[K.CONFIG]
    # The request path's own client (authproxy/http1): keep-alive shorter than the engines'
    # own idle timeouts (uvicorn's is 5 s), so a pooled connection is dropped by us before
    # the engine drops it under us.
    pool = Pool(connect_timeout=config.timeouts.connect, keepalive=4)
    # aiohttp's client for the rest (health checks, discovery): off the request path.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=4, enable_cleanup_closed=True)
    options: dict[str, Any] = {
        "auto_decompress": False,
        "trust_env": False,
        "cookie_jar": aiohttp.DummyCookieJar(),
    }
    async with aiohttp.ClientSession(connector=connector, **options) as session:
        app[K.FORWARDER] = Forwarder(pool=pool, timeouts=config.timeouts, metrics=app[K.METRICS])
        monitor = UpstreamMonitor(
            catalog=app[K.CATALOG],
            session=session,
            checks=config.health,
            discover_interval=config.discover_interval,
        )
        try:
            async with monitor.running():  # one round of discovery and checks before serving
                yield
        finally:
            pool.close()


def _database_state(app: web.Application) -> DatabaseState:
    writer, quotas = app[K.USAGE], app[K.QUOTAS]
    shared = quotas if isinstance(quotas, SharedQuotaBook) else None
    return DatabaseState(
        up=app[K.WATCH].healthy,
        usage_queued=writer.pending,
        usage_dropped=writer.dropped,
        settles_queued=shared.queued_settles if shared else 0,
        settles_dropped=shared.dropped_settles if shared else 0,
        decided_alone=shared.decided_alone if shared else 0,
    )


async def _usage_ctx(app: web.Application) -> AsyncIterator[None]:
    writer = UsageWriter(
        store=app[K.STORE],
        take_last_used=app[K.KEY_INDEX].take_last_used,
        drain_within=app[K.CONFIG].shutdown_grace,
    )
    app[K.USAGE] = writer
    collector = DatabaseCollector(lambda: _database_state(app))
    app[K.METRICS].registry.register(collector)
    app[K.AUTH_THROTTLE] = AuthThrottle(settings=app[K.CONFIG].auth_throttle, audit=writer)
    app[K.ACTING_FOR] = ActingFor(
        settings=app[K.CONFIG].acts_for_users,
        default_role=app[K.CONFIG].default_role,
        people=app[K.PEOPLE],
        store=app[K.STORE],
        audit=writer,
    )
    try:
        async with writer.running():
            yield
    finally:
        app[K.METRICS].registry.unregister(collector)


def build_app(config: Config) -> web.Application:
    app = web.Application(
        middlewares=[gateway_middleware, auth_middleware],
        client_max_size=config.max_request_bytes,
        # Request bodies are decompressed by the gateway itself (proxy/request_encoding.py).
        handler_args={"max_field_size": 16384, "auto_decompress": False},
    )
    app[K.CONFIG] = config
    app[K.POLICY] = Policy(roles=config.roles)
    app[K.CLIENT_ADDRESS] = ClientAddress(trusted_proxies=config.trusted_proxies)
    app[K.METRICS] = GatewayMetrics()
    # Order matters: on shutdown they close in reverse, so usage is flushed before the store.
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(browser_ctx)
    app.cleanup_ctx.append(_client_ctx)
    app.cleanup_ctx.append(_usage_ctx)
    add_routes(app)
    return app
