"""Reading an answer's head: the status line, the headers, and how its body is framed.

Strict where a lenient reading would let an engine's answer mean two things: a header line
with a bare CR, LF or NUL in it, an obsolete folded line, a name that is not a token, two
different Content-Lengths, or one that is not a plain number, is a ``BadAnswer``. A body
framed both ways (Transfer-Encoding and Content-Length) is read by Transfer-Encoding and the
connection is not used again, as RFC 9112 asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from multidict import CIMultiDict, CIMultiDictProxy

from authproxy.http1.errors import BadAnswer

__all__ = ["MAX_HEAD", "Framing", "Head", "parse_head"]

MAX_HEAD = 64 * 1024  # bytes of status line and headers
MAX_HEADERS = 128
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")


class Framing(Enum):
    NONE = "none"  # no body (HEAD, 1xx, 204, 304)
    LENGTH = "length"
    CHUNKED = "chunked"
    CLOSE = "close"  # until the connection closes


@dataclass(frozen=True, slots=True, kw_only=True)
class Head:
    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    framing: Framing
    length: int  # for Framing.LENGTH
    keep_alive: bool


def _status_line(line: bytes) -> tuple[bool, int, str]:
    if len(line) < 12 or not line.startswith(b"HTTP/1.") or line[7:8] not in (b"0", b"1"):
        raise BadAnswer("the engine's answer is not HTTP/1.x")
    code = line[9:12]
    if line[8:9] != b" " or not code.isdigit() or line[12:13] not in (b"", b" "):
        raise BadAnswer("the engine's status line is malformed")
    if _BAD_VALUE.search(line):
        raise BadAnswer("the engine's status line holds a control character")
    return line[7:8] == b"1", int(code), line[13:].decode("latin-1")


def parse_head(head: bytes, *, method: str) -> Head:
    """``head``: the bytes before the blank line that ends it (without that CRLF CRLF)."""
    lines = head.split(b"\r\n")
    http11, status, reason = _status_line(lines[0])
    if len(lines) > MAX_HEADERS + 1:
        raise BadAnswer("the engine's answer has too many headers")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise BadAnswer("the engine sent a malformed header line")
        if _BAD_VALUE.search(value):
            raise BadAnswer("the engine sent a header value with a control character")
        headers.add(name.decode("ascii"), value.strip(b" \t").decode("utf-8", "surrogateescape"))
    framing, length, reusable = _framing(headers, status=status, method=method)
    keep_alive = reusable and http11 and not _has_token(headers, "Connection", "close")
    return Head(
        status=status,
        reason=reason,
        headers=CIMultiDictProxy(headers),
        framing=framing,
        length=length,
        keep_alive=keep_alive,
    )


def _tokens(headers: CIMultiDict[str], name: str) -> list[str]:
    return [t.strip().lower() for value in headers.getall(name, ()) for t in value.split(",")]


def _has_token(headers: CIMultiDict[str], name: str, token: str) -> bool:
    return token in _tokens(headers, name)


def _framing(headers: CIMultiDict[str], *, status: int, method: str) -> tuple[Framing, int, bool]:
    """How the body ends, its length, and whether the connection may carry another request."""
    if method == "HEAD" or status < 200 or status in (204, 304):
        return Framing.NONE, 0, True
    codings = _tokens(headers, "Transfer-Encoding")
    if codings:
        # Only chunked is read: another coding would reach the client undone and unnamed.
        if codings != ["chunked"]:
            raise BadAnswer("the engine sent a transfer coding other than chunked")
        return Framing.CHUNKED, 0, "Content-Length" not in headers
    lengths = set(_tokens(headers, "Content-Length"))
    if not lengths:
        return Framing.CLOSE, 0, False
    if len(lengths) > 1:
        raise BadAnswer("the engine sent conflicting Content-Length headers")
    (text,) = lengths
    if not text.isdigit() or not text.isascii() or len(text) > 18:
        raise BadAnswer("the engine sent a malformed Content-Length")
    length = int(text)
    return (Framing.LENGTH, length, True) if length else (Framing.NONE, 0, True)
