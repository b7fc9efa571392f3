"""The Responses API through the gateway (fake engine that stores responses): plain and
streamed answers charged from their usage, and a stored response its creator's alone — another
user gets exactly what an unknown id gets, and the engine never sees their request."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine

from .helpers import Gateway, Secret, bearer
from .wire import assert_error_shape, parse_sse, raw_request

RESPONSES = "/v1/responses"


async def _create(
    session: aiohttp.ClientSession, gateway: Gateway, key: Secret, **extra: Any
) -> dict[str, Any]:
    body = {"model": "tiny", "input": "one two three", **extra}
    async with session.post(gateway.url(RESPONSES), json=body, headers=bearer(key)) as r:
        assert r.status == 200, await r.text()
        if extra.get("stream"):
            events = parse_sse(await r.read())
            return dict(events[-1].json()["response"])
        created: dict[str, Any] = await r.json()
        return created


async def _get(
    session: aiohttp.ClientSession, gateway: Gateway, key: Secret, path: str, method: str = "GET"
) -> tuple[int, Any]:
    async with session.request(method, gateway.url(path), headers=bearer(key)) as r:
        return r.status, await r.json()


async def test_plain_and_streamed_answers_are_charged_their_usage(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    alice = gateway.accounts.user_key
    plain = await _create(session, gateway, alice, max_output_tokens=3)
    streamed = await _create(session, gateway, alice, stream=True, max_output_tokens=5)
    assert plain["usage"]["output_tokens"] == 3 and streamed["usage"]["output_tokens"] == 5
    rows = await gateway.usage(2)
    assert [(r.prompt_tokens, r.completion_tokens, r.stream) for r in rows] == [
        (3, 3, False),
        (3, 5, True),
    ]
    assert {r.usage_source for r in rows} == {"engine"}


async def test_a_stream_cut_short_is_charged_what_was_streamed(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    body = {
        "model": "tiny",
        "input": "a b",
        "stream": True,
        "fake": {"fault": "cutoff", "after": 3},
    }
    async with session.post(
        gateway.url(RESPONSES), json=body, headers=bearer(gateway.accounts.user_key)
    ) as r:
        events = parse_sse(await r.read())
    assert events[-1].json()["error"]["code"] == "upstream_cut_off"
    (row,) = await gateway.usage(1)
    assert (row.completion_tokens, row.usage_source) == (3, "estimated")


async def test_stored_response_is_its_creators_alone(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    alice, rita = gateway.accounts.user_key, gateway.accounts.restricted_key
    for stream in (False, True):
        rid = (await _create(session, gateway, alice, stream=stream))["id"]
        for path in (f"{RESPONSES}/{rid}", f"{RESPONSES}/{rid}/input_items"):
            status, body = await _get(session, gateway, alice, path)
            assert status == 200, body
        seen = len(engine.requests)
        unknown = "resp-fake999"
        for suffix, method in (("", "GET"), ("", "DELETE"), ("/cancel", "POST"),
                               ("/input_items", "GET")):  # fmt: skip
            theirs = await _get(session, gateway, rita, f"{RESPONSES}/{rid}{suffix}", method)
            nobodys = await _get(session, gateway, rita, f"{RESPONSES}/{unknown}{suffix}", method)
            assert theirs[0] == nobodys[0] == 404
            assert theirs[1] == {
                "error": {
                    **nobodys[1]["error"],
                    "message": nobodys[1]["error"]["message"].replace(unknown, rid),
                }
            }
            assert assert_error_shape(theirs[1])["code"] == "response_not_found"
        assert len(engine.requests) == seen  # nothing of rita's reached the engine
        status, _ = await _get(session, gateway, alice, f"{RESPONSES}/{rid}", "DELETE")
        assert status == 200
        # Deleted: the id leads nowhere, for its creator too, without asking the engine.
        status, body = await _get(session, gateway, alice, f"{RESPONSES}/{rid}")
        assert (status, body["error"]["code"]) == (404, "response_not_found")
        assert len(engine.requests) == seen + 1


async def test_previous_response_id_must_be_the_callers_own(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    alice, rita = gateway.accounts.user_key, gateway.accounts.restricted_key
    rid = (await _create(session, gateway, alice))["id"]
    seen = len(engine.requests)
    answers = []
    for previous in (rid, "resp-fake999", "../slots", 7):
        body = {"model": "tiny", "input": "next", "previous_response_id": previous}
        async with session.post(gateway.url(RESPONSES), json=body, headers=bearer(rita)) as r:
            answers.append((r.status, assert_error_shape(await r.json())))
    assert [a[0] for a in answers] == [400, 400, 400, 400]
    theirs, nobodys = answers[0][1], answers[1][1]
    assert theirs["code"] == nobodys["code"] == "previous_response_not_found"
    assert theirs["message"].replace(rid, "X") == nobodys["message"].replace("resp-fake999", "X")
    assert len(engine.requests) == seen
    continued = await _create(session, gateway, alice, previous_response_id=rid)
    assert engine.requests[-1].body["previous_response_id"] == rid
    assert continued["id"] != rid


async def test_store_false_is_not_recorded_and_conversation_is_refused(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    alice = gateway.accounts.user_key
    rid = (await _create(session, gateway, alice, store=False))["id"]
    seen = len(engine.requests)
    status, body = await _get(session, gateway, alice, f"{RESPONSES}/{rid}")
    assert (status, body["error"]["code"]) == (404, "response_not_found")
    assert len(engine.requests) == seen  # an id never recorded never reaches the engine
    body = {"model": "tiny", "input": "x", "conversation": "conv_123"}
    async with session.post(gateway.url(RESPONSES), json=body, headers=bearer(alice)) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, "unsupported_parameter")


@pytest.mark.parametrize(
    "target",
    [
        "/v1/responses/..%2Fslots",
        "/v1/responses/%2e%2e",
        "/v1/responses/..",
        "/v1/responses/resp%5Fx",
        "/v1/responses/a/b",
        "/v1/responses/x/../../slots",
        "/v1/responses/x/cancel/..",
        "/v1/responses/" + "a" * 129,
    ],
)
async def test_response_paths_that_could_climb_out_never_reach_the_engine(
    gateway: Gateway, engine: FakeEngine, target: str
) -> None:
    auth = list(bearer(gateway.accounts.user_key).items())
    for method in ("GET", "DELETE", "POST"):
        r = await raw_request(gateway.port, method, target, auth)
        assert r.status in (404, 405), (method, r.status)
        assert_error_shape(r.json())
    assert engine.requests == []


async def test_websocket_attempt_gets_426_after_authentication(
    gateway: Gateway, engine: FakeEngine
) -> None:
    upgrade = [
        ("Connection", "Upgrade"),
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ]
    r = await raw_request(gateway.port, "GET", RESPONSES, upgrade)
    assert r.status == 401  # authenticated like any request
    auth = list(bearer(gateway.accounts.user_key).items())
    r = await asyncio.wait_for(raw_request(gateway.port, "GET", RESPONSES, [*auth, *upgrade]), 5)
    assert r.status == 426
    assert assert_error_shape(r.json())["code"] == "websocket_not_supported"
    r = await raw_request(gateway.port, "GET", RESPONSES, auth)
    assert r.status == 405
    assert engine.requests == []
