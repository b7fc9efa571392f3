"""What a client whose HTTP aiohttp cannot parse gets back: the OpenAI error shape.

aiohttp answers such a request (a bad header line, a broken chunk size, an unknown method, a
line too long) itself, before any handler runs, in plain text that quotes the offending bytes
back. ``JsonErrorRunner`` makes the gateway's server answer those in the one error shape
instead, naming what was wrong and quoting nothing; the connection is closed as before, and the
log line is the one ``log_redact.MalformedRequests`` makes of it.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from authproxy.web.log_redact import parser_complaint

__all__ = ["JsonErrorRunner", "protocol_error_body"]


def protocol_error_body(status: int, exc: BaseException | None) -> bytes:
    """The error body for a request aiohttp refused below the application."""
    if status >= 500:
        message, kind, code = "internal error", "server_error", "internal_error"
    else:
        what = parser_complaint(exc) if isinstance(exc, HttpProcessingError) else None
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "refused"
        message = f"malformed HTTP request: {what or reason}"
        kind, code = "invalid_request_error", "malformed_request"
    return json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()


class _JsonErrorHandler(RequestHandler):
    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own: it logs, and refuses (ConnectionError) once a response has begun.
        super().handle_error(request, status, exc, message)
        response = web.Response(
            status=status,
            body=protocol_error_body(status, exc),
            content_type="application/json",
        )
        response.force_close()
        return response


class _JsonErrorServer(Server):
    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler.__class__ = _JsonErrorHandler  # same slots: only handle_error differs
        return handler


class JsonErrorRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparsable requests in the error shape."""

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        return server
