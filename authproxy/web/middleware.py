"""The two middlewares: the outer one gives every request an id, maps every error to the one
OpenAI error shape and writes the access log line; the inner one authenticates on the raw path.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import secrets
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from authproxy import appkeys as K
from authproxy.auth.authenticate import authenticate
from authproxy.auth.csrf import require_same_origin
from authproxy.auth.keys import KEY_PREFIX, display_prefix
from authproxy.errors import (
    AuthenticationFailed,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
)
from authproxy.metrics.endpoint import anonymous_scrape
from authproxy.proxy.forward import Outcome
from authproxy.web.routes import access_of

__all__ = [
    "CLIENT_CLOSED_REQUEST",
    "auth_middleware",
    "error_response",
    "gateway_middleware",
    "raw_path",
]

log = logging.getLogger("authproxy")
access_log = logging.getLogger("authproxy.access")

CLIENT_CLOSED_REQUEST = 499  # nginx's status for a request whose client went away
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
# Not a guess: nothing presented, or a browser whose (unguessable) session ended.
_QUIET_FAILURES = frozenset({"missing_api_key", "session_expired"})


# json.dumps with separators builds a new encoder on every call; this one is made once.
_encode_line = json.JSONEncoder(separators=(",", ":")).encode

_ID_PREFIX = secrets.token_hex(6)  # per process: ids from several gateways never collide
_id_counter = itertools.count(1)


def _new_request_id() -> str:
    """Unique, not secret: a random per-process prefix and a counter (no syscall per request)."""
    return f"{_ID_PREFIX}{next(_id_counter):010x}"


def error_response(exc: GatewayError, request_id: str | None = None) -> web.Response:
    headers = dict(exc.headers)
    if request_id:
        headers["X-Request-Id"] = request_id
    response = web.json_response(exc.body(), status=exc.status, headers=headers)
    if exc.closes_connection:
        response.force_close()
    return response


def _from_http_exception(exc: web.HTTPException) -> GatewayError:
    if exc.status == 413:
        return PayloadTooLarge("the request body is larger than max_request_mb allows")
    if exc.status == 405:
        return MethodNotAllowed(f"method not allowed: {exc.text or ''}".strip())
    if exc.status == 404:
        return NotFound("no such path")
    error = GatewayError(exc.reason or "error", code=f"http_{exc.status}")
    error.status = exc.status
    error.type = "invalid_request_error" if exc.status < 500 else "server_error"
    return error


def raw_path(request: web.Request) -> str:
    return request.raw_path.split("?", 1)[0]


@web.middleware
async def gateway_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    incoming = request.headers.get("X-Request-Id")
    request_id = incoming if incoming and _REQUEST_ID_RE.match(incoming) else _new_request_id()
    request[K.REQUEST_ID] = request_id
    request[K.CLIENT] = request.app[K.CLIENT_ADDRESS].of(request)
    outcome = Outcome()
    request[K.OUTCOME] = outcome
    status = 500
    try:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            raise _from_http_exception(exc) from None
        response.headers.setdefault("X-Request-Id", request_id)
        status = response.status
        return response
    except GatewayError as exc:
        status = exc.status
        outcome.error = outcome.error or exc.code
        return error_response(exc, request_id)
    except asyncio.CancelledError:  # the client went away and aiohttp cancelled the handler
        status = _client_closed(outcome)
        raise
    except Exception:
        log.exception("unhandled error (request %s)", request_id)
        status = 500
        return error_response(GatewayError("internal error"), request_id)
    finally:
        if access_log.isEnabledFor(logging.INFO):  # after the answer is written (handlers.py)
            asyncio.get_running_loop().call_soon(
                _log_access, request, request_id, status, started, outcome
            )


def _client_closed(outcome: Outcome) -> int:
    """A request its client abandoned: no error of ours, so not 500 but nginx's 499; unless it
    had the whole answer already (a stream's last event), and left before the engine's end."""
    if outcome.delivered:
        return outcome.status
    outcome.error = outcome.error or "client_closed_request"
    return CLIENT_CLOSED_REQUEST


def _log_access(
    request: web.Request, request_id: str, status: int, started: float, outcome: Outcome
) -> None:
    principal = request.get(K.PRINCIPAL)
    tokens = outcome.tokens
    line = {
        "ts": round(time.time(), 3),
        "request_id": request_id,
        "client": request.get(K.CLIENT),
        "method": request.method,
        "path": raw_path(request)[:200],
        "status": status,
        "user": principal.user_name if principal else None,
        "service": principal.service if principal else None,  # a service key acting for user
        "model": request.get(K.MODEL),
        "upstream": request.get(K.UPSTREAM_NAME),
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "ttft_ms": round(outcome.ttft_ms, 2) if outcome.ttft_ms is not None else None,
        "prompt_tokens": tokens.prompt if tokens else None,
        "completion_tokens": tokens.completion if tokens else None,
        "error": outcome.error,
    }
    access_log.info(_encode_line(line))


def _presented_prefix(request: web.Request) -> str | None:
    """The display prefix of whatever key-like value was presented (never more of it)."""
    raw = request.headers.get("x-api-key") or request.headers.get("Authorization") or ""
    token = raw.split()[-1] if raw.split() else ""
    return display_prefix(token) if token.startswith(KEY_PREFIX) and len(token) > 12 else None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = raw_path(request)
    access = access_of(path)  # None: a path the gateway does not serve
    if access == "public":
        return await handler(request)
    app = request.app
    throttle = app[K.AUTH_THROTTLE]
    client = request[K.CLIENT]
    try:
        throttle.check(client)
    except RateLimited as exc:  # refused before its credential was even looked at
        app[K.METRICS].auth_failed(exc.code)
        raise
    try:
        principal = await authenticate(request, app[K.AUTHENTICATORS])
    except AuthenticationFailed as exc:
        if access == "scrape" and anonymous_scrape(request, exc):
            return await handler(request)  # a direct local scrape of /metrics, no principal
        app[K.METRICS].auth_failed(exc.code)
        if exc.code not in _QUIET_FAILURES:  # guesses count; "sent nothing" and expiry don't
            throttle.failed(client, reason=exc.code, key_prefix=_presented_prefix(request))
        if access == "page":
            return _to_login(request, path)
        raise
    # A service key may act for the person it names (Open WebUI's headers); no one else may.
    principal = await app[K.ACTING_FOR].resolve(request, principal)
    request[K.PRINCIPAL] = principal
    if access is None:
        raise NotFound(f"{path[:100]} is not served by this gateway", code="unknown_path")
    if principal.via == "session" and access != "page":  # pages check CSRF tokens
        require_same_origin(request, tls=app[K.CLIENT_ADDRESS].came_over_tls(request))
    return await handler(request)


def _to_login(request: web.Request, path: str) -> web.Response:
    """A page asked for without a (live) session: to the sign-in page, dropping a dead cookie."""
    target = path if request.method == "GET" and path != "/" else "/account"
    response = web.Response(
        status=303,
        headers={"Location": f"/auth/login?next={target}", "Cache-Control": "no-store"},
    )
    sessions = request.app[K.BROWSER].sessions
    if sessions.token(request) is not None:
        sessions.clear_cookie(request, response)
    return response
