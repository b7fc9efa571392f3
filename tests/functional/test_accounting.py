"""Accounting: one usage row per forwarded request, with the engine's own token counts;
requests the gateway refuses itself write none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from fakes.engine import FakeEngine

from .helpers import (
    CHAT,
    COMPLETIONS,
    EMBEDDINGS,
    MESSAGES,
    MODELS,
    Gateway,
    bearer,
    chat_body,
    running_gateway,
)

# (endpoint, body, prompt tokens, completion tokens) by the fake engine's deterministic counts
CASES: list[tuple[str, dict[str, Any], int, int]] = [
    (CHAT, chat_body(), 5, 8),
    (CHAT, chat_body("big", max_tokens=2), 5, 2),
    (COMPLETIONS, {"model": "tiny", "prompt": "a b c", "max_tokens": 3}, 3, 3),
    (EMBEDDINGS, {"model": "tiny", "input": ["x y", "z"]}, 3, 0),
    (
        MESSAGES,
        {
            "model": "tiny",
            "max_tokens": 4,
            "system": "sys word",
            "messages": [{"role": "user", "content": "hello there world"}],
        },
        5,
        4,
    ),
]


async def test_one_row_per_forwarded_request(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    headers = bearer(gateway.accounts.user_key)
    request_ids = []
    for path, body, _, _ in CASES:
        async with session.post(gateway.url(path), headers=headers, json=body) as r:
            assert r.status == 200, await r.text()
            request_ids.append(r.headers["X-Request-Id"])
    rows = await gateway.usage(len(CASES))
    assert len(rows) == len(CASES)
    assert len(engine.requests) == len(CASES)
    for row, rid, (path, body, prompt, completion) in zip(rows, request_ids, CASES, strict=True):
        assert row.request_id == rid
        assert (row.user_id, row.key_id) == (
            gateway.accounts.user_id,
            gateway.accounts.user_key_id,
        )
        assert (row.model, row.upstream, row.endpoint) == (body["model"], "local", path)
        assert (row.status, row.stream, row.usage_source) == (200, False, "engine")
        assert (row.prompt_tokens, row.completion_tokens) == (prompt, completion), path
        assert row.ttft_ms is not None
        assert 0 < row.ttft_ms <= row.duration_ms < 10_000
    # The engine saw the same request id the client got back.
    assert [q.header("x-request-id") for q in engine.requests] == request_ids


async def test_client_request_id_is_kept_end_to_end(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    headers = {**bearer(gateway.accounts.user_key), "X-Request-Id": "client-chosen.id:42"}
    async with session.post(gateway.url(CHAT), headers=headers, json=chat_body()) as r:
        assert r.headers["X-Request-Id"] == "client-chosen.id:42"
    assert engine.requests[0].header("x-request-id") == "client-chosen.id:42"
    assert (await gateway.usage(1))[0].request_id == "client-chosen.id:42"
    bad = {**bearer(gateway.accounts.user_key), "X-Request-Id": "no spaces\tor tabs"}
    async with session.post(gateway.url(CHAT), headers=bad, json=chat_body()) as r:
        assert r.headers["X-Request-Id"] != "no spaces\tor tabs"


async def test_forwarded_failures_are_recorded_with_their_status(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    headers = bearer(gateway.accounts.user_key)
    for fault, status in (("error_json", 400), ("500", 502), ("redirect", 502)):
        body = chat_body(fake={"fault": fault})
        async with session.post(gateway.url(CHAT), headers=headers, json=body) as r:
            assert r.status == status
    rows = await gateway.usage(3)
    assert [(r.status, r.prompt_tokens, r.completion_tokens) for r in rows] == [
        (400, 0, 0),
        (502, 0, 0),
        (502, 0, 0),
    ]


async def test_refused_requests_write_no_usage_row(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url, max_request_mb=0.01) as gw:
        user = bearer(gw.accounts.user_key)
        refused: list[tuple[str, dict[str, str], Any, int]] = [
            (CHAT, user, b"not json", 400),
            (CHAT, user, {"messages": []}, 400),
            (CHAT, {}, chat_body(), 401),
            (CHAT, bearer("sk-" + "B" * 43), chat_body(), 401),
            (CHAT, bearer(gw.accounts.restricted_key), chat_body("big"), 403),
            (CHAT, user, chat_body("nope"), 404),
            ("/v1/nope", user, chat_body(), 404),
            (CHAT, user, chat_body(messages=[{"role": "user", "content": "w " * 8000}]), 413),
        ]
        for path, headers, body, status in refused:
            kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
            async with session.post(gw.url(path), headers=headers, **kwargs) as r:
                assert r.status == status, (path, body if status != 413 else "big")
        async with session.get(gw.url(MODELS), headers=user) as r:
            assert r.status == 200  # answered by the gateway itself: not a usage row either
        # A last, forwarded request: the writer keeps order, so once its row is in, any row
        # for the refused requests would be in too.
        async with session.post(gw.url(CHAT), headers=user, json=chat_body()) as r:
            sentinel = r.headers["X-Request-Id"]
        rows = await gw.usage(1)
    assert [r.request_id for r in rows] == [sentinel]
    assert len(engine.requests) == 1
