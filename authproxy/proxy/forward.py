"""Forwarding one authorized request to one upstream, streaming without buffering.

The client never chooses the upstream URL (it is the endpoint's path on the configured base,
with only the path segments and query parameters the catalogue row allows, strictly checked),
redirects are never followed, client credentials never leave, and a client that goes away
closes the upstream request at once so the engine frees its slot.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from multidict import CIMultiDict

from authproxy.config.schema import Timeouts
from authproxy.errors import UpstreamError, UpstreamNoAnswer, UpstreamUnreachable
from authproxy.http1 import ConnectFailed, Disconnected, HttpError, Origin, Pool, Response
from authproxy.metrics.registry import GatewayMetrics
from authproxy.proxy.answers import (
    FAILOVER_STATUSES,
    MAX_ERROR_BODY,
    AnswerRelay,
    EngineUnavailable,
)
from authproxy.proxy.endpoints import Endpoint
from authproxy.proxy.headers import upstream_request_headers
from authproxy.proxy.outcome import Outcome
from authproxy.proxy.relays import relay_for
from authproxy.proxy.request_body import PreparedRequest
from authproxy.upstreams.catalog import UpstreamState

# EngineUnavailable, Outcome and the figures are re-exported: the request path names them here.
__all__ = ["FAILOVER_STATUSES", "MAX_ERROR_BODY", "EngineUnavailable", "Forwarder", "Outcome"]

log = logging.getLogger(__name__)


class Forwarder:
    def __init__(
        self,
        *,
        pool: Pool,
        timeouts: Timeouts,
        metrics: GatewayMetrics,
    ) -> None:
        self._pool = pool  # connects within timeouts.connect; first_byte bounds the head (_send)
        self._origins: dict[str, Origin] = {}
        self._timeouts = timeouts
        self._answers = AnswerRelay(timeouts=timeouts, metrics=metrics)

    async def forward(
        self,
        request: web.Request,
        *,
        endpoint: Endpoint,
        prepared: PreparedRequest,
        body: bytes,
        upstream: UpstreamState,
        request_id: str,
        outcome: Outcome,
        started: float,
    ) -> web.StreamResponse:
        headers = upstream_request_headers(
            request.headers,
            upstream_auth=upstream.auth_headers(),
            request_id=request_id,
            content_type=prepared.content_type,
        )
        upstream.outstanding += 1
        resp: Response | None = None
        try:
            resp = await self._send(upstream, endpoint, prepared, body, headers)
            outcome.reached, outcome.engine_refused = True, resp.status >= 300
            if 300 <= resp.status < 400:
                raise UpstreamError(
                    f"upstream {upstream.name} answered with a redirect, which is never followed",
                    code="upstream_redirect",
                )
            if resp.status >= 400:
                return await self._answers.error(resp, upstream, outcome, started)
            relay = relay_for(
                resp.content_type,
                dialect=endpoint.usage,
                strip_usage=prepared.strip_usage,
                whole=endpoint.usage is not None or endpoint.records_owner,
            )
            if relay is None:
                return await self._answers.body(request, resp, endpoint, outcome, started)
            return await self._answers.stream(request, resp, relay, outcome, started)
        except (UpstreamUnreachable, UpstreamNoAnswer) as exc:
            if prepared.upload is not None and prepared.upload.refused is not None:
                raise prepared.upload.refused from None  # the client's form, not the engine
            # Only a refused connection surely reached no engine; else it may be on the prompt.
            outcome.reached |= not isinstance(exc.__cause__, ConnectFailed)
            # Passive ejection: the next request goes elsewhere instead of finding out again.
            cause = f" ({exc.__cause__})" if exc.__cause__ else ""
            upstream.eject(exc.message + cause)
            raise
        except asyncio.CancelledError:  # the client left while the engine had the request
            outcome.reached = True
            raise
        finally:
            upstream.outstanding -= 1
            if resp is not None:
                resp.close()  # never back into the pool half-read: the engine sees the close

    def _origin(self, upstream: UpstreamState) -> Origin:
        """The engine's base URL, taken apart once."""
        origin = self._origins.get(upstream.url)
        if origin is None:
            origin = self._origins[upstream.url] = Origin.parse(upstream.url)
        return origin

    async def _send(
        self,
        upstream: UpstreamState,
        endpoint: Endpoint,
        prepared: PreparedRequest,
        body: bytes,
        headers: CIMultiDict[str],
    ) -> Response:
        """The engine's answer, once its head is in. ``prepared.target`` (a stored response's
        path, an allowed query) is made of segments and values the catalogue checked character
        by character; else the row's own path."""
        upload = prepared.upload
        sent = upload if upload is not None else (body or None)
        target = prepared.target or endpoint.path
        origin = self._origin(upstream)
        # A streamed upload is sent once, on a connection surely new: it cannot be sent again.
        attempts = (2,) if upload is not None else (1, 2)
        for attempt in attempts:
            try:
                return await self._pool.request(
                    origin,
                    prepared.method,
                    target,
                    headers,
                    sent,
                    length=upload.length if upload is not None else None,
                    fresh=attempt == 2,
                    head_timeout=self._timeouts.first_byte,
                )
            except TimeoutError:
                raise UpstreamNoAnswer(
                    f"upstream {upstream.name} did not answer within the timeout"
                ) from None
            except Disconnected as exc:
                # A pooled keep-alive connection the engine had already closed (llama-server
                # closes after every stream while announcing keep-alive; uvicorn closes idle
                # ones): no answer came back, so one more try is safe, on a connection that is
                # surely new (the pool might hand out another dead one). Refused connects are
                # not retried (ConnectFailed, below).
                if attempt == 1:
                    continue
                raise UpstreamUnreachable(f"upstream {upstream.name} is unreachable") from exc
            except HttpError as exc:
                raise UpstreamUnreachable(f"upstream {upstream.name} is unreachable") from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
