"""Request bodies sent compressed: gzip and deflate are decoded here, anything else is a 415.

aiohttp's own request decoding is off (``app.py``): it let a body that did not decompress
end in a 500, and an encoding it has no library for (``br``, ``zstd``) in a plain-text 400
from the HTTP parser. Here every case answers in the OpenAI error shape, and the decoded body
is held to ``max_request_mb`` like any other (a small compressed body may inflate a lot). The
engine gets the decoded body, re-encoded by the gateway, and no Content-Encoding header.
"""

from __future__ import annotations

import zlib

from authproxy.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

__all__ = ["decoded"]

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decoded(raw: bytes, content_encoding: str, *, limit: int) -> bytes:
    """``raw`` as sent with ``Content-Encoding: content_encoding``, decompressed."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    wbits = _WBITS.get(encoding)
    if wbits is None:
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding[:40]!r} is not supported; send the body plain, "
            "or compressed with gzip or deflate",
            code="unsupported_content_encoding",
        )
    if encoding == "deflate" and raw[:1] and raw[0] & 0x0F != 8:
        wbits = -zlib.MAX_WBITS  # a raw deflate stream without the zlib header, as many send
    out = bytearray()
    rest = raw
    try:
        while rest:  # gzip allows several members one after the other
            stream = zlib.decompressobj(wbits)
            out += stream.decompress(rest, limit + 1 - len(out))
            if len(out) > limit:
                raise PayloadTooLarge("the decompressed request body is larger than max_request_mb")
            if not stream.eof:
                raise zlib.error("truncated")
            rest = stream.unused_data
            if rest and wbits != _WBITS["gzip"]:
                raise zlib.error("data after the end of the stream")
    except zlib.error:
        raise BadRequest(
            f"the request body is not valid {encoding} data", code="invalid_content_encoding"
        ) from None
    return bytes(out)
