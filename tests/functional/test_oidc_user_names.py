"""The name a first OIDC sign-in gets when the provider sends no `preferred_username` (Google
sends `sub` and `email`): the e-mail address, else `sub`; and a fallback name takes over no
existing user."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .browser import COOKIE, Browser, browser
from .fake_idp import FakeIdp, Person
from .helpers import Gateway

GOOGLE_SUB = "108474629871230098765"  # Google's `sub`: 21 digits


@pytest.fixture
async def web(sso: tuple[Gateway, FakeIdp]) -> AsyncIterator[Browser]:
    async with browser(sso[0]) as b:
        yield b


async def _signed_in_as(gw: Gateway, web: Browser) -> str:
    done = await web.oidc_login()
    assert (done.status, done.location) == (303, "/account"), done.text
    page = await web.account()
    assert page.status == 200
    async with gw.admin() as admin:
        names = {u.name for u in await admin.list_users()} - {"root", "alice", "rita"}
    [name] = names
    assert f'id="user">{name}<' in page.text
    return name


async def test_email_when_there_is_no_preferred_username(
    sso: tuple[Gateway, FakeIdp], web: Browser
) -> None:
    gw, idp = sso
    idp.person = Person(
        GOOGLE_SUB, "grace", drop=("preferred_username",), extra={"email_verified": True}
    )
    assert await _signed_in_as(gw, web) == "grace@example.test"
    async with gw.admin() as admin:
        user = next(u for u in await admin.list_users() if u.name == "grace@example.test")
    assert (user.role, user.email) == ("user", "grace@example.test")
    # The next sign-in finds the same user by `sub`, whatever the name claims say by then.
    idp.person = Person(GOOGLE_SUB, "grace-renamed", drop=("preferred_username",))
    again = await web.oidc_login()
    assert again.status == 303
    assert 'id="user">grace@example.test<' in (await web.account()).text


@pytest.mark.parametrize(
    "person",
    [
        Person(GOOGLE_SUB, "heidi", drop=("preferred_username", "email")),
        Person(GOOGLE_SUB, "heidi", drop=("preferred_username",), extra={"email_verified": False}),
        Person(GOOGLE_SUB, "h" * 60, drop=("preferred_username",)),  # too long for a name
        Person(GOOGLE_SUB, "heidi", extra={"preferred_username": " ", "email": ""}),
    ],
    ids=["sub-only", "unverified-email", "email-too-long", "blank-claims"],
)
async def test_sub_when_there_is_no_usable_email(
    sso: tuple[Gateway, FakeIdp], web: Browser, person: Person
) -> None:
    gw, idp = sso
    idp.person = person
    assert await _signed_in_as(gw, web) == GOOGLE_SUB


async def test_nothing_usable_is_refused(sso: tuple[Gateway, FakeIdp], web: Browser) -> None:
    gw, idp = sso
    idp.person = Person("x" * 65, "ivan", drop=("preferred_username", "email"))
    refused = await web.oidc_login()
    assert refused.status == 403 and "no usable name" in refused.text
    assert web.cookie(COOKIE) is None
    async with gw.admin() as admin:
        assert {u.name for u in await admin.list_users()} == {"root", "alice", "rita"}


@pytest.mark.parametrize(
    ("existing", "person"),
    [
        ("boss@example.test", Person("sub-mallory", "boss", drop=("preferred_username",))),
        ("root", Person("root", "mallory", drop=("preferred_username", "email"))),
    ],
    ids=["by-email", "by-sub"],
)
async def test_a_fallback_name_takes_over_no_existing_user(
    sso: tuple[Gateway, FakeIdp], web: Browser, existing: str, person: Person
) -> None:
    gw, idp = sso
    async with gw.admin() as admin:
        if existing != "root":  # root, the admin, exists already
            await admin.add_user(existing, role="admin")
    idp.person = person
    refused = await web.oidc_login()
    assert refused.status == 403 and "not linked" in refused.text
    assert web.cookie(COOKIE) is None
