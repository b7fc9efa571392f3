"""Which headers cross the gateway: hop-by-hop and every client credential never do."""

from __future__ import annotations

from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy

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
# Credentials of the client, routing hints it must not choose, and what aiohttp recomputes.
_REQUEST_DROP = HOP_BY_HOP | {
    "authorization",
    "x-api-key",
    "cookie",
    "host",
    "content-length",
    "expect",
    "accept-encoding",  # replaced by identity: usage is read from the body
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-request-id",
}
_RESPONSE_DROP = HOP_BY_HOP | {"content-length", "set-cookie", "date", "server", "location"}


def _named_in_connection(headers: CIMultiDictProxy[str]) -> set[str]:
    names: set[str] = set()
    for value in headers.getall("Connection", ()):
        names.update(n.strip().lower() for n in value.split(",") if n.strip())
    return names


def _filter(
    headers: CIMultiDictProxy[str], drop: frozenset[str] | set[str]
) -> Iterable[tuple[str, str]]:
    extra = _named_in_connection(headers)
    for name, value in headers.items():
        lower = name.lower()
        if lower not in drop and lower not in extra:
            yield name, value


def upstream_request_headers(
    client: CIMultiDictProxy[str], *, upstream_auth: dict[str, str], request_id: str
) -> CIMultiDict[str]:
    out = CIMultiDict(_filter(client, _REQUEST_DROP))
    # aiohttp would offer gzip itself; usage is read from the body, so it must come plain.
    out["Accept-Encoding"] = "identity"
    # The body was checked to be JSON; say so even when the client did not (FastAPI engines
    # refuse a JSON body labelled application/octet-stream).
    out.setdefault("Content-Type", "application/json")
    out.update(upstream_auth)
    out["X-Request-Id"] = request_id
    return out


def client_response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict(_filter(upstream, _RESPONSE_DROP))
