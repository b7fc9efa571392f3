"""The one URL table: every path the gateway serves, with its method, its handler, and who may
call it. The router is built from it and the middleware reads it; anything not listed here is
refused.

Who may call a route (``Access``):

- ``public``: anyone; the handler makes its own checks (CSRF tokens, OIDC state, rate limits).
- ``page``: a signed-in browser; a request without a live session goes to the sign-in page.
- ``api``: any credential (a key, the session cookie, an IdP token); a change made with the
  session cookie must come from this origin.
- ``scrape``: an admin's credential, or a direct local scrape without any (``/metrics``).

A path the table does not list is a 404 only for a caller that authenticated (401 otherwise),
so probing for paths tells nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from authproxy.config.login import CALLBACK_PATH
from authproxy.login import account_page, chat_page, oidc_pages, password_pages
from authproxy.metrics.endpoint import METRICS_PATH, metrics
from authproxy.proxy.endpoints import FORWARDED
from authproxy.proxy.handlers import make_handler
from authproxy.proxy.models_list import list_models
from authproxy.web.status_pages import healthz, readyz

__all__ = ["ACCESS", "ROUTES", "Access", "Route", "add_routes"]

Access = Literal["public", "page", "api", "scrape"]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    access: Access


ROUTES: tuple[Route, ...] = (
    *(Route("POST", path, make_handler(endpoint), "api") for path, endpoint in FORWARDED.items()),
    Route("GET", "/v1/models", list_models, "api"),
    Route("GET", METRICS_PATH, metrics, "scrape"),
    Route("GET", "/healthz", healthz, "public"),
    Route("GET", "/readyz", readyz, "public"),
    Route("GET", "/auth/login", password_pages.get_login, "public"),
    Route("POST", "/auth/login", password_pages.post_login, "public"),
    Route("POST", "/auth/logout", password_pages.post_logout, "public"),
    Route("GET", "/auth/oidc", oidc_pages.start, "public"),
    Route("GET", CALLBACK_PATH, oidc_pages.callback, "public"),
    Route("GET", "/", account_page.home, "page"),
    Route("GET", "/account", account_page.show, "page"),
    Route("POST", "/account/keys", account_page.create_key, "page"),
    Route("POST", "/account/keys/revoke", account_page.revoke_key, "page"),
    Route("GET", chat_page.PATH, chat_page.show, "page"),
)


def _access_by_path(routes: tuple[Route, ...]) -> Mapping[str, Access]:
    by_path: dict[str, Access] = {}
    for route in routes:
        if by_path.setdefault(route.path, route.access) != route.access:
            raise ValueError(f"{route.path}: one path, one access class")
    return by_path


ACCESS = _access_by_path(ROUTES)  # by raw path, as the middleware looks a request up


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        if route.method == "GET":  # and HEAD, as aiohttp's add_get does
            app.router.add_get(route.path, route.handler)
        else:
            app.router.add_route(route.method, route.path, route.handler)
