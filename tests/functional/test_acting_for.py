"""Open WebUI in front: a service key acting for the people it names, each authorized, limited
and charged as themselves; every other credential's such headers not believed; none of them
ever reaching the engine."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.engine import FakeEngine

from authproxy import appkeys as K
from authproxy.admin.service import AdminError
from authproxy.store.records import AuditEntry

from .helpers import CHAT, MODELS, Gateway, Secret, bearer, chat_body, run_cli, running_gateway
from .test_access_log import gateway_logs
from .wire import assert_error_shape


def person(email: str, *, name: str = "Someone", role: str = "user") -> dict[str, str]:
    """The headers Open WebUI adds with ENABLE_FORWARD_USER_INFO_HEADERS=true."""
    return {
        "X-OpenWebUI-User-Name": name,
        "X-OpenWebUI-User-Id": "2f9c1c7e-5f0b-4d7e-9a53-0c1d2e3f4a5b",
        "X-OpenWebUI-User-Email": email,
        "X-OpenWebUI-User-Role": role,
        "X-OpenWebUI-Chat-Id": "c0ffee00-0000-4000-8000-000000000001",
    }


@dataclass
class Front:
    """A gateway with a service user `webui`, its service key, and two people."""

    gw: Gateway
    key: Secret
    key_id: int
    service_id: int
    ann: int
    bob: int


@contextlib.asynccontextmanager
async def front(tmp: Path, engine: FakeEngine, **overrides: Any) -> AsyncIterator[Front]:
    async with running_gateway(tmp, engine.base_url, **overrides) as gw:
        async with gw.admin() as admin:
            service = await admin.add_user("webui")
            new = await admin.create_key("webui", label="open webui", acts_for_users=True)
            ann = await admin.add_user("ann", email="ann@example.com")
            bob = await admin.add_user("bob", email="Bob@Example.com")
        await gw.app[K.WATCH].check()
        yield Front(gw, Secret(new.secret), new.record.id, service.id, ann.id, bob.id)


async def _chat(
    session: aiohttp.ClientSession, f: Front, headers: dict[str, str], key: str | None = None
) -> tuple[int, dict[str, Any]]:
    async with session.post(
        f.gw.url(CHAT), json=chat_body(), headers={**bearer(key or f.key), **headers}
    ) as r:
        return r.status, await r.json()


async def _audit(gw: Gateway, wanted: tuple[str, str, str]) -> list[AuditEntry]:
    """The audit entries once one has (actor, action, target) `wanted` (batched writes)."""
    for _ in range(100):
        async with gw.admin() as admin:
            entries = await admin.audit_log(since=0)
        if any((e.actor, e.action, e.target) == wanted for e in entries):
            return entries
        await asyncio.sleep(0.05)
    raise AssertionError(f"{wanted} never audited")


async def test_a_service_key_acting_for_two_people_charges_each(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine) as f:
        assert (await _chat(session, f, person("ann@example.com")))[0] == 200
        assert (await _chat(session, f, person("BOB@example.COM")))[0] == 200  # any case
        assert (await _chat(session, f, person("bob@example.com")))[0] == 200
        rows = await f.gw.usage(3)
        assert [r.user_id for r in rows] == [f.ann, f.bob, f.bob]
        assert {r.key_id for r in rows} == {f.key_id}  # the usage row names the key used
        quotas = f.gw.app[K.QUOTAS]
        charged = {
            uid: sum(r.prompt_tokens + r.completion_tokens for r in rows if r.user_id == uid)
            for uid in (f.ann, f.bob)
        }
        assert (await quotas.used(f.ann))[0] == charged[f.ann] > 0
        assert (await quotas.used(f.bob))[0] == charged[f.bob] > charged[f.ann]
        assert await quotas.used(f.service_id) == (0, 0)
        async with f.gw.admin() as admin:
            usage = {u.user.name: u.requests for u in await admin.usage_against_quotas(since=0)}
        assert (usage["ann"], usage["bob"], usage["webui"]) == (1, 2, 0)


async def test_the_access_log_names_the_person_and_the_service(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine) as f:
        with gateway_logs() as logs:
            assert (await _chat(session, f, person("ann@example.com")))[0] == 200
            line = await logs.line(CHAT)
    assert (line["user"], line["service"], line["status"]) == ("ann", "webui", 200)


async def test_the_persons_quotas_apply_not_the_services(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine) as f:
        async with f.gw.admin() as admin:
            await admin.set_quota("ann", tokens_per_day=5)  # less than one request reserves
            await admin.set_quota("webui", tokens_per_day=5, requests_per_minute=1)
        await f.gw.app[K.WATCH].check()
        status, body = await _chat(session, f, person("ann@example.com"))
        assert status == 429 and assert_error_shape(body)["code"] == "insufficient_quota"
        for _ in range(3):  # the service's own limits (1 a minute, 5 tokens) do not apply
            assert (await _chat(session, f, person("bob@example.com")))[0] == 200
        status, _ = await _chat(session, f, {})  # the service on its own account: its own
        assert status == 429
        rows = await f.gw.usage(3)
        assert [r.user_id for r in rows] == [f.bob] * 3


async def test_an_ordinary_key_naming_someone_else_is_not_believed(
    gateway: Gateway, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with gateway.admin() as admin:
        ann = await admin.add_user("ann", email="ann@example.com")
    headers = {**bearer(gateway.accounts.user_key), **person("ann@example.com")}
    async with session.post(gateway.url(CHAT), json=chat_body(), headers=headers) as r:
        assert r.status == 200
    async with session.get(gateway.url(MODELS), headers=headers) as r:
        assert r.status == 200
    (row,) = await gateway.usage(1)
    assert (row.user_id, row.key_id) == (gateway.accounts.user_id, gateway.accounts.user_key_id)
    assert await gateway.app[K.QUOTAS].used(ann.id) == (0, 0)
    forwarded = {name.lower() for name, _ in engine.requests[0].headers}
    assert not {n for n in forwarded if n.startswith("x-openwebui")}


async def test_other_credentials_naming_someone_are_refused_when_configured(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine, acts_for_users={"foreign_headers": "refuse"}) as f:
        alice = f.gw.accounts.user_key
        status, body = await _chat(session, f, person("ann@example.com"), key=alice)
        assert status == 403 and assert_error_shape(body)["code"] == "foreign_user_headers"
        assert (await _chat(session, f, {}, key=alice))[0] == 200  # without them: served
        assert (await _chat(session, f, person("ann@example.com")))[0] == 200  # service key
        entries = await _audit(f.gw, ("alice", "auth.refused", "ann@example.com"))
    assert any(e.detail == "reason=foreign_user_headers" for e in entries)
    assert len(engine.requests) == 2


async def test_a_disabled_person_is_refused_even_through_the_service_key(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine) as f:
        async with f.gw.admin() as admin:
            await admin.set_disabled("ann", True)
        await f.gw.app[K.WATCH].check()
        for _ in range(3):
            status, body = await _chat(session, f, person("ann@example.com"))
            assert status == 403 and assert_error_shape(body)["code"] == "person_disabled"
        assert (await _chat(session, f, person("bob@example.com")))[0] == 200
        entries = await _audit(f.gw, ("service:webui", "auth.refused", "ann"))
        refusals = [e for e in entries if e.action == "auth.refused"]
        assert len(refusals) == 1  # once a minute, however often the front end retries
        assert refusals[0].detail == "reason=person_disabled"
        assert refusals[0].source == "127.0.0.1"
    assert len(engine.requests) == 1


async def test_an_unknown_person_is_created_with_the_default_role(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine, default_role="restricted") as f:
        headers = person("Carol@Example.com", name="Carol%20M%C3%BCller", role="admin")
        calls = [_chat(session, f, headers) for _ in range(4)]  # the first ones, all at once
        assert [status for status, _ in await asyncio.gather(*calls)] == [200] * 4
        async with f.gw.admin() as admin:
            carol = next(u for u in await admin.list_users() if u.name == "carol@example.com")
        assert (carol.role, carol.email) == ("restricted", "carol@example.com")
        # The role header granted nothing: a restricted user may not use `big`.
        async with session.post(
            f.gw.url(CHAT), json=chat_body("big"), headers={**bearer(f.key), **headers}
        ) as r:
            assert r.status == 403
        entries = await _audit(f.gw, ("service:webui", "user.add", "carol@example.com"))
        (made,) = [e for e in entries if e.action == "user.add" and e.actor == "service:webui"]
        assert made.detail == (
            f"role=restricted key_id={f.key_id} front_end_name='Carol Müller'"
            " front_end_id='2f9c1c7e-5f0b-4d7e-9a53-0c1d2e3f4a5b'"
        )
        rows = await f.gw.usage(4)
        assert {r.user_id for r in rows} == {carol.id}


async def test_an_unknown_person_is_refused_when_configured(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine, acts_for_users={"unknown_people": "reject"}) as f:
        status, body = await _chat(session, f, person("carol@example.com"))
        assert status == 403 and assert_error_shape(body)["code"] == "unknown_person"
        assert (await _chat(session, f, person("ann@example.com")))[0] == 200
        async with f.gw.admin() as admin:
            assert "carol@example.com" not in {u.name for u in await admin.list_users()}
        await _audit(f.gw, ("service:webui", "auth.refused", "carol@example.com"))


async def test_no_forwarded_user_header_ever_reaches_the_engine(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine) as f:
        headers = {**person("ann@example.com"), "X-OpenWebUI-Message-Id": "m1"}
        assert (await _chat(session, f, headers))[0] == 200
        body = {**chat_body(), "stream": True}
        async with session.post(
            f.gw.url(CHAT), json=body, headers={**bearer(f.key), **headers}
        ) as r:
            assert r.status == 200
            await r.read()
    assert len(engine.requests) == 2
    for request in engine.requests:
        names = {name.lower() for name, _ in request.headers}
        assert not [n for n in names if "openwebui" in n], names


async def test_an_admin_is_served_as_the_default_role_through_a_service_key(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine, default_role="restricted") as f:
        async with f.gw.admin() as admin:
            boss = await admin.add_user("boss", role="admin", email="boss@example.com")
        await f.gw.app[K.WATCH].check()
        headers = {**bearer(f.key), **person("boss@example.com", role="admin")}
        async with session.get(f.gw.url(MODELS), headers=headers) as r:
            assert [m["id"] for m in (await r.json())["data"]] == ["tiny"]
        async with session.get(f.gw.url("/metrics"), headers=headers) as r:
            assert r.status == 403  # an admin path: closed to anything through a service key
        assert (await _chat(session, f, person("boss@example.com")))[0] == 200
        (row,) = await f.gw.usage(1)
        assert (row.user_id, row.key_id) == (boss.id, f.key_id)


async def test_a_service_keys_user_may_not_be_an_admin(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine) as f:
        async with f.gw.admin() as admin:
            with pytest.raises(AdminError, match="may not be one"):
                await admin.create_key("root", acts_for_users=True)
            await admin.set_role("webui", "admin")  # promoted after the key was made
        await f.gw.app[K.WATCH].check()
        for headers in ({}, person("ann@example.com")):
            status, body = await _chat(session, f, headers)
            assert status == 403 and assert_error_shape(body)["code"] == "service_key_admin"
    assert engine.requests == []


async def test_without_the_headers_a_service_key_is_its_users_own(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine) as f:
        async with session.get(f.gw.url(MODELS), headers=bearer(f.key)) as r:
            assert r.status == 200  # Open WebUI reads the model list on its own account
        assert (await _chat(session, f, {}))[0] == 200
        (row,) = await f.gw.usage(1)
        assert (row.user_id, row.key_id) == (f.service_id, f.key_id)


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({"X-OpenWebUI-User-Email": "not an address"}, "invalid_person"),
        ({"X-OpenWebUI-User-Email": "ann@example.com, bob@example.com"}, "invalid_person"),
        ({"X-OpenWebUI-User-Name": "Ann", "X-OpenWebUI-User-Id": "1"}, "invalid_person"),
        ({"X-OpenWebUI-User-Jwt": "eyJhbGciOiJIUzI1NiJ9.e30.x"}, "unsupported_person_header"),
    ],
)
async def test_a_person_that_cannot_be_read_is_a_400(
    tmp_path: Path,
    engine: FakeEngine,
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    code: str,
) -> None:
    async with front(tmp_path, engine) as f:
        status, body = await _chat(session, f, headers)
        assert status == 400 and assert_error_shape(body)["code"] == code
    assert engine.requests == []


async def test_an_address_given_twice_or_shared_or_taken_is_refused(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with front(tmp_path, engine) as f:
        twice = [
            *bearer(f.key).items(),
            ("X-OpenWebUI-User-Email", "ann@example.com"),
            ("X-OpenWebUI-User-Email", "bob@example.com"),
        ]
        async with session.post(f.gw.url(CHAT), json=chat_body(), headers=twice) as r:
            assert r.status == 400
            assert assert_error_shape(await r.json())["code"] == "ambiguous_person"
        async with f.gw.admin() as admin:
            await admin.add_user("ann2", email="ANN@example.com")  # made by hand, same address
            await admin.add_user("dave@example.com")  # a name that is an address, but no email
        await f.gw.app[K.WATCH].check()
        status, body = await _chat(session, f, person("ann@example.com"))
        assert status == 403 and assert_error_shape(body)["code"] == "ambiguous_person"
        status, body = await _chat(session, f, person("dave@example.com"))
        assert status == 403 and assert_error_shape(body)["code"] == "person_name_taken"
    assert engine.requests == []


async def test_the_cli_makes_and_lists_service_keys(
    tmp_path: Path, engine: FakeEngine, session: aiohttp.ClientSession
) -> None:
    async with running_gateway(tmp_path, engine.base_url) as gw:
        config = str(gw.config_path)
        await run_cli("--config", config, "users", "add", "webui")
        made = await run_cli("--config", config, "keys", "create", "webui", "--acts-for-users")
        assert made.returncode == 0, made.stderr
        key = Secret(made.stdout.strip())
        refused = await run_cli("--config", config, "keys", "create", "root", "--acts-for-users")
        assert refused.returncode == 1
        assert refused.stderr.startswith("authproxy: 'root' is an admin")
        assert refused.stderr.count("\n") == 1
        listed = (await run_cli("--config", config, "keys", "list", "webui")).stdout.splitlines()
        assert listed[0].split()[-4:] == ["STATUS", "ACTS", "FOR", "USERS"]
        assert listed[1].split()[-2:] == ["active", "yes"]
        plain = (await run_cli("--config", config, "keys", "list", "alice")).stdout.splitlines()
        assert plain[1].split()[-1] == "active"
        headers = {**bearer(key), **person("erin@example.com")}
        await gw.app[K.WATCH].check()
        async with session.post(gw.url(CHAT), json=chat_body(), headers=headers) as r:
            assert r.status == 200
        audit = (await run_cli("--config", config, "audit")).stdout
    assert "service:webui" in audit and "erin@example.com" in audit
    assert "acts_for_users" in audit  # the key's creation says what kind of key it is
