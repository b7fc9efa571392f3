"""A small HTTP/1.1 client for the request path, on a bare ``asyncio.Protocol``.

The gateway forwards every request to an engine it configured itself: one origin, plain
HTTP/1.1, keep-alive, no redirects, no cookies, no decompression, no proxies. aiohttp's
general-purpose client does all of that and more, and costs ~50 µs of Python per request on
this path (``bench/overhead.py``); this one writes the request in one piece, reads the head in
one pass and hands body bytes to the relay as they arrive.

It imports nothing of authproxy: ``pool.Pool`` sends, ``response.Response`` is the answer,
``errors`` says what went wrong in the terms the forwarder decides on.
"""

from authproxy.http1.errors import BadAnswer, ConnectFailed, CutOff, Disconnected, HttpError
from authproxy.http1.origin import Origin
from authproxy.http1.pool import Pool
from authproxy.http1.response import Response

__all__ = [
    "BadAnswer",
    "ConnectFailed",
    "CutOff",
    "Disconnected",
    "HttpError",
    "Origin",
    "Pool",
    "Response",
]
