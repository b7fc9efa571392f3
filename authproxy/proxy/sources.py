"""Reading a request as its catalogue row says the model comes: the one ``PreparedRequest`` the
rest of the request path (authorize, quota, forward, account) works on.

- ``json``: the body parsed and checked once (``request_body.py``); a ``previous_response_id``
  must name one of the caller's own stored responses, and goes to the upstream that made it;
- ``form``: a multipart upload read up to its ``model`` field, the rest streamed
  (``multipart_body.py``);
- ``owner``: a stored response's path; only its creator gets past this (``responses_api.py``);
- ``upstream``: an engine admin path, to the upstream named in ``/engine/{upstream}/…`` or to
  the only one; the admin's JSON body, if any, re-encoded canonically;
- ``none``: no model; forwarded to any upstream that is up (``/api/version``).
"""

from __future__ import annotations

from aiohttp import web

from authproxy import appkeys as K
from authproxy.config.schema import Config
from authproxy.errors import BadRequest, NotFound
from authproxy.proxy.client_body import read_body
from authproxy.proxy.endpoints import Endpoint, engine_path
from authproxy.proxy.multipart_body import read_form_head
from authproxy.proxy.request_body import PreparedRequest, bodiless, prepare
from authproxy.proxy.request_encoding import decoded
from authproxy.proxy.responses_api import check_previous, owned_response

__all__ = ["prepare_request"]


async def _body(request: web.Request, config: Config) -> bytes:
    limit = config.max_request_bytes
    body = await read_body(request, limit=limit, idle=config.timeouts.client_body)
    return decoded(body, request.headers.get("Content-Encoding", ""), limit=limit)


def _target(request: web.Request, endpoint: Endpoint) -> str:
    try:
        return engine_path(endpoint, request.match_info, request.query)
    except ValueError as exc:
        raise BadRequest(str(exc), code="invalid_path") from None


def _named_upstream(request: web.Request) -> str:
    upstreams = request.app[K.CATALOG].upstreams
    name = request.match_info.get("upstream")
    if name is None:
        if len(upstreams) != 1:
            raise BadRequest(
                "this gateway has several upstreams: name one, /engine/NAME" + request.path,
                code="upstream_required",
            )
        return upstreams[0].name
    if all(u.name != name for u in upstreams):
        raise NotFound(f"no upstream is named {name!r}", code="upstream_not_found")
    return name


async def prepare_request(request: web.Request, endpoint: Endpoint) -> PreparedRequest:
    config = request.app[K.CONFIG]
    method = request.method
    if endpoint.model == "json":
        prepared = prepare(endpoint, await _body(request, config), settings=config.quotas)
        if prepared.previous_response_id is not None:
            previous = await check_previous(request, prepared.previous_response_id)
            prepared = prepared._replace(pinned=previous.upstream)
        return prepared
    if endpoint.model == "form":
        upload = await read_form_head(
            request, limit=config.max_request_bytes, idle=config.timeouts.client_body
        )
        allowance = config.quotas.prompt_estimate  # an upload is media: its allowance
        return bodiless(endpoint, model=upload.scanner.value or "", method=method)._replace(
            prompt_estimate=allowance.per_media + allowance.per_request,
            upload=upload,
            content_type=upload.content_type,
        )
    if endpoint.model == "owner":
        owner = await owned_response(request, request.match_info.get("response_id", ""))
        target = _target(request, endpoint)
        return bodiless(
            endpoint, model=owner.model, method=method, target=target, pinned=owner.upstream
        )
    if endpoint.model == "upstream":
        pinned = _named_upstream(request)
        target = _target(request, endpoint)
        raw = await _body(request, config)
        return bodiless(endpoint, method=method, target=target, raw=raw, pinned=pinned)
    return bodiless(endpoint, method=method, raw=await _body(request, config))
