"""Forwarding with failover: choose an upstream for the model, take one of its slots (the
queue step, ``slots.py``: at once unless it has a capacity and it is busy), forward, and when
it fails before the client received anything, try the next healthy one (each at most once).

What may fail over is decided where the failure is seen (``UpstreamError.failover``): refused
or reset connections, no answer within ``first_byte``, a buffered answer cut short, and an
engine answering 502/503/504, and the upstream going down while the request waited for one of
its slots (``QueueDrained``). Once response headers went to the client (a stream started) a
failure is reported in the stream instead; a request is never sent to two engines whose
answers could both reach the client.
"""

from __future__ import annotations

import logging

from aiohttp import web

from authproxy import appkeys as K
from authproxy.errors import NotFound, UpstreamError
from authproxy.proxy.endpoints import Endpoint
from authproxy.proxy.forward import EngineUnavailable, Outcome
from authproxy.proxy.request_body import PreparedRequest, for_engine
from authproxy.proxy.slots import queued_slot
from authproxy.upstreams.catalog import ModelCatalog, UpstreamState

__all__ = ["forward_with_failover"]

log = logging.getLogger(__name__)


def _reset(outcome: Outcome) -> None:
    """Forget what a failed attempt noted, so the figures describe the answer that served."""
    outcome.status = 0
    outcome.ttft_ms = None
    outcome.error = None
    outcome.engine_refused = False  # `reached` stays: the failed engine may have used the prompt


def _first(catalog: ModelCatalog, prepared: PreparedRequest) -> UpstreamState:
    if prepared.pinned is not None:
        pinned = next((u for u in catalog.upstreams if u.name == prepared.pinned), None)
        if pinned is None:
            raise NotFound(f"upstream {prepared.pinned!r} is gone", code="upstream_not_found")
        return pinned
    if not prepared.model:  # nothing to route by: the least loaded upstream that is up
        pool = [u for u in catalog.upstreams if u.routable] or catalog.upstreams
        return min(pool, key=lambda u: u.outstanding)
    upstream = catalog.pick(prepared.model)
    if upstream is None:
        raise NotFound(f"the model {prepared.model!r} does not exist", code="model_not_found")
    return upstream


async def forward_with_failover(
    request: web.Request,
    *,
    endpoint: Endpoint,
    prepared: PreparedRequest,
    outcome: Outcome,
    started: float,
) -> web.StreamResponse:
    """Forward to the best upstream serving ``prepared.model`` (an alias or an engine id).

    ``request[K.UPSTREAM_NAME]`` names the upstream tried last: the one that served the
    answer, or the last one that failed.
    """
    app = request.app
    catalog = app[K.CATALOG]
    forwarder = app[K.FORWARDER]
    engine_model = catalog.resolve(prepared.model)
    body = for_engine(prepared, engine_model)
    if prepared.upload is not None:
        prepared.upload.with_model(engine_model)
    # One upstream only: the one holding a stored response, the one an admin path names, or
    # any for an upload (its body is streamed once and cannot be sent again).
    single = prepared.pinned is not None or prepared.upload is not None
    tried: set[UpstreamState] = set()
    upstream = _first(catalog, prepared)
    while True:
        tried.add(upstream)
        request[K.UPSTREAM_NAME] = upstream.name
        forwarded = forwarder.forward(
            request,
            endpoint=endpoint,
            prepared=prepared,
            body=body,
            upstream=upstream,
            request_id=request[K.REQUEST_ID],
            outcome=outcome,
            started=started,
        )
        try:
            if upstream.queue is None:  # no capacity: no slot to take
                return await forwarded
            async with queued_slot(
                request, upstream.queue, upstream.name, prepared.prompt_estimate, outcome
            ):
                return await forwarded
        except UpstreamError as exc:
            if not exc.failover:
                raise
            following = None if single else catalog.pick(prepared.model, exclude=tried)
            if following is None:
                if isinstance(exc, EngineUnavailable) and exc.relay is not None:
                    outcome.status = exc.relay.status
                    outcome.error = "upstream_error_relayed"
                    return exc.relay
                raise
            log.warning(
                "request %s: %s; trying upstream %s",
                request[K.REQUEST_ID],
                exc.message,
                following.name,
            )
            _reset(outcome)
            upstream = following
        finally:
            forwarded.close()  # unawaited if the queue refused the request: closed quietly
