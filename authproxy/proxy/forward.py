"""Forwarding one authorized request to one upstream, streaming without buffering.

The client never chooses the upstream URL (it is the endpoint's canonical path on the
configured base), redirects are never followed, client credentials never leave, and a client
that goes away closes the upstream request at once so the engine frees its slot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from authproxy.config.schema import Timeouts
from authproxy.errors import UpstreamError, UpstreamNoAnswer, UpstreamUnreachable
from authproxy.metrics.registry import GatewayMetrics
from authproxy.proxy.endpoints import Endpoint
from authproxy.proxy.headers import client_response_headers, upstream_request_headers
from authproxy.proxy.request_body import PreparedRequest
from authproxy.proxy.sse_relay import SseRelay
from authproxy.proxy.usage import Tokens, usage_from_body
from authproxy.upstreams.catalog import UpstreamState

__all__ = ["FAILOVER_STATUSES", "MAX_ERROR_BODY", "EngineUnavailable", "Forwarder", "Outcome"]

log = logging.getLogger(__name__)

MAX_ERROR_BODY = 64 * 1024
# The engine (or a proxy in front of it) says it cannot serve now: another upstream may.
FAILOVER_STATUSES = frozenset({502, 503, 504})


@dataclass(slots=True)
class Outcome:
    """What happened, for the usage row and the access log (filled in as the request goes)."""

    status: int = 0
    tokens: Tokens | None = None
    estimated_completion: int = 0
    ttft_ms: float | None = None
    error: str | None = None
    reached: bool = False  # an engine got the request and may have begun on the prompt
    engine_refused: bool = False  # the engine answered with an error or a redirect: ran nothing


class EngineUnavailable(UpstreamError):
    """The engine answered 502/503/504 (llama-server: 503 while loading its model). Another
    upstream may be tried; if none is left, ``relay`` (the engine's own OpenAI-shaped error,
    when it sent one) is what the client gets."""

    failover = True

    def __init__(self, message: str, *, relay: web.Response | None) -> None:
        super().__init__(message, code="upstream_error")
        self.relay = relay


def _error_event(message: str, code: str) -> bytes:
    body = {"error": {"message": message, "type": "upstream_error", "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class Forwarder:
    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        fresh_session: aiohttp.ClientSession,
        timeouts: Timeouts,
        metrics: GatewayMetrics,
    ) -> None:
        self._session = session
        self._fresh_session = fresh_session  # never reuses a connection: for the retry
        self._urls: dict[tuple[str, str], URL] = {}
        self._timeouts = timeouts
        self._metrics = metrics
        # Only the connect is bounded by aiohttp: the wait for the answer's headers is bounded
        # by first_byte (in _send) and silence mid-answer by idle (in the relays). aiohttp's
        # sock_read would bound every read by one figure and cut slow streams short.
        self._client_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=None
        )

    async def forward(
        self,
        request: web.Request,
        *,
        endpoint: Endpoint,
        prepared: PreparedRequest,
        upstream: UpstreamState,
        request_id: str,
        outcome: Outcome,
        started: float,
    ) -> web.StreamResponse:
        headers = upstream_request_headers(
            request.headers, upstream_auth=upstream.auth_headers(), request_id=request_id
        )
        upstream.outstanding += 1
        resp: aiohttp.ClientResponse | None = None
        try:
            resp = await self._send(upstream, endpoint, prepared, headers)
            outcome.reached, outcome.engine_refused = True, resp.status >= 300
            if 300 <= resp.status < 400:
                raise UpstreamError(
                    f"upstream {upstream.name} answered with a redirect, which is never followed",
                    code="upstream_redirect",
                )
            if resp.status >= 400:
                return await self._relay_error(resp, upstream, outcome, started)
            if resp.content_type == "text/event-stream":
                return await self._relay_stream(
                    request, resp, endpoint, prepared, outcome, started, request_id
                )
            return await self._relay_body(resp, endpoint, outcome, started)
        except (UpstreamUnreachable, UpstreamNoAnswer) as exc:
            # Only a refused connection surely reached no engine; else it may be on the prompt.
            outcome.reached |= not isinstance(exc.__cause__, aiohttp.ClientConnectorError)
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

    def _url(self, upstream: UpstreamState, endpoint: Endpoint) -> URL:
        """Parsed once per upstream and endpoint: aiohttp takes a URL object as it is."""
        key = (upstream.url, endpoint.path)
        url = self._urls.get(key)
        if url is None:
            url = self._urls[key] = URL(upstream.url + endpoint.path)
        return url

    async def _send(
        self,
        upstream: UpstreamState,
        endpoint: Endpoint,
        prepared: PreparedRequest,
        headers: CIMultiDict[str],
    ) -> aiohttp.ClientResponse:
        for attempt in (1, 2):
            session = self._session if attempt == 1 else self._fresh_session
            try:
                async with asyncio.timeout(self._timeouts.first_byte):
                    return await session.post(
                        self._url(upstream, endpoint),
                        data=prepared.body,
                        headers=headers,
                        allow_redirects=False,
                        timeout=self._client_timeout,
                    )
            except TimeoutError:
                raise UpstreamNoAnswer(
                    f"upstream {upstream.name} did not answer within the timeout"
                ) from None
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # A pooled keep-alive connection the engine had already closed (llama-server
                # closes after every stream while announcing keep-alive; uvicorn closes idle
                # ones): no answer came back, so one more try is safe, on a connection that is
                # surely new (the pool might hand out another dead one). Refused connects are
                # not retried (ClientConnectorError is an OSError too, caught below).
                if attempt == 1 and not isinstance(exc, aiohttp.ClientConnectorError):
                    continue
                raise UpstreamUnreachable(f"upstream {upstream.name} is unreachable") from exc
            except aiohttp.ClientError as exc:
                raise UpstreamUnreachable(f"upstream {upstream.name} is unreachable") from exc
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _read_body(self, resp: aiohttp.ClientResponse, limit: int | None) -> bytes:
        try:
            async with asyncio.timeout(self._timeouts.idle):
                if limit is None:
                    return await resp.read()
                return await resp.content.read(limit)
        except TimeoutError:
            raise UpstreamNoAnswer("upstream stalled while sending its answer") from None
        except aiohttp.ClientError as exc:
            raise UpstreamUnreachable("upstream closed the connection mid-answer") from exc

    async def _relay_body(
        self,
        resp: aiohttp.ClientResponse,
        endpoint: Endpoint,
        outcome: Outcome,
        started: float,
    ) -> web.Response:
        body = await self._read_body(resp, None)
        outcome.tokens = usage_from_body(body, endpoint.dialect)
        outcome.status = resp.status
        outcome.ttft_ms = (time.perf_counter() - started) * 1000
        return web.Response(
            status=resp.status, body=body, headers=client_response_headers(resp.headers)
        )

    async def _relay_error(
        self,
        resp: aiohttp.ClientResponse,
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

    async def _relay_stream(
        self,
        request: web.Request,
        resp: aiohttp.ClientResponse,
        endpoint: Endpoint,
        prepared: PreparedRequest,
        outcome: Outcome,
        started: float,
        request_id: str,
    ) -> web.StreamResponse:
        relay = SseRelay(dialect=endpoint.dialect, strip_usage=prepared.strip_usage)
        out = web.StreamResponse(status=resp.status, headers=client_response_headers(resp.headers))
        out.headers["X-Request-Id"] = request_id  # the headers leave before the middleware sees it
        out.headers["Cache-Control"] = "no-cache"
        out.headers["X-Accel-Buffering"] = "no"
        try:
            await out.prepare(request)
        except ConnectionResetError:  # the client left as the engine answered, just before
            outcome.error = "client_disconnected"  # aiohttp cancelled this handler: as if it had
            raise asyncio.CancelledError from None
        outcome.status = resp.status
        outcome.tokens = relay.tokens
        self._metrics.stream_opened()  # closed in the finally below, however the relay ends
        loop = asyncio.get_running_loop()
        idle = self._timeouts.idle
        try:
            # Until the first event the engine may still be reading the prompt: first_byte applies.
            async with asyncio.timeout_at(loop.time() + self._timeouts.first_byte) as deadline:
                async for chunk in resp.content.iter_any():
                    deadline.reschedule(loop.time() + idle)
                    data = relay.feed(chunk)
                    if data:
                        if outcome.ttft_ms is None:
                            outcome.ttft_ms = (time.perf_counter() - started) * 1000
                        await out.write(data)
            tail = relay.finish()
            if tail:
                await out.write(tail)
            if not relay.done:
                outcome.error = "upstream_cut_off"
                await out.write(
                    _error_event("the engine ended the stream early", "upstream_cut_off")
                )
        except TimeoutError:
            outcome.error = "upstream_stalled"
            await out.write(
                _error_event(f"the engine sent nothing for {idle:g}s", "upstream_timeout")
            )
        except aiohttp.ClientError:
            outcome.error = "upstream_cut_off"
            await out.write(_error_event("the engine closed the stream early", "upstream_cut_off"))
        except (ConnectionResetError, asyncio.CancelledError):
            outcome.error = "client_disconnected"
            outcome.estimated_completion = relay.content_events
            raise
        finally:
            outcome.estimated_completion = relay.content_events
            self._metrics.stream_closed()
        try:
            await out.write_eof()
        except ConnectionResetError:
            outcome.error = "client_disconnected"
        return out
