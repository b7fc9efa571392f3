"""Cross-site request forgery: the two defences a cookie-authenticated request gets.

1. Every form carries a token: HMAC-SHA256 under the server secret of the value it is bound to
   (the session cookie for the account page and logout, the short-lived login cookie for the
   password form), so a page on another site can neither read nor compute it.
2. API calls made with the session cookie instead of a key (the engine's web UI, a script in the
   page) must come from this very origin when they change anything: the browser's ``Origin``
   (or ``Sec-Fetch-Site``) header must say so. ``SameSite=Lax`` already keeps the cookie off
   cross-site POSTs; this also closes sibling subdomains (same site, other origin) and old
   browsers. Tools that are not browsers use keys and are not affected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

from aiohttp import web

from authproxy.errors import PermissionDenied

__all__ = [
    "FIELD",
    "SAFE_METHODS",
    "CsrfTokens",
    "own_origin",
    "require_same_origin",
    "same_origin",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf"


class CsrfTokens:
    def __init__(self, *, secret: bytes) -> None:
        self._secret = secret

    def token(self, binding: str, purpose: str) -> str:
        mac = hmac.new(self._secret, f"csrf\0{purpose}\0{binding}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")

    def check(self, binding: str | None, purpose: str, presented: object) -> bool:
        if not binding or not isinstance(presented, str) or not presented:
            return False
        if not presented.isascii():  # compare_digest refuses non-ASCII text
            return False
        return hmac.compare_digest(self.token(binding, purpose), presented)


def own_origin(request: web.Request, *, tls: bool) -> str:
    return f"{'https' if tls else 'http'}://{request.host}".lower()


def same_origin(request: web.Request, *, tls: bool) -> bool:
    """Whether the browser says this request comes from a page of this gateway's origin."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is not None:
        try:
            parts = urlsplit(origin)
        except ValueError:  # e.g. an unclosed IPv6 bracket: no origin of ours
            return False
        return f"{parts.scheme}://{parts.netloc}".lower() == own_origin(request, tls=tls)
    return fetch_site is not None  # neither header: nothing vouches for it


def require_same_origin(request: web.Request, *, tls: bool) -> None:
    """For a request authenticated by the session cookie: refuse a cross-origin change."""
    if request.method in SAFE_METHODS or same_origin(request, tls=tls):
        return
    raise PermissionDenied(
        "a request authenticated by the browser session cookie must come from this origin"
        " (Origin header); scripts and tools should send an API key instead",
        code="cross_origin_request",
    )
