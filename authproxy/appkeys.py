"""Typed keys for everything the application and a request carry."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp
from aiohttp import web

from authproxy.auth.authenticate import Authenticator
from authproxy.auth.client_address import ClientAddress
from authproxy.auth.key_index import KeyIndex
from authproxy.auth.policy import Policy
from authproxy.auth.principal import Principal
from authproxy.config.schema import Config
from authproxy.limits.quota import QuotaBook
from authproxy.limits.throttle import AuthThrottle
from authproxy.metrics.registry import GatewayMetrics
from authproxy.proxy.accounting import UsageWriter
from authproxy.proxy.forward import Forwarder, Outcome
from authproxy.store.base import Store
from authproxy.store.watch import StoreWatch
from authproxy.upstreams.catalog import ModelCatalog

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
KEY_INDEX = web.AppKey("key_index", KeyIndex)
WATCH = web.AppKey("store_watch", StoreWatch)
POLICY = web.AppKey("policy", Policy)
CATALOG = web.AppKey("catalog", ModelCatalog)
SESSION = web.AppKey("client_session", aiohttp.ClientSession)
FORWARDER = web.AppKey("forwarder", Forwarder)
USAGE = web.AppKey("usage_writer", UsageWriter)
AUTHENTICATORS = web.AppKey("authenticators", Sequence[Authenticator])
CLIENT_ADDRESS = web.AppKey("client_address", ClientAddress)
QUOTAS = web.AppKey("quotas", QuotaBook)
AUTH_THROTTLE = web.AppKey("auth_throttle", AuthThrottle)
METRICS = web.AppKey("metrics", GatewayMetrics)

REQUEST_ID = web.RequestKey("request_id", str)
CLIENT = web.RequestKey("client", str)
PRINCIPAL = web.RequestKey("principal", Principal)
OUTCOME = web.RequestKey("outcome", Outcome)
MODEL = web.RequestKey("model", str)
UPSTREAM_NAME = web.RequestKey("upstream", str)
