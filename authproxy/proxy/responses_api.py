"""The Responses API's stored responses: each is its creator's alone.

When an engine answers ``POST /v1/responses`` with a response it keeps (``store`` not false),
the gateway records who created that id, on which model and upstream, before the client sees
the id (``proxy/answers.py`` calls the hook as soon as the answer names it). On
``/v1/responses/{id}`` (GET, DELETE, ``/cancel``, ``/input_items``) and for a
``previous_response_id``, anyone but the creator gets exactly what an unknown id gets — so
nothing tells another user's response from one that never existed — and an id the gateway has
no record of never reaches an engine. The creator's requests go to the upstream that made the
response. (llama-server stores nothing: it answers 404 to its creator too.)

Codex opens a WebSocket on ``GET /v1/responses`` first; ``426 Upgrade Required`` makes it
fall back to HTTP at once (any other refusal costs it seconds of retries; a 400 ends its run).
"""

from __future__ import annotations

import logging
import re

from aiohttp import web

from authproxy import appkeys as K
from authproxy.auth.principal import Principal
from authproxy.clock import now
from authproxy.errors import BadRequest, GatewayError, MethodNotAllowed, NotFound
from authproxy.store.base import StoreError
from authproxy.store.records import ResponseOwner

__all__ = [
    "RESPONSE_ID",
    "UpgradeRequired",
    "check_previous",
    "forget",
    "owned_response",
    "record_owner",
    "refuse_websocket",
]

log = logging.getLogger(__name__)

# What an id may be made of (OpenAI's, vLLM's and llama-server's are resp_ + letters and
# digits): no dot, no slash, no percent sign, so no id can climb out of its path on the engine.
RESPONSE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class UpgradeRequired(GatewayError):
    status = 426
    type = "invalid_request_error"
    code = "websocket_not_supported"


def _not_found(response_id: str) -> NotFound:
    shown = response_id if RESPONSE_ID.match(response_id) else "(invalid)"
    return NotFound(f"No response found with id '{shown}'.", code="response_not_found")


async def _owner(request: web.Request, response_id: str) -> ResponseOwner | None:
    if not RESPONSE_ID.match(response_id):
        return None
    try:
        return await request.app[K.STORE].response_owner(response_id)
    except StoreError:
        log.warning("the owner of a stored response could not be read; answering not found")
        return None


async def owned_response(request: web.Request, response_id: str) -> ResponseOwner:
    """The record of ``response_id`` if the caller created it; else 404, as for an unknown id."""
    owner = await _owner(request, response_id)
    if owner is None or owner.user_id != request[K.PRINCIPAL].user_id:
        raise _not_found(response_id)
    return owner


async def check_previous(request: web.Request, previous: str) -> ResponseOwner:
    """A ``previous_response_id`` must be the caller's own: else 400, the same answer as for
    an id nobody created (and as OpenAI gives for an unknown one)."""
    owner = await _owner(request, previous)
    if owner is None or owner.user_id != request[K.PRINCIPAL].user_id:
        shown = previous if RESPONSE_ID.match(previous) else "(invalid)"
        raise BadRequest(
            f"Previous response with id '{shown}' not found.", code="previous_response_not_found"
        )
    return owner


def record_owner(request: web.Request, principal: Principal, model: str) -> None:
    """Arm the hook that records the creator of the response this request makes."""

    async def record(response_id: str) -> None:
        if not RESPONSE_ID.match(response_id):
            log.warning("an engine named a response with an id of unexpected characters")
            return  # never reachable through the gateway: nothing to record
        owner = ResponseOwner(
            response_id=response_id,
            user_id=principal.user_id,
            model=model,
            upstream=request.get(K.UPSTREAM_NAME, ""),
            created_at=now(),
        )
        try:
            await request.app[K.STORE].record_response(owner)
        except StoreError:  # the answer still goes out; the id just stays unreachable
            log.warning("the creator of response %s could not be recorded", response_id)

    request[K.ON_RESPONSE_ID] = record


async def forget(request: web.Request, response_id: str) -> None:
    """After the engine deleted it: the id leads nowhere any more."""
    try:
        await request.app[K.STORE].forget_response(response_id)
    except StoreError:
        log.warning("the record of deleted response %s stays", response_id)


async def refuse_websocket(request: web.Request) -> web.Response:
    """``GET /v1/responses``: a WebSocket is not served here; 426 tells Codex to use HTTP."""
    if request.headers.get("Upgrade", "").strip().lower() == "websocket":
        refusal = UpgradeRequired(
            "WebSocket is not supported on this gateway: use HTTP POST /v1/responses"
        )
        response = web.json_response(refusal.body(), status=refusal.status)
        response.force_close()  # what follows on this connection would be WebSocket frames
        request[K.OUTCOME].error = refusal.code
        return response
    raise MethodNotAllowed("method not allowed: use POST /v1/responses", code="method_not_allowed")
