"""Reading an answer's head: the status line, the headers, and how its body is framed.

Strict where a lenient reading would let an engine's answer mean two things: a header line
with a bare CR, LF or NUL in it, an obsolete folded line, a name that is not a token, two
different Content-Lengths, or one that is not a plain number, is a ``BadAnswer``. A body
framed both ways (Transfer-Encoding and Content-Length) is read by Transfer-Encoding and the
connection is not used again, as RFC 9112 asks.
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy

from authproxy.http1.errors import BadAnswer

__all__ = ["MAX_HEAD", "Framing", "Head", "parse_head"]

MAX_HEAD = 64 * 1024  # bytes of status line and headers
MAX_HEADERS = 128
_FIELDS = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n\x00]*\r\n)*")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")


class Framing:
    """How a body ends (plain ints: compared on every answer, an Enum's lookup costs more)."""

    NONE: Final = 0  # no body (HEAD, 1xx, 204, 304)
    LENGTH: Final = 1
    CHUNKED: Final = 2
    CLOSE: Final = 3  # until the connection closes


class Head(NamedTuple):
    status: int
    reason: str
    headers: CIMultiDictProxy[str]
    framing: int  # a Framing value
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
    line_end = head.find(b"\r\n")
    http11, status, reason = _status_line(head if line_end < 0 else head[:line_end])
    fields = b"" if line_end < 0 else head[line_end + 2 :] + b"\r\n"
    # One pass checks every line: a token, a colon, a value without CR, LF or NUL.
    if not _FIELDS.fullmatch(fields):
        raise BadAnswer("the engine sent a malformed header line or a control character")
    lines = fields.decode("utf-8", "surrogateescape").split("\r\n")
    if len(lines) > MAX_HEADERS + 1:
        raise BadAnswer("the engine's answer has too many headers")
    pairs = []
    for line in lines[:-1]:
        name, _, value = line.partition(":")
        pairs.append((name, value.strip(" \t")))
    headers: CIMultiDict[str] = CIMultiDict(pairs)
    framing, length, reusable = _framing(headers, status=status, method=method)
    closes = "Connection" in headers and _has_token(headers, "Connection", "close")
    return Head(
        status=status,
        reason=reason,
        headers=CIMultiDictProxy(headers),
        framing=framing,
        length=length,
        keep_alive=reusable and http11 and not closes,
    )


def _tokens(headers: CIMultiDict[str], name: str) -> list[str]:
    return [t.strip().lower() for value in headers.getall(name, ()) for t in value.split(",")]


def _has_token(headers: CIMultiDict[str], name: str, token: str) -> bool:
    return token in _tokens(headers, name)


def _framing(headers: CIMultiDict[str], *, status: int, method: str) -> tuple[int, int, bool]:
    """How the body ends, its length, and whether the connection may carry another request."""
    if method == "HEAD" or status < 200 or status in (204, 304):
        return Framing.NONE, 0, True
    if "Transfer-Encoding" in headers:
        # Only chunked is read: another coding would reach the client undone and unnamed.
        if _tokens(headers, "Transfer-Encoding") != ["chunked"]:
            raise BadAnswer("the engine sent a transfer coding other than chunked")
        return Framing.CHUNKED, 0, "Content-Length" not in headers
    given = headers.getall("Content-Length", None)
    if given is None:
        return Framing.CLOSE, 0, False
    lengths = {t.strip() for value in given for t in value.split(",")}
    if len(lengths) > 1:
        raise BadAnswer("the engine sent conflicting Content-Length headers")
    (text,) = lengths
    if not text.isdigit() or not text.isascii() or len(text) > 18:
        raise BadAnswer("the engine sent a malformed Content-Length")
    length = int(text)
    return (Framing.LENGTH, length, True) if length else (Framing.NONE, 0, True)
