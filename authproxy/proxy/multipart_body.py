"""Multipart uploads (audio transcription and translation): the model is a form field, and the
body goes to the engine as the client sends it — the same bytes, streamed, never held whole.

The gateway reads the form as it arrives, only as far as the ``model`` field: the parts before
it (and that field) are held, then the upload is forwarded — those bytes first, the rest as it
comes. Field order matters: clients put ``model`` before the file (the openai SDKs, curl -F in
the order given), so a few hundred bytes are held; a form that sends the file first is held up
to the end of the ``model`` field, bounded by ``max_request_mb`` like any body. The rest of the
upload is still read part by part on its way through: a second ``model`` field (engines read
the last one), a body past ``max_request_mb`` or a form that ends early stops the upload
mid-way, so the engine gets a broken body and runs nothing. An alias in ``model`` is rewritten
to the engine's id in the held bytes, and the length adjusted.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from authproxy.errors import BadRequest, GatewayError, PayloadTooLarge, UnsupportedMediaType
from authproxy.proxy.client_body import next_piece

__all__ = ["FormScanner", "FormUpload", "read_form_head"]

# RFC 2046 boundary characters (a space only inside, and only quoted).
_BCHAR = r"[0-9A-Za-z'()+_,./:=?-]"
_BOUNDARY = re.compile(rf"^(?:{_BCHAR}|{_BCHAR}[0-9A-Za-z'()+_,./:=? -]{{0,68}}{_BCHAR})$")
_NAME = re.compile(r'(?:^|;)\s*name\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]+))', re.IGNORECASE)
_TOKEN = re.compile(r"^[0-9A-Za-z'+_.-]+$")  # needs no quotes in a header parameter
_FILENAME = re.compile(r"(?:^|;)\s*filename\*?\s*=", re.IGNORECASE)
MAX_PART_HEADERS = 16 * 1024
MAX_MODEL_BYTES = 256


def _boundary(content_type: str) -> str:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise UnsupportedMediaType(
            "send this endpoint a multipart/form-data body", code="unsupported_content_type"
        )
    found = re.search(r'(?:^|;)\s*boundary\s*=\s*(?:"([^"]*)"|([^;\s]*))', params, re.IGNORECASE)
    value = (found.group(1) or found.group(2)) if found else ""
    if not _BOUNDARY.match(value or ""):
        raise BadRequest("the multipart boundary is missing or invalid", code="invalid_multipart")
    return value


@dataclass(slots=True)
class FormScanner:
    """Follows a multipart/form-data body chunk by chunk, keeping only what a delimiter split
    across chunks needs, and the value of the one field it looks for."""

    boundary: bytes
    limit: int
    field_name: str = "model"
    value: str | None = None  # the field's value, once its part ended
    value_span: tuple[int, int] = (0, 0)  # where it is in the body (byte offsets)
    file_first: bool = False  # a file part came before the field
    size: int = 0
    ended: bool = False  # the closing delimiter was seen
    _buf: bytes = b"\r\n"  # as if the first delimiter followed a line break, like the others
    _base: int = -2  # the body offset of _buf[0]
    _state: str = "part"  # part (preamble or a part's data), delimiter, headers, end
    _collecting: int | None = None  # the field's value starts at this offset
    _collected: bytearray = field(default_factory=bytearray)

    @property
    def _delim(self) -> bytes:
        return b"\r\n--" + self.boundary

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge("the request body is larger than max_request_mb allows")
        if self._state == "end":
            return
        self._buf += chunk
        while self._step():
            pass

    def close(self) -> None:
        """At the end of the body: it must have been a complete form."""
        if not self.ended:
            raise BadRequest("the multipart body ends before its closing boundary",
                             code="invalid_multipart")  # fmt: skip

    def _consume(self, count: int) -> None:
        self._buf = self._buf[count:]
        self._base += count

    def _step(self) -> bool:
        delim = self._delim
        if self._state == "part":
            at = self._buf.find(delim)
            if at < 0:
                keep = len(delim) - 1
                if len(self._buf) > keep:
                    self._take_value(len(self._buf) - keep)
                return False
            self._take_value(at)
            self._end_value()
            self._consume(len(delim))
            self._state = "delimiter"
            return True
        if self._state == "delimiter":
            if len(self._buf) < 2:
                return False
            if self._buf[:2] == b"--":
                self._state, self.ended = "end", True
                self._buf = b""
                return False
            if self._buf[:2] != b"\r\n":
                raise BadRequest("a multipart delimiter is malformed", code="invalid_multipart")
            self._consume(2)
            self._state = "headers"
            return True
        if self._state == "headers":
            at = self._buf.find(b"\r\n\r\n")
            if at < 0:
                if len(self._buf) > MAX_PART_HEADERS:
                    raise BadRequest("a multipart part's headers are too long",
                                     code="invalid_multipart")  # fmt: skip
                return False
            self._part(self._buf[:at])
            self._consume(at + 4)
            self._state = "part"
            return True
        return False

    def _take_value(self, count: int) -> None:
        if self._collecting is not None:
            self._collected += self._buf[:count]
            if len(self._collected) > MAX_MODEL_BYTES:
                raise BadRequest(f"`{self.field_name}` is too long", code="missing_model")
        self._consume(count)

    def _end_value(self) -> None:
        if self._collecting is None:
            return
        start, self._collecting = self._collecting, None
        try:
            self.value = self._collected.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(
                f"`{self.field_name}` is not UTF-8 text", code="missing_model"
            ) from None
        self.value_span = (start, start + len(self._collected))

    def _part(self, raw: bytes) -> None:
        dispositions = [
            line.split(b":", 1)[1].decode("latin-1").strip()
            for line in raw.split(b"\r\n")
            if line.split(b":", 1)[0].strip().lower() == b"content-disposition"
        ]
        if len(dispositions) != 1 or not dispositions[0].lower().startswith("form-data"):
            raise BadRequest("each multipart part needs one Content-Disposition: form-data",
                             code="invalid_multipart")  # fmt: skip
        names = _NAME.findall(dispositions[0])
        if len(names) != 1:
            raise BadRequest("each multipart part needs one name", code="invalid_multipart")
        name = names[0][0] or names[0][1]
        if name.casefold() == self.field_name.casefold():
            if self.value is not None or name != self.field_name:
                raise BadRequest(
                    f"the form field `{self.field_name}` must appear once, spelled so",
                    code="ambiguous_key",
                )
            self._collecting = self._base + len(raw) + 4
        elif _FILENAME.search(dispositions[0]) and self.value is None:
            self.file_first = True


@dataclass(slots=True)
class FormUpload:
    """The body as it goes to the engine: the held bytes (the model rewritten if need be),
    then the rest of the client's upload, still scanned on the way."""

    request: web.Request
    scanner: FormScanner
    held: bytes
    content_type: str
    length: int | None  # the client's Content-Length, adjusted to a rewritten model
    idle: float  # the longest pause between pieces of the upload (timeouts.client_body)
    refused: GatewayError | None = None  # why the upload was stopped mid-way

    def with_model(self, model_id: str) -> None:
        if model_id == self.scanner.value:
            return
        start, end = self.scanner.value_span
        new = model_id.encode()
        self.held = self.held[:start] + new + self.held[end:]
        if self.length is not None:
            self.length += len(new) - (end - start)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.held
        self.held = b""
        content = self.request.content
        try:
            while chunk := await next_piece(content, idle=self.idle):
                self.scanner.feed(chunk)
                yield chunk
            self.scanner.close()
        except GatewayError as exc:
            self.refused = exc
            raise


async def read_form_head(request: web.Request, *, limit: int, idle: float) -> FormUpload:
    """Read the upload up to the end of its ``model`` field (400 if it has none)."""
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            "a multipart upload is forwarded as sent: send it without Content-Encoding",
            code="unsupported_content_encoding",
        )
    boundary = _boundary(request.headers.get("Content-Type", ""))
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge("the request body is larger than max_request_mb allows")
    scanner = FormScanner(boundary=boundary.encode("latin-1"), limit=limit)
    held = bytearray()
    while scanner.value is None and not scanner.ended:
        chunk = await next_piece(request.content, idle=idle)
        if not chunk:
            break
        scanner.feed(chunk)
        held += chunk
    if scanner.value is None or not scanner.value:
        raise BadRequest("the form field `model` is required", code="missing_model")
    return FormUpload(
        request=request,
        scanner=scanner,
        held=bytes(held),
        content_type="multipart/form-data; boundary="
        + (boundary if _TOKEN.match(boundary) else f'"{boundary}"'),
        length=length,
        idle=idle,
    )
