"""Which headers cross the gateway: to the engine only an allow-list; back to the client all
but hop-by-hop ones, cookies and redirects."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["HOP_BY_HOP", "client_response_headers", "upstream_request_headers"]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# What of the client's request headers reaches the engine: what the engine protocols define
# (Anthropic's and OpenAI's version and beta switches), content negotiation and trace context.
# Nothing else — no credential (Authorization, x-api-key, api-key, X-Auth-Token, cookies), no
# routing or method hint a server behind the engine might believe (X-Original-URL,
# X-HTTP-Method-Override, X-Forwarded-*). Content-Type, Accept-Encoding and X-Request-Id are
# the gateway's own, as is the body they describe.
_REQUEST_ALLOW = frozenset(
    {
        "accept",
        "anthropic-version",
        "anthropic-beta",
        "openai-beta",
        "traceparent",
        "tracestate",
    }
)
_RESPONSE_DROP = HOP_BY_HOP | {"content-length", "set-cookie", "date", "server", "location"}


def _named_in_connection(headers: CIMultiDictProxy[str]) -> set[str]:
    names: set[str] = set()
    for value in headers.getall("Connection", ()):
        names.update(n.strip().lower() for n in value.split(",") if n.strip())
    return names


def _filter(
    headers: CIMultiDictProxy[str], drop: frozenset[str] | set[str]
) -> list[tuple[str, str]]:
    if "Connection" in headers:  # it may name more headers to drop
        drop = drop | _named_in_connection(headers)
    return [(name, value) for name, value in headers.items() if name.lower() not in drop]


def upstream_request_headers(
    client: CIMultiDictProxy[str],
    *,
    upstream_auth: dict[str, str],
    request_id: str,
    content_type: str | None = "application/json",
) -> CIMultiDict[str]:
    allowed = [(name, value) for name, value in client.items() if name.lower() in _REQUEST_ALLOW]
    if allowed:  # a Connection header may still name one of them as hop-by-hop
        extra = _named_in_connection(client)
        allowed = [(name, value) for name, value in allowed if name.lower() not in extra]
    out = CIMultiDict(allowed)
    # Usage is read from the body, so it must come plain: no compression offered.
    out["Accept-Encoding"] = "identity"
    # The body is the gateway's canonical encoding: UTF-8 JSON, whatever the client sent (or a
    # multipart upload, with the boundary the gateway checked; or no body at all).
    if content_type is not None:
        out["Content-Type"] = content_type
    out.update(upstream_auth)
    out["X-Request-Id"] = request_id
    return out


def client_response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict(_filter(upstream, _RESPONSE_DROP))
