"""Carrying one engine's answer back to the client: its errors, a whole JSON body (read for
usage), or a stream relayed as it comes (``relays.py`` picks how by the content type).

A Responses answer names its response's id (the body's ``id``, a stream's first event): the
request's ``ON_RESPONSE_ID`` hook records its creator before the client sees the id, so the
id is never usable by anyone before it is the creator's alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web

from authproxy import appkeys as K
from authproxy.config.schema import Timeouts
from authproxy.errors import UpstreamError, UpstreamNoAnswer, UpstreamUnreachable
from authproxy.http1 import HttpError, Response
from authproxy.metrics.registry import GatewayMetrics
from authproxy.proxy.endpoints import Endpoint
from authproxy.proxy.headers import client_response_headers
from authproxy.proxy.idle_deadline import IdleDeadline
from authproxy.proxy.outcome import Outcome
from authproxy.proxy.relays import Relay
from authproxy.proxy.usage import usage_from_body
from authproxy.upstreams.catalog import UpstreamState

__all__ = ["FAILOVER_STATUSES", "MAX_ERROR_BODY", "AnswerRelay", "EngineUnavailable"]

log = logging.getLogger(__name__)

MAX_ERROR_BODY = 64 * 1024
# The engine (or a proxy in front of it) says it cannot serve now: another upstream may.
FAILOVER_STATUSES = frozenset({502, 503, 504})


class EngineUnavailable(UpstreamError):
    """The engine answered 502/503/504 (llama-server: 503 while loading its model). Another
    upstream may be tried; if none is left, ``relay`` (the engine's own OpenAI-shaped error,
    when it sent one) is what the client gets."""

    failover = True

    def __init__(self, message: str, *, relay: web.Response | None) -> None:
        super().__init__(message, code="upstream_error")
        self.relay = relay


def _response_id(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    found = parsed.get("id") if isinstance(parsed, dict) else None
    return found if isinstance(found, str) else None


class AnswerRelay:
    """The three ways back: an error, a whole body, a stream."""

    def __init__(self, *, timeouts: Timeouts, metrics: GatewayMetrics) -> None:
        self._timeouts = timeouts
        self._metrics = metrics

    async def _read_body(self, resp: Response, limit: int | None) -> bytes:
        try:
            async with asyncio.timeout(self._timeouts.idle):
                if limit is None:
                    return await resp.read()
                return await resp.read_up_to(limit)
        except TimeoutError:
            raise UpstreamNoAnswer("upstream stalled while sending its answer") from None
        except HttpError as exc:
            raise UpstreamUnreachable("upstream closed the connection mid-answer") from exc

    async def body(
        self,
        request: web.Request,
        resp: Response,
        endpoint: Endpoint,
        outcome: Outcome,
        started: float,
    ) -> web.Response:
        # Most answers come whole with their head: no timer, no wait.
        body = resp.body_now() if resp.complete else await self._read_body(resp, None)
        if endpoint.usage is not None:
            outcome.tokens = usage_from_body(body, endpoint.usage)
        outcome.status = resp.status
        outcome.ttft_ms = (time.perf_counter() - started) * 1000
        hook = request.get(K.ON_RESPONSE_ID)
        if hook is not None and (response_id := _response_id(body)) is not None:
            await hook(response_id)
        return web.Response(
            status=resp.status, body=body, headers=client_response_headers(resp.headers)
        )

    async def error(
        self,
        resp: Response,
        upstream: UpstreamState,
        outcome: Outcome,
        started: float,
    ) -> web.Response:
        body = await self._read_body(resp, MAX_ERROR_BODY)
        outcome.ttft_ms = (time.perf_counter() - started) * 1000
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        relay = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict | str):
            # The engine's own OpenAI-shaped error (a bad parameter, a context overflow): relay.
            relay = web.Response(
                status=resp.status, body=body, headers=client_response_headers(resp.headers)
            )
        if resp.status in FAILOVER_STATUSES:
            raise EngineUnavailable(
                f"upstream {upstream.name} failed with HTTP {resp.status}", relay=relay
            )
        if relay is not None:
            outcome.status = resp.status
            outcome.error = "upstream_error_relayed"
            return relay
        raise UpstreamError(
            f"upstream {upstream.name} failed with HTTP {resp.status}", code="upstream_error"
        )

    async def stream(
        self,
        request: web.Request,
        resp: Response,
        relay: Relay,
        outcome: Outcome,
        started: float,
    ) -> web.StreamResponse:
        out = web.StreamResponse(status=resp.status, headers=client_response_headers(resp.headers))
        # The headers leave before the middleware sees the response.
        out.headers["X-Request-Id"] = request[K.REQUEST_ID]
        out.headers["Cache-Control"] = "no-cache"
        out.headers["X-Accel-Buffering"] = "no"
        try:
            await out.prepare(request)
        except ConnectionResetError:  # the client left as the engine answered, just before
            outcome.error = "client_disconnected"  # aiohttp cancelled this handler: as if it had
            raise asyncio.CancelledError from None
        outcome.status = resp.status
        outcome.tokens = relay.tokens
        hook = request.get(K.ON_RESPONSE_ID)
        self._metrics.stream_opened()  # closed in the finally below, however the relay ends
        idle = self._timeouts.idle
        try:
            # Until the first event the engine may still be reading the prompt: first_byte applies.
            async with IdleDeadline(first=self._timeouts.first_byte, idle=idle) as deadline:
                async for chunk in resp:
                    deadline.moved()
                    data = relay.feed(chunk)
                    if hook is not None and relay.response_id is not None:
                        await hook(relay.response_id)  # before the client sees the id
                        hook = None
                    if data:
                        if outcome.ttft_ms is None:
                            outcome.ttft_ms = (time.perf_counter() - started) * 1000
                        await out.write(data)
                        outcome.delivered = relay.done
            tail = relay.finish()
            if tail:
                await out.write(tail)
            if not relay.done:
                outcome.error = "upstream_cut_off"
                await out.write(
                    relay.error_event("the engine ended the stream early", "upstream_cut_off")
                )
        except TimeoutError:
            outcome.error = "upstream_stalled"
            await out.write(
                relay.error_event(f"the engine sent nothing for {idle:g}s", "upstream_timeout")
            )
        except HttpError:
            outcome.error = "upstream_cut_off"
            await out.write(
                relay.error_event("the engine closed the stream early", "upstream_cut_off")
            )
        except (ConnectionResetError, asyncio.CancelledError):
            outcome.client_left()
            outcome.estimated_completion = relay.content_events
            raise
        finally:
            outcome.estimated_completion = relay.content_events
            self._metrics.stream_closed()
        try:
            await out.write_eof()
        except ConnectionResetError:
            outcome.client_left()
        return out
