"""The engines' HTTP/1.1 client (authproxy/http1) against a scripted server on 127.0.0.1.

The server writes exactly the bytes a test gives it, split where the test splits them: the
framings, splits and faults no real engine shows on demand (a body cut short, a chunk size
that is not hex, a header with a bare LF, bytes past the end).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from authproxy.http1 import BadAnswer, ConnectFailed, CutOff, Disconnected, Origin, Pool

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Seen"], Awaitable[None]]

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


@dataclass
class Seen:
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)  # each request's head and body
    opened_before: list[int] = field(default_factory=list)  # connections when each came
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # a connection saw EOF


async def read_request(reader: asyncio.StreamReader, seen: Seen) -> bytes | None:
    """One request off the connection: its head, then its body by Content-Length or
    chunked (decoded). None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        seen.closed.set()
        return None
    body = b""
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += data[:-2]
    elif b"content-length:" in lower:
        length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
    seen.requests.append(head + body)
    seen.opened_before.append(seen.connections)
    return head + body


def answering(*answers: list[bytes], close: bool = False, pause: float = 0.0) -> Script:
    """Per request, the answer's pieces, written one by one (``pause`` between them)."""

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, seen: Seen) -> None:
        for pieces in answers:
            if await read_request(r, seen) is None:
                return
            for piece in pieces:
                w.write(piece)
                await w.drain()
                if pause:
                    await asyncio.sleep(pause)
        if close:
            w.close()
            return
        await read_request(r, seen)  # hold the connection until the client closes it

    return script


@asynccontextmanager
async def server(script: Script) -> AsyncIterator[tuple[Origin, Seen]]:
    seen = Seen()

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            await script(r, w, seen)
        except (ConnectionError, asyncio.IncompleteReadError):
            seen.closed.set()
        finally:
            w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield Origin.parse(f"http://127.0.0.1:{port}/base"), seen
    finally:
        srv.close()
        await srv.wait_closed()


@asynccontextmanager
async def pool(**options: float) -> AsyncIterator[Pool]:
    p = Pool(connect_timeout=2, **options)
    try:
        yield p
    finally:
        p.close()


def split(data: bytes, size: int = 1) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def test_the_request_is_written_as_one_exact_head_and_body() -> None:
    async with server(answering([OK])) as (origin, seen), pool() as p:
        resp = await p.request(
            origin, "POST", "/v1/chat/completions?x=1", {"X-Request-Id": "r1"}, b'{"a":1}'
        )
        assert await resp.read() == b'{"ok":true}'
    assert seen.requests == [
        b"POST /base/v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1:"
        + str(origin.port).encode()
        + b"\r\nX-Request-Id: r1\r\nContent-Length: 7\r\nUser-Agent: authproxy\r\n\r\n"
        + b'{"a":1}'
    ]


async def test_an_answer_split_byte_by_byte_is_read_whole_and_the_connection_reused() -> None:
    script = answering(split(OK), split(OK, 7))
    async with server(script) as (origin, seen), pool() as p:
        for _ in range(2):
            resp = await p.request(origin, "GET", "/a", {}, None)
            assert (resp.status, resp.content_type) == (200, "application/json")
            assert await resp.read() == b'{"ok":true}'
    assert seen.connections == 1 and len(seen.requests) == 2


async def test_a_body_that_came_with_its_head_is_taken_at_once_and_a_partial_one_is_not() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"
    script = answering([OK], [head, b'{"ok":', b"true}"], pause=0.05)
    async with server(script) as (origin, _), pool() as p:
        whole = await p.request(origin, "GET", "/a", {}, None)
        assert whole.complete and whole.body_now() == b'{"ok":true}'
        partial = await p.request(origin, "GET", "/b", {}, None)
        assert not partial.complete
        with pytest.raises(RuntimeError):
            partial.body_now()
        assert await partial.read() == b'{"ok":true}'


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
    b"8;ext=1\r\ndata: 1\n\r\nA\r\ndata: 22\n\n\r\n0\r\nX-Trailer: t\r\n\r\n"
)


