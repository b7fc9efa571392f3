"""No credential in any log line or table, whatever a client sends: `authproxy serve` (a real
process, at log level debug) gets requests its HTTP parser refuses, each carrying a real key as
`Authorization` and `x-api-key` and a session cookie; then its whole output and every row of
every table are searched for them.

aiohttp reports such a request with the raw bytes of the offending line (a whole header) in an
ERROR traceback; the gateway makes it one warning that quotes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import signal
import sqlite3
from pathlib import Path

from fakes.engine import FakeEngine

from authproxy.auth.keys import DISPLAY_CHARS, KEY_PREFIX

from .helpers import MODELS, Secret
from .serve_process import ServeProcess, serve_process

STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")
MALFORMED = re.compile(
    r"WARNING aiohttp\.server: malformed request from 127\.0\.0\.1 refused \(400\)"
)


def _credentials(key: str, cookie: str) -> bytes:
    return (
        f"Authorization: Bearer {key}\r\nx-api-key: {key}\r\nCookie: authproxy_session={cookie}\r\n"
    ).encode()


def _malformed(key: str, cookie: str) -> dict[str, list[bytes]]:
    """Requests the parser refuses, each as the pieces sent one after another."""
    creds = _credentials(key, cookie)
    head = b"GET /v1/models HTTP/1.1\r\nHost: gw\r\n"
    post = b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
    chunked = post + b"Transfer-Encoding: chunked\r\n" + creds + b"\r\n"
    return {
        "header line without a colon": [head + creds + b"This is no header\r\n\r\n"],
        "header name with a space": [head + creds + b"Bad Name: x\r\n\r\n"],
        "NUL in the key": [
            head + f"Authorization: Bearer {key[:20]}\0{key[20:]}\r\n".encode() + creds + b"\r\n"
        ],
        "NUL in the cookie": [
            head + creds + f"Cookie: authproxy_session={cookie[:9]}\0{cookie[9:]}\r\n\r\n".encode()
        ],
        "invalid method": [b"G(T /v1/models HTTP/1.1\r\nHost: gw\r\n" + creds + b"\r\n"],
        "invalid method, second on the connection": [
            b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n",
            b"P@ST /v1/models HTTP/1.1\r\nHost: gw\r\n" + creds + b"\r\n",
        ],
        "bad HTTP version": [b"GET /v1/models HTTP/9.Q\r\nHost: gw\r\n" + creds + b"\r\n"],
        "header too long": [
            head + creds + f"Authorization: Bearer {key}".encode() + b"x" * 20_000 + b"\r\n\r\n"
        ],
        "cookie too long": [
            head + f"Cookie: authproxy_session={cookie}".encode() + b"y" * 20_000 + b"\r\n\r\n"
        ],
        "request line too long": [
            f"GET /v1/models?key={key}&pad=".encode() + b"z" * 20_000 + b" HTTP/1.1\r\n" + creds
        ],
        "bad chunk size": [chunked + f"zz{key}\r\n{{}}\r\n0\r\n\r\n".encode()],
        "bad chunk size, after the headers": [chunked, f"{key}\r\n{{}}\r\n0\r\n\r\n".encode()],
        "chunked and content-length": [
            post + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n" + creds + b"\r\n{}"
        ],
    }


async def _send(port: int, pieces: list[bytes]) -> bytes:
    """Send the pieces (a pause between them); what the gateway answered until it closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i, piece in enumerate(pieces):
            if i:
                await asyncio.sleep(0.3)
            writer.write(piece)
            await writer.drain()
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(3):  # a refusal is at once; a body error may hang
                return await reader.read()
        return b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _tables(db: Path) -> str:
    """Every row of every table, as text (blobs as hex and as latin-1)."""
    out = []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for name in names:
            for row in conn.execute(f'SELECT * FROM "{name}"'):  # noqa: S608 - names from sqlite_master
                for value in row:
                    if isinstance(value, bytes):
                        out += [value.hex(), value.decode("latin-1")]
                    else:
                        out.append(str(value))
    return "\n".join(out)


def _leaks(text: str, secret: str, keep: int) -> list[str]:
    """Pieces (10 characters) of ``secret`` past its first ``keep`` that ``text`` holds: the
    whole secret, or any part of it beyond what may be shown. (Never print them.)"""
    tail = secret[keep:]
    return [tail[i : i + 10] for i in range(len(tail) - 9) if tail[i : i + 10] in text]


async def test_malformed_requests_leave_no_credential_in_logs_or_tables(
    tmp_path: Path, engine: FakeEngine
) -> None:
    cookie = Secret(secrets.token_urlsafe(32))
    gw: ServeProcess
    async with serve_process(tmp_path, engine, log_level="debug") as gw:
        key = gw.accounts.user_key
        answers = {}
        for name, pieces in _malformed(key, cookie).items():
            answers[name] = await _send(gw.port, pieces)
        # A good request too, so that usage and audit rows exist to be searched.
        good = await _send(
            gw.port,
            [
                b"GET "
                + MODELS.encode()
                + b" HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
                + _credentials(key, cookie)
                + b"\r\n"
            ],
        )
        gw.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gw.proc.wait(), 20) == 0
    log = "".join(gw.log)

    def masked(text: str) -> str:  # for failure messages: never print a credential
        for secret in (key, cookie):
            for i in range(len(secret) - 9):
                text = text.replace(secret[i : i + 10], "<secret>")
        return text

    keep = len(KEY_PREFIX) + DISPLAY_CHARS  # the display prefix may be shown
    tables = _tables(gw.config.db_path)
    for where, text in (("log", log), ("tables", tables)):
        found = {"key": len(_leaks(text, key, keep)), "cookie": len(_leaks(text, cookie, 0))}
        assert found == {"key": 0, "cookie": 0}, (where, masked(text))
    raw = b"".join(
        p.read_bytes() for p in gw.config.db_path.parent.glob(gw.config.db_path.name + "*")
    )
    in_files = key.encode() in raw or cookie.encode() in raw
    assert not in_files, "a credential is in the database files"

    assert good.startswith(b"HTTP/1.1 200 ")
    # The status of the last response on each connection (the malformed request's).
    statuses = {name: STATUS.findall(answer)[-1:] for name, answer in answers.items()}
    del statuses["bad chunk size, after the headers"]  # that one reached the handler
    assert {name for name, status in statuses.items() if status != [b"400"]} == set(), statuses
    # One line per refused request, saying why; no traceback. (A bad method as a connection's
    # first request is aiohttp's debug-level noise: a line too, at debug.)
    assert len(MALFORMED.findall(log)) == len(statuses) - 1, masked(log)
    assert "Traceback" not in log and "Error handling request" not in log, masked(log)
