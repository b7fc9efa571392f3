"""ID token checks without a network: tokens minted here with a throwaway key."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from authproxy.oidc.tokens import (
    TokenRefused,
    UnknownSigningKey,
    allowed_algorithms,
    check_id_token,
)

ISSUER = "https://idp.example"
CLIENT = "gateway"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256"})
KEYS = KeySet([KEY])


def _token(key: Any = KEY, alg: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": CLIENT, "sub": "s1", "iat": now, "exp": now + 60, "nonce": "n"}
    body.update(claims)
    return jwt.encode({"alg": alg, "kid": getattr(key, "kid", None) or "k1"}, body, key)


def _check(token: str, nonce: str = "n", leeway: float = 60) -> dict[str, Any]:
    return check_id_token(
        token,
        keys=KEYS,
        algorithms=["RS256"],
        issuer=ISSUER,
        client_id=CLIENT,
        nonce=nonce,
        access_token=None,
        leeway=leeway,
    )


def test_a_good_token_passes() -> None:
    assert _check(_token())["sub"] == "s1"
    assert _check(_token(aud=[CLIENT]))["sub"] == "s1"


@pytest.mark.parametrize(
    ("claims", "nonce", "words"),
    [
        ({"nonce": "other"}, "n", "nonce"),
        ({"nonce": None}, "n", "nonce"),
        ({"aud": "someone"}, "n", "aud"),
        ({"aud": ["someone", CLIENT], "azp": "someone"}, "n", "azp"),
        ({"iss": "https://evil.example"}, "n", "iss"),
        ({"exp": -61}, "n", "expired"),  # relative to now, when the test runs
        ({"iat": +120}, "n", "future"),
        ({"sub": None}, "n", "sub"),
    ],
)
def test_bad_claims_are_refused(claims: dict[str, Any], nonce: str, words: str) -> None:
    body = {k: v for k, v in claims.items() if v is not None}
    for name in ("exp", "iat"):
        if name in body:
            body[name] += int(time.time())
    token = _token(**body)
    if any(v is None for v in claims.values()):  # drop a claim altogether
        dropped = next(k for k, v in claims.items() if v is None)
        parts = jwt.decode(_token(), KEYS).claims
        parts.pop(dropped)
        token = jwt.encode({"alg": "RS256", "kid": "k1"}, parts, KEY)
    with pytest.raises(TokenRefused, match=words):
        _check(token, nonce)


def test_skew_is_bounded_by_the_leeway() -> None:
    late = _token(exp=int(time.time()) - 30)
    assert _check(late, leeway=60)
    with pytest.raises(TokenRefused, match="expired"):
        _check(late, leeway=0)


def test_signatures() -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with pytest.raises(TokenRefused, match="signature"):
        _check(_token(key=other))
    stranger = RSAKey.generate_key(2048, parameters={"kid": "k9"})
    with pytest.raises(UnknownSigningKey):
        _check(_token(key=stranger))
    hmac_key = OctKey.import_key(b"a" * 32, {"kid": "k1"})  # alg confusion: HS256 is not allowed
    with pytest.raises(TokenRefused):
        _check(_token(key=hmac_key, alg="HS256"))
    with pytest.raises(TokenRefused, match="not a signed JWT"):
        _check("abc.def")


def test_only_asymmetric_algorithms_are_taken() -> None:
    assert allowed_algorithms(None) == ["RS256"]
    assert allowed_algorithms(["none", "HS256", "ES256"]) == ["ES256"]
    with pytest.raises(TokenRefused):
        allowed_algorithms(["none", "HS256"])