@pytest.mark.parametrize("piece", [1, 3, 1000])
async def test_a_chunked_stream_comes_out_as_its_bytes_in_order(piece: int) -> None:
    async with server(answering(split(CHUNKED, piece), [OK])) as (origin, seen), pool() as p:
        resp = await p.request(origin, "POST", "/s", {}, b"{}")
        assert resp.content_type == "text/event-stream"
        got = [chunk async for chunk in resp]
        assert b"".join(got) == b"data: 1\ndata: 22\n\n"
        again = await p.request(origin, "GET", "/b", {}, None)  # the same connection
        assert await again.read() == b'{"ok":true}'
    assert seen.connections == 1


@pytest.mark.parametrize("piece", [7, 100_000])
async def test_many_chunks_in_one_read_come_out_whole_even_with_crlf_inside(piece: int) -> None:
    payloads = [b"data: %d\n\n" % i for i in range(50)]
    payloads[20] = b"data: with\r\na CRLF inside\n\n"  # the fast path must not split it
    payloads[30] = b"x" * 70_000  # longer than one read
    body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in payloads)
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body + b"0\r\n\r\n"
    async with server(answering(split(answer, piece), [OK])) as (origin, seen), pool() as p:
        resp = await p.request(origin, "GET", "/a", {}, None)
        assert await resp.read() == b"".join(payloads)
        again = await p.request(origin, "GET", "/a", {}, None)
        assert await again.read() == b'{"ok":true}'
    assert seen.connections == 1


async def test_an_answer_without_a_length_ends_at_the_close_and_is_not_reused() -> None:
    until_close = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    async with server(answering([until_close], close=True)) as (origin, seen), pool() as p:
        resp = await p.request(origin, "GET", "/a", {}, None)
        assert await resp.read() == b"all of it"
        second = await p.request(origin, "GET", "/a", {}, None)  # a new connection
        assert await second.read() == b"all of it"
    assert seen.connections == 2


async def test_interim_answers_are_skipped() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
    async with server(answering([interim + OK])) as (origin, _), pool() as p:
        resp = await p.request(origin, "GET", "/a", {}, None)
        assert resp.status == 200 and await resp.read() == b'{"ok":true}'


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX-A: one\ntwo\r\nContent-Length: 0\r\n\r\n",  # bare LF in a value
        b"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n",  # folded line
        b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/2 200\r\nContent-Length: 0\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
    ],
    ids=[
        "bare-lf",
        "folded",
        "bad-name",
        "two-lengths",
        "signed-length",
        "hex-length",
        "gzip-coding",
        "status",
        "version",
        "not-http",
        "switching",
        "too-large",
    ],
)
async def test_a_head_that_could_mean_two_things_is_a_bad_answer(head: bytes) -> None:
    async with server(answering([head])) as (origin, seen), pool() as p:
        with pytest.raises(BadAnswer):
            await p.request(origin, "GET", "/a", {}, None)
        await asyncio.wait_for(seen.closed.wait(), 2)  # and the connection is closed


@pytest.mark.parametrize("size", [b"0x5", b"-5", b"+5", b" 5", b"zz", b"5 5", b"1_0", b""])
async def test_a_chunk_size_that_is_not_hex_cuts_the_body(size: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n"
    async with server(answering([answer])) as (origin, _), pool() as p:
        resp = await p.request(origin, "GET", "/a", {}, None)
        with pytest.raises(CutOff):
            await resp.read()


async def test_a_body_cut_short_yields_what_came_then_cut_off() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes!"
    async with server(answering([answer], close=True)) as (origin, _), pool() as p:
        resp = await p.request(origin, "GET", "/a", {}, None)
        got: list[bytes] = []

        async def read_all() -> None:
            async for chunk in resp:
                got.append(chunk)

        with pytest.raises(CutOff):
            await read_all()
        assert b"".join(got) == b"ten bytes!"


async def test_a_close_without_an_answer_is_disconnected() -> None:
    async def hang_up(r: asyncio.StreamReader, w: asyncio.StreamWriter, seen: Seen) -> None:
        await read_request(r, seen)

    async with server(hang_up) as (origin, _), pool() as p:
        with pytest.raises(Disconnected):
            await p.request(origin, "GET", "/a", {}, None)


async def test_nothing_listening_is_a_failed_connect() -> None:
    async with server(answering([OK])) as (origin, _):
        pass  # closed: the port is free again
    async with pool() as p:
        with pytest.raises(ConnectFailed):
            await p.request(origin, "GET", "/a", {}, None)


async def test_no_head_in_time_is_a_timeout_and_the_engine_sees_the_close() -> None:
    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter, seen: Seen) -> None:
        await read_request(r, seen)
        await read_request(r, seen)  # EOF sets `closed`

    async with server(silent) as (origin, seen), pool() as p:
        with pytest.raises(TimeoutError):
            await p.request(origin, "GET", "/a", {}, None, head_timeout=0.2)
        await asyncio.wait_for(seen.closed.wait(), 2)


