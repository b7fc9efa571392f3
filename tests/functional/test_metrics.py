"""/metrics: Prometheus text that agrees with the usage table, and who may read it."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine, start_engine
from prometheus_client.parser import text_string_to_metric_families

from .helpers import CHAT, EMBEDDINGS, Gateway, bearer, chat_body, running_gateway
from .wire import assert_error_shape

BAD_KEY = "sk-" + "A" * 43

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of the exposition, by (sample name, label set)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def series(samples: Samples, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """The non-zero samples called ``name``, keyed by the values of ``labels``, in order."""
    out = {}
    for (sample, label_set), value in samples.items():
        if sample == name and value:
            by_name = dict(label_set)
            out[tuple(by_name[label] for label in labels)] = value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str) -> float:
    return sum(v for (sample, _), v in samples.items() if sample == name)


async def scrape(
    session: aiohttp.ClientSession, gw: Gateway, headers: Mapping[str, str] | None = None
) -> Samples:
    async with session.get(gw.url("/metrics"), headers=headers or {}) as r:
        text = await r.text()
        assert r.status == 200, text
        assert r.headers["Content-Type"].startswith("text/plain"), r.headers
    return parse(text)


async def _post(
    session: aiohttp.ClientSession, gw: Gateway, key: str, path: str, body: dict[str, Any]
) -> int:
    async with session.post(gw.url(path), headers=bearer(key), json=body) as r:
        await r.read()
        return r.status


async def test_counters_match_the_usage_table(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    acc = gateway.accounts
    sent = [
        (acc.user_key, CHAT, chat_body()),
        (acc.user_key, CHAT, chat_body(stream=True)),
        (acc.user_key, CHAT, chat_body("big", max_tokens=2)),
        (acc.user_key, EMBEDDINGS, {"model": "tiny", "input": ["x y", "z"]}),
        (acc.admin_key, CHAT, chat_body("big", stream=True, max_tokens=3)),
        (acc.restricted_key, CHAT, chat_body(max_tokens=1)),
        (acc.user_key, CHAT, chat_body(fake={"fault": "500"})),  # the engine fails: 502
        (acc.user_key, CHAT, chat_body(stream=True, fake={"fault": "error_json"})),  # relayed
    ]
    statuses = [await _post(session, gateway, key, path, body) for key, path, body in sent]
    assert statuses == [200] * 6 + [502, 400]
    # Refused by the gateway itself: no usage row, so not in the request counters either.
    assert await _post(session, gateway, acc.restricted_key, CHAT, chat_body("big")) == 403
    rows = await gateway.usage(len(sent))
    assert len(rows) == len(sent)
    async with gateway.admin() as admin:
        names = {u.id: u.name for u in await admin.list_users()}

    samples = await scrape(session, gateway, bearer(acc.admin_key))

    want_requests: Counter[tuple[str, ...]] = Counter()
    want_tokens: Counter[tuple[str, ...]] = Counter()
    for row in rows:
        assert row.user_id is not None and row.model is not None and row.upstream is not None
        user = names[row.user_id]
        want_requests[(user, row.model, row.upstream, str(row.status))] += 1
        want_tokens[(user, row.model, "prompt")] += row.prompt_tokens
        want_tokens[(user, row.model, "completion")] += row.completion_tokens
    requests = "authproxy_requests_total"
    assert series(samples, requests, "user", "model", "upstream", "status") == want_requests
    tokens = "authproxy_tokens_total"
    assert series(samples, tokens, "user", "model", "kind") == +want_tokens
    assert {k[3] for k in want_requests} == {"200", "400", "502"}  # the case is not trivial

    per_model = Counter((row.model,) for row in rows)
    durations = series(samples, "authproxy_request_duration_seconds_count", "model")
    assert durations == per_model
    streamed_ok = Counter((row.model,) for row in rows if row.stream and row.status < 400)
    ttft = series(samples, "authproxy_time_to_first_token_seconds_count", "model")
    assert ttft == streamed_ok
    total_seconds = sum(series(samples, "authproxy_request_duration_seconds_sum", "model").values())
    assert total_seconds == pytest.approx(sum(r.duration_ms for r in rows) / 1000)

    assert value(samples, "authproxy_upstream_up", upstream="local") == 1
    assert value(samples, "authproxy_upstream_outstanding_requests", upstream="local") == 0
    assert "/metrics" not in {q.path for q in engine.requests}  # ours, never the engine's


async def test_open_streams_during_a_slow_stream(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    admin = bearer(gateway.accounts.admin_key)
    assert value(await scrape(session, gateway, admin), "authproxy_open_streams") == 0
    body = chat_body(stream=True, fake={"token_delay": 0.2})  # 8 tokens, 1.4 s in all
    headers = bearer(gateway.accounts.user_key)
    async with session.post(gateway.url(CHAT), headers=headers, json=body) as r:
        assert r.status == 200
        await r.content.readany()  # the stream is running
        during = await scrape(session, gateway, admin)
        await r.read()
    assert value(during, "authproxy_open_streams") == 1
    assert value(during, "authproxy_upstream_outstanding_requests", upstream="local") == 1
    await gateway.usage(1)  # the handler has finished
    after = await scrape(session, gateway, admin)
    assert value(after, "authproxy_open_streams") == 0
    assert value(after, "authproxy_upstream_outstanding_requests", upstream="local") == 0


async def _get(
    session: aiohttp.ClientSession, gw: Gateway, headers: Mapping[str, str]
) -> tuple[int, dict[str, str]]:
    async with session.get(gw.url("/metrics"), headers=headers) as r:
        if r.status >= 400:
            return r.status, assert_error_shape(await r.json())
        assert b"authproxy_open_streams" in await r.read()
        return r.status, {}


@pytest.mark.parametrize(
    ("who", "extra", "status", "code"),
    [
        ("admin", {}, 200, None),
        ("admin", {"X-Forwarded-For": "203.0.113.5"}, 200, None),  # the key is what counts
        ("user", {}, 403, "admin_only"),
        ("restricted", {}, 403, "admin_only"),
        ("bad", {}, 401, "invalid_api_key"),  # a wrong key is refused even from loopback
        (None, {}, 200, None),  # a direct local scrape
        (None, {"X-Forwarded-For": "203.0.113.5"}, 401, "missing_api_key"),  # relayed (Caddy)
        (None, {"X-Forwarded-For": "127.0.0.1"}, 401, "missing_api_key"),
        (None, {"Forwarded": "for=203.0.113.5;proto=https"}, 401, "missing_api_key"),
        (None, {"X-Real-IP": "203.0.113.5"}, 401, "missing_api_key"),
        # DNS rebinding: a page in a browser on this machine, its own name resolving to 127.0.0.1
        (None, {"Host": "evil.example"}, 401, "missing_api_key"),
        (None, {"Host": "evil.example:8080"}, 401, "missing_api_key"),
        (None, {"Host": "127.0.0.1.evil.example"}, 401, "missing_api_key"),
        (None, {"Host": "localhost.evil.example:8080"}, 401, "missing_api_key"),
        (None, {"Host": "[::1].evil.example"}, 401, "missing_api_key"),
        (None, {"Host": "localhost:8080@evil.example"}, 401, "missing_api_key"),
        ("admin", {"Host": "evil.example"}, 200, None),  # the key is what counts
        (None, {"Host": "localhost:9090"}, 200, None),  # what Prometheus sends
        (None, {"Host": "LOCALHOST"}, 200, None),
        (None, {"Host": "127.0.0.1"}, 200, None),
        (None, {"Host": "127.0.0.2:9090"}, 200, None),
        (None, {"Host": "[::1]:9090"}, 200, None),
    ],
)
async def test_who_may_read_the_metrics(
    gateway: Gateway,
    session: aiohttp.ClientSession,
    who: str | None,
    extra: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    keys = {
        "admin": gateway.accounts.admin_key,
        "user": gateway.accounts.user_key,
        "restricted": gateway.accounts.restricted_key,
        "bad": BAD_KEY,
    }
    headers = {**(bearer(keys[who]) if who else {}), **extra}
    got, err = await _get(session, gateway, headers)
    assert (got, err.get("code")) == (status, code)
    if status == 403:
        assert err["type"] == "permission_error"


async def test_failed_authentications_are_counted_by_reason(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    name = "authproxy_auth_failures_total"
    before = await scrape(session, gateway)
    for headers in (bearer(BAD_KEY), bearer(BAD_KEY), {"Authorization": "Basic eA=="}, {}):
        async with session.get(gateway.url("/v1/models"), headers=headers) as r:
            assert r.status == 401
    # Neither a good key nor a direct local scrape without a key counts as a failure.
    async with session.get(gateway.url("/v1/models"), headers=bearer(gateway.accounts.user_key)):
        pass
    after = await scrape(session, gateway)
    delta = {
        reason: value(after, name, reason=reason) - value(before, name, reason=reason)
        for reason in ("invalid_api_key", "missing_api_key")
    }
    assert delta == {"invalid_api_key": 3, "missing_api_key": 1}


async def test_scrapes_do_not_disturb_requests(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    """Scrapes interleaved with traffic: the counters only ever grow, and end right."""
    key = gateway.accounts.user_key

    async def traffic() -> None:
        for _ in range(20):
            assert await _post(session, gateway, key, CHAT, chat_body()) == 200

    async def scrapes() -> list[float]:
        seen = []
        for _ in range(10):
            samples = await scrape(session, gateway)
            seen.append(total(samples, "authproxy_requests_total"))
        return seen

    _, seen = await asyncio.gather(traffic(), scrapes())
    assert seen == sorted(seen)
    await gateway.usage(20)
    final = await scrape(session, gateway)
    labels = ("user", "model", "upstream", "status")
    assert series(final, "authproxy_requests_total", *labels) == {
        ("alice", "tiny", "local", "200"): 20
    }


async def test_quota_rejections_are_counted_by_user_and_reason(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    roles = {
        "admin": {"models": ["*"]},
        "user": {"models": ["*"], "requests_per_minute": 2},
        "restricted": {"models": ["tiny"], "tokens_per_day": 1},
    }
    async with running_gateway(tmp_path, engine.base_url, roles=roles) as gw:
        acc = gw.accounts
        alice = [await _post(session, gw, acc.user_key, CHAT, chat_body()) for _ in range(3)]
        assert alice == [200, 200, 429]
        assert await _post(session, gw, acc.restricted_key, CHAT, chat_body()) == 429
        await gw.usage(2)
        samples = await scrape(session, gw)
    name = "authproxy_quota_rejections_total"
    assert series(samples, name, "user", "reason") == {
        ("alice", "rpm"): 1,
        ("rita", "tokens_day"): 1,
    }
    # Refused before the engine: no usage row, so not among the forwarded requests.
    assert total(samples, "authproxy_requests_total") == 2


async def test_upstream_up_follows_the_engine(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    engine = await start_engine(models=["tiny"])
    closed = False
    try:
        async with running_gateway(tmp_path, engine.base_url) as gw:
            up = "authproxy_upstream_up"
            assert value(await scrape(session, gw), up, upstream="local") == 1
            await engine.close()
            closed = True
            # A real request that cannot reach it takes it out of rotation at once.
            assert await _post(session, gw, gw.accounts.user_key, CHAT, chat_body()) >= 500
            assert value(await scrape(session, gw), up, upstream="local") == 0
    finally:
        if not closed:
            await engine.close()
