"""The catalogue's endpoints: who may call, read the request as the row says, authorize the
model, the quota, forward (with failover), account."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from authproxy import appkeys as K
from authproxy.auth.principal import Principal
from authproxy.clock import now
from authproxy.errors import NotFound, PermissionDenied
from authproxy.limits.quota import Admission, QuotaRefused
from authproxy.proxy import responses_api
from authproxy.proxy.endpoints import Endpoint
from authproxy.proxy.failover import forward_with_failover
from authproxy.proxy.forward import Outcome
from authproxy.proxy.models_list import list_models, list_tags
from authproxy.proxy.request_body import PreparedRequest
from authproxy.proxy.sources import prepare_request
from authproxy.store.records import UsageRow

__all__ = ["authorize_model", "make_handler", "require_access", "usage_row"]

# The rows the gateway answers itself.
_LOCAL: dict[str, Handler] = {
    "models": list_models,
    "tags": list_tags,
    "websocket": responses_api.refuse_websocket,
}


def require_access(app: web.Application, principal: Principal, endpoint: Endpoint) -> None:
    """The row's ``access``: before anything of the request is read."""
    if endpoint.access == "nobody":
        raise PermissionDenied(f"{endpoint.path} is closed on this gateway", code="endpoint_closed")
    if endpoint.access == "admin" and not app[K.POLICY].is_admin(principal.role):
        raise PermissionDenied(f"{endpoint.path} is for admins only", code="admin_only")


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


def _charged(
    endpoint: Endpoint, prepared: PreparedRequest, outcome: Outcome
) -> tuple[int, int, str]:
    """(prompt, completion, source) of the usage row."""
    if not endpoint.charged:  # counting, tokenizing, stored responses, admin paths
        return 0, 0, "none"
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
    return prompt or 0, completion or 0, source


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
    prompt, completion, source = _charged(endpoint, prepared, outcome)
    return UsageRow(
        ts=now(),
        request_id=request_id,
        user_id=principal.user_id,
        key_id=principal.key_id,
        model=prepared.model or None,
        upstream=upstream,
        endpoint=endpoint.path,
        status=outcome.status or 499,
        prompt_tokens=prompt,
        completion_tokens=completion,
        duration_ms=(time.perf_counter() - started) * 1000,
        ttft_ms=outcome.ttft_ms,
        stream=prepared.stream,
        usage_source=source,
    )


def make_handler(endpoint: Endpoint) -> Handler:
    local = _LOCAL.get(endpoint.answer)
    if local is not None:
        return local

    async def handle(request: web.Request) -> web.StreamResponse:
        app = request.app
        principal = request[K.PRINCIPAL]
        require_access(app, principal, endpoint)
        prepared = await prepare_request(request, endpoint)
        if prepared.model:
            request[K.MODEL] = prepared.model
            authorize_model(app, principal, prepared.model)
        if endpoint.records_owner and prepared.stored:
            responses_api.record_owner(request, principal, prepared.model)
        try:
            admission = await app[K.QUOTAS].admit(principal, prepared)
        except QuotaRefused as exc:
            app[K.METRICS].quota_rejected(principal.user_name, exc.reason)
            raise
        prepared = admission.prepared  # max_tokens may have been clamped to the quota
        outcome = request[K.OUTCOME]
        started = time.perf_counter()
        try:
            response = await forward_with_failover(
                request, endpoint=endpoint, prepared=prepared, outcome=outcome, started=started
            )
            if endpoint.model == "owner" and request.method == "DELETE" and response.status < 300:
                await responses_api.forget(request, request.match_info["response_id"])
            return response
        except BaseException as exc:
            if not outcome.status:
                outcome.status = getattr(exc, "status", 499)
            raise
        finally:
            # Right after aiohttp has written the answer (it does so in this same step of the
            # task, once the handler returns): the bookkeeping is not on the client's wait.
            asyncio.get_running_loop().call_soon(
                _account, request, principal, endpoint, prepared, admission, outcome, started
            )

    return handle


def _account(
    request: web.Request,
    principal: Principal,
    endpoint: Endpoint,
    prepared: PreparedRequest,
    admission: Admission[PreparedRequest],
    outcome: Outcome,
    started: float,
) -> None:
    """The request's usage row, its quota settled, its metrics."""
    app = request.app
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