async def test_a_reader_that_leaves_mid_body_closes_the_connection() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10

    async def slow(r: asyncio.StreamReader, w: asyncio.StreamWriter, seen: Seen) -> None:
        await read_request(r, seen)
        w.write(answer)
        await read_request(r, seen)  # EOF sets `closed`

    async with server(slow) as (origin, seen), pool() as p:
        resp = await p.request(origin, "GET", "/a", {}, None)
        assert await anext(aiter(resp)) == b"x" * 10
        resp.close()
        await asyncio.wait_for(seen.closed.wait(), 2)
        second = await p.request(origin, "GET", "/a", {}, None)  # never the closed one
        assert await anext(aiter(second)) == b"x" * 10
    assert seen.connections == 2


async def test_bytes_past_the_end_keep_the_connection_out_of_the_pool() -> None:
    smuggled = OK + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nevil!"
    async with server(answering([smuggled], [OK])) as (origin, seen), pool() as p:
        first = await p.request(origin, "GET", "/a", {}, None)
        assert await first.read() == b'{"ok":true}'
        second = await p.request(origin, "GET", "/a", {}, None)
        assert await second.read() == b'{"ok":true}'  # not the engine's extra answer
    assert seen.connections == 2


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/a", {"X-A": "one\r\nX-Injected: yes"}),
        ("/a", {"X-A": "one\rtwo"}),
        ("/a HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /b", {}),
        ("/a b", {}),
    ],
)
async def test_a_line_break_in_what_is_sent_is_refused_before_anything_is_written(
    target: str, headers: dict[str, str]
) -> None:
    async with server(answering([OK])) as (origin, seen), pool() as p:
        with pytest.raises(ValueError, match="line break"):
            await p.request(origin, "GET", target, headers, None)
    assert seen.connections == 0


async def test_an_unread_stream_stops_the_engine_instead_of_filling_memory() -> None:
    total = 4 * 1024 * 1024
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total
    async with server(answering([answer, b"y" * total])) as (origin, _), pool() as p:
        resp = await p.request(origin, "GET", "/a", {}, None)
        await asyncio.sleep(0.5)  # nobody reads: the engine is held back by TCP
        assert 0 < resp.buffered <= 1024 * 1024
        assert len(await resp.read()) == total  # and all of it comes once read


async def test_an_upload_is_sent_as_it_is_read_with_or_without_a_length() -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b"part one, ", b"", b"part two"):
            await asyncio.sleep(0.01)
            yield piece

    async with server(answering([OK])) as (origin, seen), pool() as p:
        resp = await p.request(origin, "POST", "/u", {}, pieces(), fresh=True)
        assert await resp.read() == b'{"ok":true}'
    async with server(answering([OK])) as (origin2, seen2), pool() as p:
        resp = await p.request(origin2, "POST", "/u", {}, pieces(), length=18, fresh=True)
        assert await resp.read() == b'{"ok":true}'
    sent = b"part one, part two"
    assert seen.requests[0].endswith(b"Transfer-Encoding: chunked\r\n" + _ua() + sent)
    assert seen2.requests[0].endswith(b"Content-Length: 18\r\n" + _ua() + sent)


def _ua() -> bytes:
    return b"User-Agent: authproxy\r\n\r\n"


