"""What can go wrong between the gateway and an engine, in the terms the forwarder decides on:
whether the request surely reached nothing, may be sent again, or was cut short."""

from __future__ import annotations

__all__ = ["BadAnswer", "ConnectFailed", "CutOff", "Disconnected", "HttpError"]


class HttpError(Exception):
    """The one base: the forwarder maps each kind to its gateway error."""


class ConnectFailed(HttpError):
    """No connection was made (refused, unresolvable, timed out connecting): the request
    surely reached no engine."""


class Disconnected(HttpError):
    """The connection closed before a byte of the answer came. On a pooled connection the
    engine may have dropped it while idle: the request may go again on a new one."""


class BadAnswer(HttpError):
    """The answer is not HTTP/1.1 the gateway can relay (a malformed head, a header with a
    line break in it, conflicting lengths, a head too large)."""


class CutOff(HttpError):
    """The connection ended, or the framing broke, in the middle of the answer's body."""
