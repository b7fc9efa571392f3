"""``max_inflight: auto``: an upstream's capacity read from the engine itself.

llama-server announces its slots (``--parallel`` / ``-np``) as ``total_slots`` in ``GET /props``
(behind its ``--api-key`` when it has one, so the upstream's key is sent). The monitor reads it
at start and after every health check that passed, so a restarted engine with another ``-np``
resizes the queue within one check interval. Other engines have no such endpoint: their
``auto`` is reported once in the log and nothing is queued until a number can be read.
"""

from __future__ import annotations

import json
import logging

import aiohttp

from authproxy.upstreams.catalog import UpstreamState

__all__ = ["PROPS_PATH", "read_total_slots", "refresh_capacity"]

log = logging.getLogger(__name__)

PROPS_PATH = "/props"
MAX_PROPS_BYTES = 1 << 20  # the chat template is in there; a megabyte is plenty


async def read_total_slots(
    session: aiohttp.ClientSession, upstream: UpstreamState, *, timeout: float
) -> int | str:
    """The engine's ``total_slots``, or why it could not be read (a phrase for the log)."""
    try:
        async with session.get(
            upstream.url + PROPS_PATH,
            headers=upstream.auth_headers(),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            if resp.status != 200:
                return f"{PROPS_PATH} answered HTTP {resp.status}"
            body = await resp.content.read(MAX_PROPS_BYTES)
    except TimeoutError:
        return f"{PROPS_PATH} got no answer within {timeout:g}s"
    except aiohttp.ClientError as exc:
        return f"{PROPS_PATH} failed: {type(exc).__name__}"
    try:
        slots = json.loads(body).get("total_slots")
    except (ValueError, AttributeError):
        return f"{PROPS_PATH} is not a JSON object"
    if type(slots) is not int or slots < 1:
        return f"{PROPS_PATH} has no total_slots of at least 1"
    return slots


async def refresh_capacity(
    session: aiohttp.ClientSession, upstream: UpstreamState, *, timeout: float
) -> None:
    """Read the slots of an ``auto`` upstream and resize its queue; a failure keeps the last
    capacity read (none yet: no queue) and is logged when it first happens."""
    got = await read_total_slots(session, upstream, timeout=timeout)
    if isinstance(got, int):
        if upstream.queue is None or upstream.capacity_problem is not None:
            log.info(
                "upstream %s: max_inflight auto = %d (llama-server's slots)", upstream.name, got
            )
        upstream.capacity_problem = None
        upstream.set_capacity(got)
        return
    if got != upstream.capacity_problem:
        log.warning(
            "upstream %s: max_inflight is auto but %s (only llama-server announces its slots); %s",
            upstream.name,
            got,
            f"keeping {upstream.queue.capacity}"
            if upstream.queue
            else "no queue until it can be read: set a number instead",
        )
    upstream.capacity_problem = got