async def test_an_upload_that_fails_closes_the_connection_unfinished() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"the start"
        raise RuntimeError("the client stopped sending")

    async def wait(r: asyncio.StreamReader, w: asyncio.StreamWriter, seen: Seen) -> None:
        await read_request(r, seen)  # never a whole chunked body: EOF

    async with server(wait) as (origin, seen), pool() as p:
        with pytest.raises(Disconnected):
            await p.request(origin, "POST", "/u", {}, broken(), fresh=True)
        await asyncio.wait_for(seen.closed.wait(), 2)
    assert seen.requests == []


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"),
        ("GET", b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"),
        ("GET", b"HTTP/1.1 304 Not Modified\r\n\r\n"),
    ],
)
async def test_answers_without_a_body_end_at_the_head(method: str, answer: bytes) -> None:
    async with server(answering([answer], [OK])) as (origin, seen), pool() as p:
        resp = await p.request(origin, method, "/a", {}, None)
        assert resp.complete and await resp.read() == b""
        again = await p.request(origin, "GET", "/a", {}, None)
        assert await again.read() == b'{"ok":true}'
    assert seen.connections == 1


async def test_an_idle_connection_past_keepalive_is_not_used_again() -> None:
    async with server(answering([OK], [OK])) as (origin, seen), pool(keepalive=0.1) as p:
        await (await p.request(origin, "GET", "/a", {}, None)).read()
        await asyncio.sleep(0.3)
        await (await p.request(origin, "GET", "/a", {}, None)).read()
    assert seen.connections == 2


def test_an_origin_is_taken_apart_once() -> None:
    plain = Origin.parse("http://engine:80/v1/")
    parts = (plain.host, plain.port, plain.host_header, plain.prefix)
    assert parts == ("engine", 80, "engine", "/v1")
    v6 = Origin.parse("https://user:p%40ss@[::1]:8443")
    assert (v6.host, v6.port, v6.tls, v6.host_header) == ("::1", 8443, True, "[::1]:8443")
    assert v6.authorization == "Basic dXNlcjpwQHNz"  # user:p@ss
    with pytest.raises(ValueError, match="not an http"):
        Origin.parse("ftp://engine")


async def test_an_engine_that_closes_after_each_answer_finds_the_next_connection_open() -> None:
    async with server(answering([OK], close=True)) as (origin, seen), pool() as p:
        await (await p.request(origin, "GET", "/a", {}, None)).read()
        for _ in range(200):  # the engine closed it: a new one is opened before it is needed
            if seen.connections == 2:
                break
            await asyncio.sleep(0.01)
        assert seen.connections == 2
        await (await p.request(origin, "GET", "/a", {}, None)).read()
    assert seen.opened_before == [1, 2]  # the second request came on the warmed connection


async def test_connections_that_closed_are_not_kept_by_the_pool() -> None:
    async with server(answering(*[[OK]] * 20)) as (origin, _), pool() as p:
        for _ in range(20):  # each on a connection of its own, closed after its answer
            await (await p.request(origin, "GET", "/a", {}, None, fresh=True)).read()
        await asyncio.sleep(0.1)
        gc.collect()
        assert len(p._all) == 0


async def test_a_warmed_connection_the_engine_closes_unused_is_not_warmed_again() -> None:
    async def close_idle(r: asyncio.StreamReader, w: asyncio.StreamWriter, seen: Seen) -> None:
        if seen.connections == 1:  # the first connection: one answer, then the close
            await read_request(r, seen)
            w.write(OK)
            await w.drain()
        # any later one: closed at once, unused

    async with server(close_idle) as (origin, seen), pool() as p:
        await (await p.request(origin, "GET", "/a", {}, None)).read()
        await asyncio.sleep(0.5)
    assert seen.connections == 2  # the one warmed after the answer, and no loop after it


async def test_an_engine_that_closes_during_a_large_upload_ends_it_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def big() -> AsyncIterator[bytes]:
        for _ in range(256):  # 16 MB: the socket's buffers fill, writing pauses
            yield b"u" * 65536

    async def refuse(r: asyncio.StreamReader, w: asyncio.StreamWriter, seen: Seen) -> None:
        await r.readuntil(b"\r\n\r\n")  # the head, then hang up without reading the body

    async with server(refuse) as (origin, _), pool() as p:
        with pytest.raises(Disconnected):
            await p.request(origin, "POST", "/u", {}, big(), length=256 * 65536, fresh=True)
        await asyncio.sleep(0.1)
    gc.collect()
    await asyncio.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
