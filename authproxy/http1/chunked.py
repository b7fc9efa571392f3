"""The chunked transfer coding, decoded as an answer's reads arrive.

Strict: a chunk size is hex digits alone (no sign, ``0x``, ``_`` or space that ``int`` would
take), at most 15 of them; anything where the CRLF after a chunk belongs, or a line longer than
4 KiB, is ``BadChunk``. Extensions and trailers are read and dropped.
"""

from __future__ import annotations

import re

__all__ = ["BadChunk", "ChunkedDecoder"]

_SIZE, _DATA, _DATA_END, _TRAILER = range(4)
_MAX_LINE = 4096  # a chunk-size line or a trailer line
_SIZE_TEXT = re.compile(rb"[0-9A-Fa-f]{1,15}")
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class BadChunk(ValueError):
    """The framing is not chunked coding as RFC 9112 writes it."""


def _whole_chunks(data: bytes, out: list[bytes]) -> int:
    """The fast path for a read holding many whole chunks (an engine's tokens, sent faster
    than they are read): each ``size CRLF payload CRLF`` whose payload holds no CRLF of its
    own is taken with one split of the read, not a search per line. Returns where it
    stopped (a last chunk, an extension, a payload with a CRLF, a partial chunk): the
    careful loop goes on from there."""
    parts = data.split(b"\r\n")
    pos, i, whole = 0, 0, len(parts) - 2  # a payload counts only if a CRLF follows it
    while i < whole:
        size_text, payload = parts[i], parts[i + 1]
        if not 0 < len(size_text) < 16 or size_text.translate(None, _HEX_DIGITS):
            break
        length = int(size_text, 16)
        if length == 0 or length != len(payload):
            break
        out.append(payload)
        pos += len(size_text) + length + 4
        i += 2
    return pos


def _chunk_size(line: bytes) -> int:
    """A chunk-size line's size (extensions dropped)."""
    if b";" in line:
        line = line.partition(b";")[0].rstrip(b" \t")
    if not _SIZE_TEXT.fullmatch(line):
        raise BadChunk("a chunk size that is not hex digits")
    return int(line, 16)


class ChunkedDecoder:
    """One answer's chunked body: ``feed`` each read; the payload goes to ``out``."""

    __slots__ = ("_partial", "_remaining", "_state")

    def __init__(self) -> None:
        self._state = _SIZE
        self._remaining = 0
        self._partial = b""  # a line split across reads

    def feed(self, data: bytes, out: list[bytes]) -> int:
        """Decode ``data``: -1 while the body goes on, else how many bytes came after its end
        (0: none). Raises ``BadChunk``; ``out`` then holds what was decoded before."""
        if self._partial:
            data, self._partial = self._partial + data, b""
        pos, size = 0, len(data)
        if self._state == _SIZE:
            pos = _whole_chunks(data, out)
        while pos < size:
            state = self._state
            if state == _DATA:
                end = min(pos + self._remaining, size)
                out.append(data[pos:end])
                self._remaining -= end - pos
                pos = end
                if not self._remaining:
                    self._state = _DATA_END
                continue
            if state == _DATA_END and data[pos : pos + 2] == b"\r\n":
                pos += 2
                self._state = _SIZE
                continue
            end = data.find(b"\r\n", pos)
            if end < 0:
                if size - pos > _MAX_LINE:
                    raise BadChunk("a chunk line longer than 4 KiB")
                self._partial = data[pos:]
                return -1
            line = data[pos:end]
            pos = end + 2
            if state == _SIZE:
                length = _chunk_size(line)
                if length:
                    self._state, self._remaining = _DATA, length
                else:
                    self._state = _TRAILER
            elif state == _DATA_END:  # bytes where the CRLF after a chunk belongs
                raise BadChunk("no CRLF after a chunk")
            elif not line:  # the blank line after the trailers: the end
                return size - pos
        return -1
