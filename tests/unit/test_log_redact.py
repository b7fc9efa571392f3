"""Masking credentials in log lines, and the one line for a request the parser refused."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    LineTooLong,
)

from authproxy.auth.keys import KEY_PREFIX
from authproxy.web.log_redact import (
    _BEARER,
    _HEADER,
    _KEY,
    REDACTED,
    MalformedRequests,
    RedactingFormatter,
    RedactRecords,
    parser_complaint,
    redact,
)

KEY = "sk-Abc123" + "Qz7_Lm-9Rt" * 3 + "Wy8pK0e"  # the right shape; not a key anywhere
SECRET_PART = KEY[9:]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"key {KEY} used", "key sk-Abc123… used"),
        (f"Authorization: Bearer {KEY}", "Authorization: [redacted]"),
        (f"x-api-key:{KEY}\nnext", "x-api-key:[redacted]\nnext"),
        ("Cookie: authproxy_session=abc; other=1", "Cookie: [redacted]"),
        (
            "b'GET / HTTP/1.1\\r\\nAuthorization: Basic dXNlcjpw\\x00YXNz\\r\\nHost: x'",
            "b'GET / HTTP/1.1\\r\\nAuthorization: [redacted]\\r\\nHost: x'",
        ),
        (
            "{'Cookie': 'authproxy_session=abc', 'Host': 'x'}",
            "{'Cookie': '[redacted]', 'Host': 'x'}",
        ),
        ("bearer eyJhbGciOiJSUzI1NiJ9.e30.sig", "bearer [redacted]"),
    ],
    ids=["key", "authorization", "x-api-key", "cookie", "bytes-repr", "mapping-repr", "bearer"],
)
def test_credentials_are_masked(line: str, expected: str) -> None:
    assert redact(line) == expected
    assert redact(expected) == expected  # a masked line stays as it is


@pytest.mark.parametrize(
    "line",
    [
        '{"error":"invalid_api_key","user":null}',
        "bearer tokens are off; cookie_name authproxy_session",
        "sk-abc is too short to be a key",
    ],
)
def test_other_text_is_left_alone(line: str) -> None:
    assert redact(line) == line


def _every_pattern(text: str) -> str:
    """What redact gives when every pattern scans every line (before its shortcut)."""
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _KEY.sub(lambda m: f"{KEY_PREFIX}{m.group(1)}…", text)


@pytest.mark.parametrize(
    "line",
    [
        '{"request_id":"a1","path":"/v1/chat/completions","status":200,"user":"ann"}',
        f"PROXY-AUTHORIZATION: Basic {KEY}",
        f"Set-Cookie: s={KEY}; x-API_key= {KEY}",
        f"BeArEr {KEY[3:]}",
        f"{{'X-Api-Key': '{KEY}'}}",
        f"coo\u212aie: {KEY}",  # an escape, not the Kelvin sign itself
        f"coo\u212aie: x \u0131 {KEY}".encode().decode("unicode_escape"),  # non-ASCII
        f"Authorization: Bearer {KEY}".encode().decode() + " é",
        "sk-" + "a" * 43,
    ],
)
def test_the_shortcut_masks_exactly_what_every_pattern_would(line: str) -> None:
    assert redact(line) == _every_pattern(line)


def _parser_errors() -> Iterator[tuple[HttpProcessingError, str]]:
    raw = f"Authorization: Bearer {KEY}"
    # llhttp's shape (aiohttp's C parser): the reason, then the offending line and a pointer.
    yield (
        BadHttpMessage(f"Invalid header value char:\n\n  {raw.encode()!r}\n    ^"),
        ("Invalid header value char"),
    )
    yield (
        BadStatusLine(error=f"Bad status line:\n  Invalid HTTP version:\n\n  b'{KEY}'\n ^"),
        ("Invalid HTTP version"),
    )
    # The pure-Python parser's shapes.
    yield LineTooLong(raw.encode()[:100] + b"...", 16384), "longer than 16384 bytes"
    yield InvalidHeader(raw.encode()), "InvalidHeader"
    yield BadHttpMethod(f"G(T /v1/models?key={KEY}"), "BadHttpMethod"


@pytest.mark.parametrize(("exc", "reason"), list(_parser_errors()))
def test_a_refused_request_is_one_line_that_quotes_nothing(
    exc: HttpProcessingError, reason: str
) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test.aiohttp.server")
    logger.addFilter(MalformedRequests())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        # What aiohttp's web_protocol does with it.
        logger.exception("Error handling request from %s", "127.0.0.1", exc_info=exc)
    finally:
        logger.removeHandler(handler)
        logger.filters.clear()
    text = out.getvalue()
    assert text.startswith(
        "WARNING test.aiohttp.server: malformed request from 127.0.0.1 refused (400): "
    )
    assert reason in text and text.count("\n") == 1
    assert SECRET_PART[:10] not in text and "Authorization" not in text
    assert parser_complaint(exc) in text


def test_tracebacks_are_masked_by_the_formatter_and_the_record_filter() -> None:
    try:
        raise ValueError(f"bad header Authorization: Bearer {KEY}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", (KEY,), None)

        record.exc_info = sys.exc_info()
    formatted = RedactingFormatter("%(message)s").format(logging.makeLogRecord(record.__dict__))
    assert SECRET_PART not in formatted and "Authorization: [redacted]" in formatted
    assert RedactRecords().filter(record)
    plain = logging.Formatter("%(message)s").format(record)
    assert SECRET_PART not in plain and "failed sk-Abc123…" in plain
