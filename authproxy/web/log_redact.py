"""No credential in any log line: the redaction ``authproxy serve`` installs.

aiohttp reports a request its HTTP parser refused as "Error handling request" at ERROR, with a
traceback whose message quotes the raw bytes of the offending line: a whole ``Authorization``
header, a session cookie, a key in a query string. ``MalformedRequests`` turns that into one
warning naming the client and what was wrong, quoting none of the request. On top of that,
``redact`` masks whatever still looks like a credential (an ``sk-`` key down to its display
prefix, a credential header's value, a bearer token) in every record of aiohttp's loggers
(``RedactRecords``) and in every line our handlers write, tracebacks included
(``RedactingFormatter``).
"""

from __future__ import annotations

import logging
import re

from aiohttp.http_exceptions import HttpProcessingError, LineTooLong

from authproxy.auth.keys import DISPLAY_CHARS, KEY_PREFIX

__all__ = [
    "AIOHTTP_LOGGERS",
    "REDACTED",
    "MalformedRequests",
    "RedactRecords",
    "RedactingFormatter",
    "install_redaction",
    "parser_complaint",
    "redact",
]

AIOHTTP_LOGGERS = (
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
)
REDACTED = "[redacted]"

# A key longer than its display prefix (so a masked one is left alone).
_KEY = re.compile(re.escape(KEY_PREFIX) + rf"([A-Za-z0-9_-]{{{DISPLAY_CHARS}}})[A-Za-z0-9_-]+")
# A credential header's value as it shows up in a line: raw (`Cookie: a=b`), in a bytes repr
# (`b'...\r\nx-api-key: sk-...\r\n...'`: it ends at an escaped CR/LF or the closing quote), or
# in a mapping's repr (`'Authorization': 'Bearer ...'`).
_HEADER = re.compile(
    r"""(?ix)(?:\b|(?<=\\n))  # a word's start, or just after an escaped LF
    (authorization|proxy-authorization|x-api-key|api[_-]key|cookie|set-cookie)
    (['"]?[ \t]*[:=][ \t]*['"]?)
    ((?:[^\r\n'"\\]|\\(?![rn]))+)"""
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
# A line of a parser message that says what went wrong and quotes nothing (llhttp's reason,
# "Invalid header value char"); lines with quotes, colons or reprs carry the request's bytes.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9 ,.()-]{0,79}")


# Words one of the patterns needs, lower-cased: an ASCII line with none of them has nothing to
# mask, so the patterns need not scan it (the access log's line, every request: ~18 µs saved).
_HEADER_WORDS = ("authorization", "api-key", "api_key", "cookie")


def redact(text: str) -> str:
    """``text`` with credential header values, bearer tokens and keys masked (idempotent)."""
    header = bearer = True
    if text.isascii():  # case-insensitive matching is plain lower-casing only for ASCII
        lower = text.lower()
        header = any(word in lower for word in _HEADER_WORDS)
        bearer = "bearer" in lower
    if header:
        text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    if bearer:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    if KEY_PREFIX not in text:
        return text
    return _KEY.sub(lambda m: f"{KEY_PREFIX}{m.group(1)}…", text)


def parser_complaint(exc: HttpProcessingError) -> str:
    """What the HTTP parser objected to, without the bytes it quotes."""
    if isinstance(exc, LineTooLong):  # its message is mostly the line itself
        return f"a request line or header longer than {exc.args[1]} bytes"
    lines = (line.strip().rstrip(":").strip() for line in (exc.message or "").splitlines())
    plain = [line for line in lines if _PLAIN.fullmatch(line)]
    return plain[-1] if plain else type(exc).__name__


class MalformedRequests(logging.Filter):
    """A request the parser refused becomes ``malformed request from ADDRESS refused (400):
    REASON``: one line, no traceback, no bytes of the request. It is a warning (the client's
    fault, not ours), or lower where aiohttp chose lower (a bad method as a connection's first
    request, a port scanner's usual noise, is a debug line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        client = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg = "malformed request from %s refused (%s): %s"
        record.args = (client, exc.code, parser_complaint(exc))
        record.exc_info = record.exc_text = None
        if record.levelno > logging.WARNING:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class RedactRecords(logging.Filter):
    """Masks credentials in a record itself, for whichever handler ends up writing it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose whole output, traceback and stack included, goes through ``redact``."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def install_redaction(handlers: list[logging.Handler], fmt: str) -> None:
    """``RedactingFormatter(fmt)`` on ``handlers``; the filters on aiohttp's loggers."""
    for handler in handlers:
        handler.setFormatter(RedactingFormatter(fmt))
    for name in AIOHTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactRecords) for f in logger.filters):
            if name == "aiohttp.server":
                logger.addFilter(MalformedRequests())
            logger.addFilter(RedactRecords())
