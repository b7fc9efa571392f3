"""The forwarded endpoints: authorize the model, forward (with failover), account."""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from authproxy import appkeys as K
from authproxy.auth.principal import Principal
from authproxy.clock import now
from authproxy.errors import NotFound, PermissionDenied
from authproxy.limits.quota import QuotaRefused
from authproxy.proxy.endpoints import Endpoint
from authproxy.proxy.failover import forward_with_failover
from authproxy.proxy.forward import Outcome
from authproxy.proxy.request_body import PreparedRequest, prepare
from authproxy.proxy.request_encoding import decoded
from authproxy.store.records import UsageRow

__all__ = ["authorize_model", "make_handler", "usage_row"]


def authorize_model(app: web.Application, principal: Principal, model: str) -> None:
    policy = app[K.POLICY]
    catalog = app[K.CATALOG]
    if not policy.knows_role(principal.role):
        raise PermissionDenied(
            f"role {principal.role!r} is not configured on this gateway", code="unknown_role"
        )
    if not catalog.serving(model):
        raise NotFound(f"the model {model!r} does not exist", code="model_not_found")
    if not policy.may_use(principal.role, model):
        raise PermissionDenied(f"you may not use the model {model!r}", code="model_not_allowed")


def usage_row(
    *,
    request_id: str,
    principal: Principal,
    endpoint: Endpoint,
    prepared: PreparedRequest,
    upstream: str,
    outcome: Outcome,
    started: float,
) -> UsageRow:
    tokens = outcome.tokens
    prompt = tokens.prompt if tokens else None
    completion = tokens.completion if tokens else None
    source = "engine" if (tokens and tokens.known) else "none"
    if completion is None and outcome.estimated_completion:
        completion, source = outcome.estimated_completion, "estimated"
    if prompt is None and (
        source == "estimated" or (outcome.reached and not outcome.engine_refused)
    ):
        # The engine had the request (the client left, the engine stalled or was cut off)
        # and said nothing: it may have read the whole prompt, so that is charged.
        prompt, source = prepared.prompt_estimate, "estimated"
    if prepared.outputs > 1 and outcome.reached and not outcome.engine_refused:
        # llama-server reports the usage of the first output (or prompt) only: several are
        # charged what they reserved, unless the engine counted more.
        prompt = max(prompt or 0, prepared.prompt_estimate)
        completion = max(completion or 0, prepared.reserved_output)
        source = "estimated"
    return UsageRow(
        ts=now(),
        request_id=request_id,
        user_id=principal.user_id,
        key_id=principal.key_id,
        model=prepared.model,
        upstream=upstream,
        endpoint=endpoint.path,
        status=outcome.status or 499,
        prompt_tokens=prompt or 0,
        completion_tokens=completion or 0,
        duration_ms=(time.perf_counter() - started) * 1000,
        ttft_ms=outcome.ttft_ms,
        stream=prepared.stream,
        usage_source=source,
    )


def make_handler(endpoint: Endpoint) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        app = request.app
        principal = request[K.PRINCIPAL]
        config = app[K.CONFIG]
        encoding = request.headers.get("Content-Encoding", "")
        raw = decoded(await request.read(), encoding, limit=config.max_request_bytes)
        prepared = prepare(endpoint, raw, settings=config.quotas)
        request[K.MODEL] = prepared.model
        authorize_model(app, principal, prepared.model)
        try:
            admission = await app[K.QUOTAS].admit(principal, prepared)
        except QuotaRefused as exc:
            app[K.METRICS].quota_rejected(principal.user_name, exc.reason)
            raise
        prepared = admission.prepared  # max_tokens may have been clamped to the quota
        outcome = request[K.OUTCOME]
        started = time.perf_counter()
        try:
            return await forward_with_failover(
                request, endpoint=endpoint, prepared=prepared, outcome=outcome, started=started
            )
        except BaseException as exc:
            if not outcome.status:
                outcome.status = getattr(exc, "status", 499)
            raise
        finally:
            row = usage_row(
                request_id=request[K.REQUEST_ID],
                principal=principal,
                endpoint=endpoint,
                prepared=prepared,
                upstream=request.get(K.UPSTREAM_NAME, ""),
                outcome=outcome,
                started=started,
            )
            admission.settle(row.prompt_tokens + row.completion_tokens)
            app[K.USAGE].record(row)
            app[K.METRICS].request_done(row, user=principal.user_name)

    return handle
