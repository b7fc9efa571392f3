"""Typed keys for everything the application and a request carry: every ``AppKey`` and
``RequestKey`` of the gateway is here.

A leaf: the value types are imported for the type checker only, so a handler can name a key
without importing the part of the gateway that makes the value (``app.py`` and the ``*_ctx``
functions put them in).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from authproxy.admin.entry import Services
    from authproxy.auth.acting_for import ActingFor
    from authproxy.auth.authenticate import Authenticator
    from authproxy.auth.client_address import ClientAddress
    from authproxy.auth.key_index import KeyIndex
    from authproxy.auth.people import PeopleIndex
    from authproxy.auth.policy import Policy
    from authproxy.auth.principal import Principal
    from authproxy.auth.sessions import BrowserSession
    from authproxy.config.schema import Config
    from authproxy.limits.quota import QuotaBook
    from authproxy.limits.throttle import AuthThrottle
    from authproxy.login.context import BrowserAuth
    from authproxy.metrics.registry import GatewayMetrics
    from authproxy.proxy.accounting import UsageWriter
    from authproxy.proxy.forward import Forwarder, Outcome
    from authproxy.store.base import Store
    from authproxy.store.watch import StoreWatch
    from authproxy.upstreams.catalog import ModelCatalog

__all__ = [
    "ACTING_FOR",
    "AUTHENTICATORS",
    "AUTH_THROTTLE",
    "BROWSER",
    "BROWSER_SESSION",
    "CATALOG",
    "CLIENT",
    "CLIENT_ADDRESS",
    "CONFIG",
    "FORWARDER",
    "KEY_INDEX",
    "METRICS",
    "MODEL",
    "ON_RESPONSE_ID",
    "OUTCOME",
    "PEOPLE",
    "POLICY",
    "PRINCIPAL",
    "QUOTAS",
    "REQUEST_ID",
    "SERVICES",
    "STORE",
    "UPSTREAM_NAME",
    "USAGE",
    "WATCH",
]

# -- the application ----------------------------------------------------------------------------
CONFIG: web.AppKey[Config] = web.AppKey("config")
SERVICES: web.AppKey[Services] = web.AppKey("services")  # secret, store, admin service
STORE: web.AppKey[Store] = web.AppKey("store")
KEY_INDEX: web.AppKey[KeyIndex] = web.AppKey("key_index")
WATCH: web.AppKey[StoreWatch] = web.AppKey("store_watch")
POLICY: web.AppKey[Policy] = web.AppKey("policy")
CATALOG: web.AppKey[ModelCatalog] = web.AppKey("catalog")
FORWARDER: web.AppKey[Forwarder] = web.AppKey("forwarder")
USAGE: web.AppKey[UsageWriter] = web.AppKey("usage_writer")
AUTHENTICATORS: web.AppKey[Sequence[Authenticator]] = web.AppKey("authenticators")
CLIENT_ADDRESS: web.AppKey[ClientAddress] = web.AppKey("client_address")
QUOTAS: web.AppKey[QuotaBook] = web.AppKey("quotas")
AUTH_THROTTLE: web.AppKey[AuthThrottle] = web.AppKey("auth_throttle")
METRICS: web.AppKey[GatewayMetrics] = web.AppKey("metrics")
BROWSER: web.AppKey[BrowserAuth] = web.AppKey("browser_auth")  # the login pages' parts
PEOPLE: web.AppKey[PeopleIndex] = web.AppKey("people")  # users by e-mail, for service keys
ACTING_FOR: web.AppKey[ActingFor] = web.AppKey("acting_for")

# -- a request ----------------------------------------------------------------------------------
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id")
CLIENT: web.RequestKey[str] = web.RequestKey("client")
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
OUTCOME: web.RequestKey[Outcome] = web.RequestKey("outcome")
MODEL: web.RequestKey[str] = web.RequestKey("model")
UPSTREAM_NAME: web.RequestKey[str] = web.RequestKey("upstream")
BROWSER_SESSION: web.RequestKey[BrowserSession] = web.RequestKey("browser_session")
# Called with a stored response's id as soon as the engine's answer names it (proxy/answers.py).
ON_RESPONSE_ID: web.RequestKey[Callable[[str], Awaitable[None]]] = web.RequestKey("on_response_id")
