"""Small parts of browser login: role mapping, `next`, origin checks, limits, passwords."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from authproxy.auth.csrf import CsrfTokens, same_origin
from authproxy.config.load import ConfigError, load_config
from authproxy.config.login import Oidc, PasswordLogin
from authproxy.login.context import safe_next
from authproxy.login.limiter import LoginLimiter
from authproxy.login.passwords import PasswordPolicyError, hash_password, verify_password
from authproxy.oidc.users import role_from_claims


def _oidc(**extra: object) -> Oidc:
    return Oidc.model_validate(
        {
            "issuer": "https://idp.example",
            "client_id": "c",
            "redirect_url": "https://gw.example/auth/callback",
            **extra,
        }
    )


def test_role_mapping_first_match_wins_else_default() -> None:
    s = _oidc(roles_map={"admins": "admin", "staff": "user"}, default_role="guest")
    assert role_from_claims(s, {"groups": ["staff", "admins"]}, "user") == "admin"
    assert role_from_claims(s, {"groups": "staff"}, "user") == "user"
    assert role_from_claims(s, {"groups": ["nobody"]}, "user") == "guest"
    assert role_from_claims(_oidc(), {}, "user") == "user"


def test_oidc_config_is_checked(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text(
        "oidc: {issuer: 'ftp://x', client_id: c, redirect_url: 'https://gw/cb',"
        " scopes: [email], roles_map: {g: nosuchrole}, clock_skew: 3600, colour: red}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(file, env={})
    text = " | ".join(info.value.problems)
    for words in ("oidc.issuer", "oidc.redirect_url", "oidc.scopes", "clock_skew", "colour"):
        assert words in text, words
    file.write_text(
        "oidc: {issuer: 'https://x', client_id: c, redirect_url: 'https://gw/auth/callback',"
        " roles_map: {g: nosuchrole}}\n"
    )
    with pytest.raises(ConfigError, match="nosuchrole"):
        load_config(file, env={})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/account", "/account"),
        ("/v1/models?x=1", "/v1/models?x=1"),
        (None, "/account"),
        ("//evil.example", "/account"),
        ("/\\evil.example", "/account"),
        ("https://evil.example", "/account"),
        ("/auth/logout", "/account"),
        ("/x\r\nSet-Cookie: a=b", "/account"),
        ("/account?done=revoked&x=%C3%A9", "/account?done=revoked&x=%C3%A9"),
        ("/\x01", "/account"),
        ("/\x7f", "/account"),
        ("/\x85", "/account"),
        ("/\u2028", "/account"),
        ("/é", "/account"),  # a Location header is ASCII: browsers read raw UTF-8 variously
        ("/ x", "/account"),
        ("/%2F/evil.example", "/account"),
        ("/%2f%2fevil.example", "/account"),
        ("/%5Cevil.example", "/account"),
        ("/%0d%0aSet-Cookie:%20a=b", "/account"),
        ("/%61uth/logout", "/account"),
        ("/x?to=https%3A//evil.example", "/account"),
        ("/" + "a" * 511, "/" + "a" * 511),
        ("/" + "a" * 512, "/account"),
    ],
)
def test_next_stays_on_this_gateway(value: object, expected: str) -> None:
    assert safe_next(value) == expected


@pytest.mark.parametrize(
    ("headers", "ok"),
    [
        ({"Origin": "http://gw.example"}, True),
        ({"Origin": "http://GW.example", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Origin": "https://gw.example"}, False),  # other scheme, other origin
        ({"Origin": "http://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({}, False),
    ],
)
def test_same_origin(headers: dict[str, str], ok: bool) -> None:
    request = make_mocked_request("POST", "/v1/chat/completions", {"Host": "gw.example", **headers})
    assert same_origin(request, tls=False) is ok


def test_csrf_tokens_are_bound_and_purposeful() -> None:
    tokens = CsrfTokens(secret=b"s" * 32)
    t = tokens.token("session-a", "account")
    assert tokens.check("session-a", "account", t)
    assert not tokens.check("session-b", "account", t)
    assert not tokens.check("session-a", "logout", t)
    assert not tokens.check(None, "account", t)
    assert not tokens.check("session-a", "account", None)


def test_login_limiter_per_user_and_address() -> None:
    limiter = LoginLimiter(
        PasswordLogin(max_failures_per_user=2, max_failures_per_address=3, window=60)
    )
    limiter.failed(limiter.begin("1.1.1.1", "Alice"))
    limiter.failed(limiter.begin("2.2.2.2", "alice"))
    refused = limiter.begin("3.3.3.3", "ALICE")
    assert 0 < refused.wait <= 60  # per user, whatever the address
    limiter.failed(refused)  # a refused attempt changes nothing
    limiter.succeeded(limiter.begin("1.1.1.1", "carol"))  # clears carol only
    assert limiter.begin("3.3.3.3", "alice").wait > 0
    limiter.failed(limiter.begin("1.1.1.1", "bob"))
    limiter.failed(limiter.begin("1.1.1.1", "zed"))
    assert limiter.begin("1.1.1.1", "yan").wait > 0  # the address: 3 failures


def test_login_limiter_counts_a_check_before_it_runs() -> None:
    limiter = LoginLimiter(
        PasswordLogin(max_failures_per_user=2, max_failures_per_address=3, window=60)
    )
    first, second = limiter.begin("1.1.1.1", "alice"), limiter.begin("1.1.1.2", "alice")
    assert first.wait == second.wait == 0
    assert limiter.begin("1.1.1.3", "alice").wait > 0  # two checks still running: the limit
    limiter.release(first)  # right password of a disabled user: not a failure
    third = limiter.begin("1.1.1.3", "alice")
    assert third.wait == 0
    limiter.succeeded(third)  # the user's count starts over; the address's hit is taken back
    limiter.failed(second)  # finished after the success: counted again
    assert limiter.begin("1.1.1.2", "alice").wait == 0
    for i in range(3):  # the released check left no hit on 1.1.1.1
        assert limiter.begin("1.1.1.1", f"u{i}").wait == 0
    assert limiter.begin("1.1.1.1", "v").wait > 0


def test_passwords() -> None:
    with pytest.raises(PasswordPolicyError):
        hash_password("short")
    stored = hash_password("long enough password")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "long enough password").ok
    assert not verify_password(stored, "another password").ok
    assert not verify_password(None, "long enough password").ok
    assert not verify_password("not-a-hash", "x").ok
