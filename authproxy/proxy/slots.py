"""The queue step of the request path: after the quota admitted a request and an upstream was
chosen for it, the request takes one of that upstream's slots, and gives it back when the
engine is done with it (a stream: after its last event, or when either side cut it off).

An upstream without a capacity (no ``max_inflight``) has no queue: the request goes straight
on, as it always did. With one, it waits in the upstream's fair queue (``queue/``) as its user,
weighted by the ``share`` of the user's role. Refusals are raised as they come (``QueueFull``
429, ``QueueTimeout`` 503, ``QueueDrained`` 503, which the failover loop takes to the next
upstream); a client that goes away while waiting cancels the wait and leaves the queue at once,
having reached no engine: it is charged nothing.

**When service is charged: once, when the engine is done**, with what it counted — the usage
it reported, else the content events the relay counted and, if the engine had the request, the
prompt estimate — and *before* the slot is handed on, so the next hand-off sees it.

* Not the prompt estimate on entry: it bounds the prompt from above, for real text several
  times over, and a user arriving while it is charged is lifted to the inflated counter, then
  falls behind the busy user the moment the engine's count replaces the estimate.
* Not per streamed chunk: that needs a hook in every relay (SSE today, more dialects soon) for
  the same bound — a user is picked only while its counter is the lowest, so what its requests
  in flight have not been charged yet is at most ``capacity`` requests either way — and the
  tie-break (fewer requests in flight goes first) already gives a newcomer the next slot
  ahead of a busy user whose streams are still uncharged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from authproxy import appkeys as K
from authproxy.proxy.forward import Outcome
from authproxy.queue.fair_queue import FairQueue
from authproxy.queue.ticket import Ticket

__all__ = ["queued_slot"]


@asynccontextmanager
async def queued_slot(
    request: web.Request, queue: FairQueue, name: str, prompt_estimate: int, outcome: Outcome
) -> AsyncIterator[None]:
    """Hold one of the slots of the upstream ``name`` (its ``queue``) while the body runs. An
    upstream without a capacity has no queue: the caller goes straight on, nothing held."""
    principal = request[K.PRINCIPAL]
    role = request.app[K.CONFIG].roles.get(principal.role)
    ticket = await queue.acquire(user=principal.user_name, weight=role.share if role else 1.0)
    request.app[K.METRICS].queue_waited(name, ticket.waited)
    try:
        yield
    finally:
        _settle(ticket, outcome, prompt_estimate)
        ticket.release()


def _settle(ticket: Ticket, outcome: Outcome, prompt_estimate: int) -> None:
    """Charge what the engine did (the prompt estimate stands in for a prompt it read but never
    counted; an engine that refused ran nothing)."""
    tokens = outcome.tokens
    ran = outcome.reached and not outcome.engine_refused
    prompt = tokens.prompt if tokens and tokens.prompt is not None else None
    if prompt is None:
        prompt = prompt_estimate if ran else 0
    completion = tokens.completion if tokens and tokens.completion is not None else None
    if completion is None:
        completion = outcome.estimated_completion
    ticket.settle(input_tokens=prompt, output_tokens=completion)
