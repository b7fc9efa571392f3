"""The one error tree of the gateway.

Every refusal the gateway makes is a ``GatewayError``; the outer middleware
(``web/middleware.py``, ``gateway_middleware``) turns it into the OpenAI error shape
``{"error": {"message", "type", "code"}}`` in one place.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AuthenticationFailed",
    "BadRequest",
    "GatewayError",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "RequestTimeout",
    "ServiceUnavailable",
    "UnsupportedMediaType",
    "UpstreamError",
    "UpstreamNoAnswer",
    "UpstreamTimeout",
    "UpstreamUnreachable",
]


class GatewayError(Exception):
    status: int = 500
    type: str = "server_error"
    code: str = "internal_error"
    #: The connection can't serve another request after this one (its request was not read
    #: to the end), so the answer closes it.
    closes_connection: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, dict[str, str | None]]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}


class BadRequest(GatewayError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_request"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class NotFound(GatewayError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class RequestTimeout(GatewayError):
    status = 408
    type = "invalid_request_error"
    code = "request_timeout"
    closes_connection = True


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(GatewayError):
    """The engine could not be reached or answered with something we will not relay."""

    status = 502
    type = "upstream_error"
    code = "upstream_unavailable"
    #: Nothing reached the client and the engine gave no usable answer, so another upstream
    #: serving the model may be tried (``proxy/failover.py``).
    failover: bool = False


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamUnreachable(UpstreamError):
    """No answer came back (refused, reset, dropped mid-answer): eject it and fail over."""

    failover = True


class UpstreamNoAnswer(UpstreamTimeout):
    """No complete answer within the timeouts, before the client saw a byte: eject, fail over."""

    failover = True


class ServiceUnavailable(GatewayError):
    status = 503
    type = "server_error"
    code = "service_unavailable"
