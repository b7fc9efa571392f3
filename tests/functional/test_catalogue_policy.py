"""Every route of the endpoint catalogue, by its row's policy: the caller it is for gets the
engine's answer and is charged what the row says; everyone else is refused and the engine sees
nothing. Parametrized over the catalogue itself, so a new row is tested as soon as it exists.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine

from authproxy.proxy.endpoints import SEGMENTS
from authproxy.store.records import User

from .catalogue_samples import SAMPLES, Route, Sample, multipart, routes, sample_for
from .helpers import Gateway, Secret, bearer
from .wire import assert_error_shape

ROUTES = list(routes())
PARAMS = {"upstream": "local", "slot_id": "0"}


def test_every_route_has_a_sample() -> None:
    named = {f"{r.method} {r.endpoint.path}" for r in ROUTES}
    assert named == set(SAMPLES), "add a sample to catalogue_samples.py for each new row"


def test_segments_are_strict() -> None:
    for name, pattern in SEGMENTS.items():
        for bad in ("..", ".", "a/b", "a%2Fb", "%2e%2e", "", "a b", "a?b"):
            assert not re.fullmatch(pattern, bad), (name, bad)


@dataclass
class Sent:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)


async def _send(
    session: aiohttp.ClientSession,
    gateway: Gateway,
    route: Route,
    sample: Sample,
    headers: dict[str, str],
    *,
    path: str,
    model: str = "tiny",
) -> Sent:
    kwargs: dict[str, Any] = {"headers": {**headers, **sample.headers}}
    if sample.form:
        body, content_type = multipart(model)
        kwargs["data"] = body
        kwargs["headers"]["Content-Type"] = content_type
    elif sample.body is not None:
        body_json = dict(sample.body)
        if "model" in body_json and body_json["model"] == "tiny":
            body_json["model"] = model
        kwargs["json"] = body_json
    url = gateway.url(path + sample.query)
    async with session.request(route.method, url, **kwargs) as resp:
        return Sent(resp.status, await resp.read(), resp.content_type)


async def _path(
    session: aiohttp.ClientSession, gateway: Gateway, route: Route, key: Secret
) -> tuple[str, str | None]:
    """The route's path filled in (a stored response of `key`'s user made for it), and the
    path the engine should get."""
    params = dict(PARAMS)
    if "{response_id}" in route.path:
        body = {"model": "tiny", "input": "x"}
        async with session.post(gateway.url("/v1/responses"), json=body, headers=bearer(key)) as r:
            assert r.status == 200
            params["response_id"] = (await r.json())["id"]
        await gateway.usage(1)  # its row is written: the rows counted next are the route's
    path = route.path
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    engine_path = route.endpoint.path
    for name, value in params.items():
        engine_path = engine_path.replace("{" + name + "}", value)
    return path, engine_path


def _caller(gateway: Gateway, route: Route) -> Secret:
    admin = route.endpoint.access != "user"
    return gateway.accounts.admin_key if admin else gateway.accounts.user_key


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
async def test_allowed_and_charged(
    route: Route, gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    sample = sample_for(route)
    key = _caller(gateway, route)
    path, engine_path = await _path(session, gateway, route, key)
    before = len(engine.requests)
    rows_before = len(await gateway.usage(0))
    sent = await _send(session, gateway, route, sample, bearer(key), path=path)
    if route.endpoint.access == "nobody":  # nobody is let through, not even an admin
        assert sent.status == 403, sent.body
        assert assert_error_shape(sent.json())["code"] == "endpoint_closed"
        assert len(engine.requests) == before
        return
    assert sent.status == sample.status, sent.body
    if route.endpoint.answer != "engine":  # the gateway's own answer: nothing forwarded
        assert len(engine.requests) == before
        assert len(await gateway.usage(0)) == rows_before
        return
    assert sent.content_type == sample.content_type
    seen = engine.requests[before:]
    assert [(q.method, q.path) for q in seen] == [(route.method, engine_path)]
    query = "action=save" if sample.query else ""  # only the parameters the row names
    assert seen[0].query_string == query
    assert seen[0].header("authorization") is None
    rows = await gateway.usage(rows_before + 1)
    (row,) = rows[rows_before:]
    user = "alice" if route.endpoint.access == "user" else "root"
    uid = {u.name: u.id for u in await _users(gateway)}[user]
    assert (row.endpoint, row.user_id, row.status) == (route.endpoint.path, uid, 200)
    if sample.charged is None:  # the engine reports nothing: the estimate is charged
        assert row.usage_source == "estimated" and row.prompt_tokens > 0
    else:
        assert (row.prompt_tokens, row.completion_tokens) == sample.charged
        assert row.usage_source == ("engine" if sample.charged != (0, 0) else "none")
    assert route.endpoint.charged == (sample.charged != (0, 0))


async def _users(gateway: Gateway) -> list[User]:
    async with gateway.admin() as admin:
        return await admin.list_users()


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
async def test_refused(
    route: Route, gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    sample = sample_for(route)
    owner = _caller(gateway, route)
    path, _ = await _path(session, gateway, route, owner)
    before = len(engine.requests)
    # Without a credential, every route is a 401.
    sent = await _send(session, gateway, route, sample, {}, path=path)
    assert sent.status == 401
    assert assert_error_shape(sent.json())["type"] == "authentication_error"
    endpoint = route.endpoint
    if endpoint.access in ("admin", "nobody"):  # a user's key, however allowed its model
        sent = await _send(session, gateway, route, sample, bearer(gateway.accounts.user_key),
                           path=path)  # fmt: skip
        code = "admin_only" if endpoint.access == "admin" else "endpoint_closed"
        assert (sent.status, assert_error_shape(sent.json())["code"]) == (403, code)
    elif endpoint.model == "owner":  # someone else's stored response: as if it did not exist
        rita = bearer(gateway.accounts.restricted_key)
        sent = await _send(session, gateway, route, sample, rita, path=path)
        assert (sent.status, assert_error_shape(sent.json())["code"]) == (
            404,
            "response_not_found",
        )
    elif endpoint.model in ("json", "form"):  # a model the caller's role may not use
        rita = bearer(gateway.accounts.restricted_key)
        sent = await _send(session, gateway, route, sample, rita, path=path, model="big")
        assert (sent.status, assert_error_shape(sent.json())["code"]) == (
            403,
            "model_not_allowed",
        )
    assert len(engine.requests) == before
