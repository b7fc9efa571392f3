"""The one URL table: every path the gateway serves, with its method, its handler, and who may
call it. The router is built from it and the middleware reads it; anything not listed here is
refused. The API paths come from the endpoint catalogue (``proxy/endpoints.py``), one route per
row and method (and an engine admin row's twin under ``/engine/{upstream}``); a row's own
``access`` (user, admin, nobody) is checked by its handler once the caller is known.

Who may call a route (``Access``):

- ``public``: anyone; the handler makes its own checks (CSRF tokens, OIDC state, rate limits).
- ``page``: a signed-in browser; a request without a live session goes to the sign-in page.
- ``api``: any credential (a key, the session cookie, an IdP token); a change made with the
  session cookie must come from this origin.
- ``scrape``: an admin's credential, or a direct local scrape without any (``/metrics``).

A path the table does not list is a 404 only for a caller that authenticated (401 otherwise),
so probing for paths tells nothing. Paths with a segment in braces (``{response_id}``) are
matched on the raw path with the segment's strict pattern (``endpoints.SEGMENTS``): an encoded
character or a dot-only segment matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from authproxy.config.login import CALLBACK_PATH
from authproxy.login import account_page, chat_page, oidc_pages, password_pages
from authproxy.metrics.endpoint import METRICS_PATH, metrics
from authproxy.proxy.endpoints import CATALOGUE, ENGINE_PREFIX, SEGMENTS
from authproxy.proxy.handlers import make_handler
from authproxy.web.status_pages import healthz, readyz

__all__ = ["ROUTES", "Access", "Route", "access_of", "add_routes"]

Access = Literal["public", "page", "api", "scrape"]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    access: Access


def _api_routes() -> Iterator[Route]:
    for endpoint in CATALOGUE:
        handler = make_handler(endpoint)
        paths = [endpoint.path] if endpoint.at_root else []
        if endpoint.model == "upstream":
            paths.append(ENGINE_PREFIX + endpoint.path)
        for path in paths:
            for method in endpoint.methods:
                yield Route(method, path, handler, "api")


ROUTES: tuple[Route, ...] = (
    *_api_routes(),
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


_SEGMENT = re.compile(r"\{(\w+)\}")


def _pattern(path: str, *, for_router: bool) -> str:
    """A templated path as a regular expression of the raw path, or as aiohttp's pattern."""
    if for_router:
        return _SEGMENT.sub(lambda m: "{" + m[1] + ":" + SEGMENTS[m[1]] + "}", path)
    parts = _SEGMENT.split(path)  # literal, name, literal, name, ..., literal
    return "".join(
        re.escape(part) if i % 2 == 0 else f"(?:{SEGMENTS[part]})" for i, part in enumerate(parts)
    )


_ACCESS = _access_by_path(ROUTES)
_EXACT = {path: access for path, access in _ACCESS.items() if "{" not in path}
_TEMPLATED = tuple(
    (re.compile(_pattern(path, for_router=False)), access)
    for path, access in _ACCESS.items()
    if "{" in path
)


def access_of(raw_path: str) -> Access | None:
    """Who may call ``raw_path`` (as sent, before any decoding); None: nothing is served there."""
    access = _EXACT.get(raw_path)
    if access is not None:
        return access
    for pattern, templated in _TEMPLATED:
        if pattern.fullmatch(raw_path):
            return templated
    return None


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        path = _pattern(route.path, for_router=True)
        if route.method == "GET":  # and HEAD, as aiohttp's add_get does
            app.router.add_get(path, route.handler)
        else:
            app.router.add_route(route.method, path, route.handler)
