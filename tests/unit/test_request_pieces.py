from __future__ import annotations

from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict, CIMultiDictProxy

from authproxy.auth.client_address import ClientAddress
from authproxy.auth.policy import Policy
from authproxy.config.schema import Quotas, Role
from authproxy.errors import BadRequest
from authproxy.proxy.endpoints import Endpoint, row
from authproxy.proxy.headers import client_response_headers, upstream_request_headers
from authproxy.proxy.request_body import prepare

CHAT = row("/v1/chat/completions")
EMBED = row("/v1/embeddings")
MESSAGES = row("/v1/messages")


@pytest.mark.parametrize(
    ("endpoint", "raw", "code"),
    [
        (CHAT, b"", "invalid_json"),
        (CHAT, b"{nope", "invalid_json"),
        (CHAT, b"[1]", "invalid_json"),
        (CHAT, b"\xff\xfe", "invalid_json"),
        (CHAT, b'{"messages": []}', "missing_model"),
        (CHAT, b'{"model": 3}', "missing_model"),
        (CHAT, b'{"model": "m", "stream": "yes"}', "invalid_stream"),
        (EMBED, b'{"model": "m", "stream": true}', "invalid_stream"),
        (CHAT, b'{"model": "m", "stream": true, "stream_options": 1}', "invalid_stream_options"),
    ],
)
def test_bad_bodies(endpoint: Endpoint, raw: bytes, code: str) -> None:
    with pytest.raises(BadRequest) as info:
        prepare(endpoint, raw, settings=Quotas())
    assert info.value.code == code


def _headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_credentials_and_hop_by_hop_never_go_upstream() -> None:
    client = _headers(
        ("Authorization", "Bearer sk-client"),
        ("x-api-key", "sk-client"),
        ("Cookie", "session=1"),
        ("Proxy-Authorization", "Basic x"),
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("X-Secret-Hop", "1"),
        ("TE", "trailers"),
        ("Host", "gateway"),
        ("X-Forwarded-For", "1.2.3.4"),
        ("Content-Type", "application/json; charset=utf-16"),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "tools-2024-04-04"),
        ("OpenAI-Beta", "assistants=v2"),
        ("Accept", "text/event-stream"),
        ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
        # Neither credentials nor hints a server behind the engine might believe.
        ("api-key", "sk-client"),
        ("X-Auth-Token", "sk-client"),
        ("X-Original-URL", "/slots"),
        ("X-Rewrite-URL", "/slots"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-Forwarded-Prefix", "/admin"),
        ("Content-Encoding", "gzip"),
        ("User-Agent", "curl/8"),
        ("X-Custom", "1"),
    )
    out = upstream_request_headers(
        client, upstream_auth={"Authorization": "Bearer engine"}, request_id="r1"
    )
    assert out["Authorization"] == "Bearer engine"
    names = {n.lower() for n in out}
    assert names == {
        "authorization",
        "content-type",
        "anthropic-version",
        "anthropic-beta",
        "openai-beta",
        "accept",
        "traceparent",
        "x-request-id",
        "accept-encoding",
    }
    assert out["Accept-Encoding"] == "identity"
    # The body is the gateway's UTF-8 encoding, whatever the client's label said.
    assert out["Content-Type"] == "application/json"


def test_json_content_type_is_added_when_the_client_sent_none() -> None:
    out = upstream_request_headers(_headers(), upstream_auth={}, request_id="r")
    assert out["Content-Type"] == "application/json"
    assert "Authorization" not in out


def test_engine_cannot_set_cookies_or_redirect_the_client() -> None:
    upstream = _headers(
        ("Content-Type", "text/event-stream"),
        ("Set-Cookie", "a=b"),
        ("Location", "http://elsewhere"),
        ("Transfer-Encoding", "chunked"),
        ("X-Engine", "1"),
    )
    assert {n.lower() for n in client_response_headers(upstream)} == {"content-type", "x-engine"}


def _request(peer: str, **headers: str) -> web.Request:
    transport = mock.Mock()
    transport.get_extra_info.return_value = (peer, 1234)
    return make_mocked_request("GET", "/", headers=headers, transport=transport)


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    addr = ClientAddress(trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    assert addr.of(_request("127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"})) == "203.0.113.9"
    assert addr.of(_request("198.51.100.1", **{"X-Forwarded-For": "203.0.113.9"})) == "198.51.100.1"
    # A client-forged hop before the real chain is skipped: the nearest untrusted hop wins.
    chain = "6.6.6.6, 203.0.113.9, 10.1.1.1"
    assert addr.of(_request("127.0.0.1", **{"X-Forwarded-For": chain})) == "203.0.113.9"
    assert addr.came_over_tls(_request("127.0.0.1", **{"X-Forwarded-Proto": "https"}))
    assert not addr.came_over_tls(_request("198.51.100.1", **{"X-Forwarded-Proto": "https"}))


def test_policy_globs_and_unknown_roles() -> None:
    policy = Policy(roles={"admin": Role(models=["*"]), "coder": Role(models=["qwen-*", "tiny"])})
    assert policy.may_use("coder", "qwen-coder-7b") and policy.may_use("coder", "tiny")
    assert not policy.may_use("coder", "llama-70b")
    assert not policy.may_use("ghost", "tiny") and not policy.knows_role("ghost")
    assert policy.is_admin("admin") and not policy.is_admin("coder")


def test_an_allowed_header_named_in_connection_stays_behind() -> None:
    client = _headers(
        ("Connection", "keep-alive, Anthropic-Beta"),
        ("anthropic-beta", "tools-2024-04-04"),
        ("anthropic-version", "2023-06-01"),
    )
    out = upstream_request_headers(client, upstream_auth={}, request_id="r1")
    assert "anthropic-beta" not in out
    assert out["anthropic-version"] == "2023-06-01"
    bare = upstream_request_headers(_headers(("Host", "g")), upstream_auth={}, request_id="r2")
    assert {n.lower() for n in bare} == {"accept-encoding", "content-type", "x-request-id"}
