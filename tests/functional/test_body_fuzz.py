"""Fuzzing the running gateway with request bodies (hypothesis, seeded, bounded in time).

For every body: the gateway makes no 5xx; what it refuses is a 4xx in the OpenAI error shape
and never reaches the engine; what it forwards reaches the engine once, as UTF-8 JSON with no
key twice, the engine's model id, the reserved limit under exactly the endpoint's fields and
the usage option on streams. At the end there is one usage row per forwarded request.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fakes.engine import FakeEngine, running_engine
from hypothesis import HealthCheck, given, seed, settings

from .body_strategies import Case, cases
from .helpers import Gateway, running_gateway
from .wire import assert_error_shape

EXAMPLES = 2500
TIME_BUDGET = 120.0  # seconds; examples past it are skipped, so the test stays bounded
LIMIT_FIELDS = {"max_tokens", "max_completion_tokens", "n_predict", "max_output_tokens"}
WRITTEN = {
    "/v1/chat/completions": {"max_tokens", "max_completion_tokens"},
    "/v1/completions": {"max_tokens"},
    "/v1/messages": {"max_tokens"},
    "/v1/embeddings": set(),
}


@dataclass
class Live:
    gateway: Gateway
    engine: FakeEngine
    loop: asyncio.AbstractEventLoop
    started: float = 0.0
    forwarded: int = 0


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The fake engine and the gateway on their own event loop, in a thread, for the module."""
    ready: list[Live] = []
    up = threading.Event()
    stop: list[asyncio.Event] = []

    async def serve() -> None:
        stop.append(asyncio.Event())
        tmp = tmp_path_factory.mktemp("fuzz")
        async with (
            running_engine(models=["tiny", "big"]) as engine,
            running_gateway(tmp, engine.base_url) as gateway,
        ):
            ready.append(Live(gateway, engine, asyncio.get_running_loop()))
            up.set()
            await stop[0].wait()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert up.wait(30), "the gateway did not start"
    live = ready[0]
    try:
        yield live
    finally:
        live.loop.call_soon_threadsafe(stop[0].set)
        thread.join(30)


def _send(live: Live, case: Case) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", live.gateway.port, timeout=30)
    headers = {
        "Authorization": f"Bearer {live.gateway.accounts.user_key}",
        "Content-Type": "application/json",
    }
    if case.content_encoding:
        headers["Content-Encoding"] = case.content_encoding
    try:
        conn.request("POST", case.path, body=case.body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    assert len({k for k, _ in pairs}) == len(pairs), f"a key twice: {pairs}"
    return dict(pairs)


def _check_forwarded(case: Case, raw: bytes) -> None:
    sent = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    assert sent["model"] in ("tiny", "big")
    written = WRITTEN[case.path]
    limits = {k for k in sent if k in LIMIT_FIELDS}
    if written:
        assert limits == written, sent
        assert len({sent[k] for k in written}) == 1 and sent["max_tokens"] >= 1
    if sent.get("stream") is True and case.path in ("/v1/chat/completions", "/v1/completions"):
        assert sent["stream_options"]["include_usage"] is True


@seed(20261202)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_no_body_makes_the_gateway_fail_or_forward_what_it_did_not_check(
    live: Live, case: Case
) -> None:
    live.started = live.started or time.monotonic()
    if time.monotonic() - live.started > TIME_BUDGET:
        return
    before = len(live.engine.requests)
    status, body = _send(live, case)
    assert status < 500, (status, body)
    if status >= 400:
        assert_error_shape(json.loads(body))
        assert len(live.engine.requests) == before, "a refused body reached the engine"
        return
    assert status == 200, (status, body)
    assert len(live.engine.requests) == before + 1
    seen = live.engine.requests[before]
    assert seen.header("content-encoding") is None
    _check_forwarded(case, seen.raw_body)
    live.forwarded += 1


def test_every_forwarded_fuzz_request_has_its_usage_row(live: Live) -> None:
    """Runs after the fuzz test (same module, same gateway)."""
    forwarded = len(live.engine.requests)
    assert forwarded == live.forwarded and forwarded > EXAMPLES // 10
    rows = asyncio.run_coroutine_threadsafe(live.gateway.usage(forwarded), live.loop).result(60)
    assert len(rows) == forwarded
