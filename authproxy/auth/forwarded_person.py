"""Open WebUI's forwarded user headers: the person a trusted front end says it calls for.

Open WebUI, run with ``ENABLE_FORWARD_USER_INFO_HEADERS=true``, adds to every call it makes
to an OpenAI connection (chat, models, embeddings, …) four headers about the signed-in person:

- ``X-OpenWebUI-User-Email``: their e-mail address — the one the gateway matches people by;
- ``X-OpenWebUI-User-Name``: their display name (percent-encoded by recent versions);
- ``X-OpenWebUI-User-Id``: Open WebUI's own id of them (a UUID);
- ``X-OpenWebUI-User-Role``: their role *in Open WebUI* (``admin``, ``user``, ``pending``).

With ``FORWARD_USER_INFO_HEADER_JWT_SECRET`` set it sends one signed ``X-OpenWebUI-User-Jwt``
instead; that form is not read here (a request carrying it alone is refused, so that nobody's
use lands on the service's account by mistake). The role header never means anything to the
gateway: a person's role is the one they have here. ``X-OpenWebUI-Chat-Id`` and
``-Message-Id`` say which conversation, not who, and are not looked at.

Only a service key's request is believed (``acting_for.py``); none of these headers is ever
forwarded to an engine (``proxy/headers.py`` passes an allow-list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from multidict import CIMultiDictProxy

from authproxy.errors import BadRequest

__all__ = [
    "EMAIL",
    "ID",
    "JWT",
    "NAME",
    "PERSON_HEADERS",
    "ROLE",
    "ForwardedPerson",
    "forwarded_person",
    "names_a_person",
]

EMAIL = "X-OpenWebUI-User-Email"
NAME = "X-OpenWebUI-User-Name"
ID = "X-OpenWebUI-User-Id"
ROLE = "X-OpenWebUI-User-Role"
JWT = "X-OpenWebUI-User-Jwt"
PERSON_HEADERS = (EMAIL, NAME, ID, ROLE, JWT)

_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+")
_MAX_EMAIL = 254  # RFC 5321's limit of a forward path


@dataclass(frozen=True, slots=True)
class ForwardedPerson:
    email: str  # lower-case: how people are matched
    name: str | None  # the display name, for the audit only
    front_end_id: str | None  # the front end's own id of them, for the audit only


def names_a_person(headers: CIMultiDictProxy[str]) -> bool:
    """Whether the request carries any of the person headers."""
    return any(name in headers for name in PERSON_HEADERS)


def _shown(value: str | None) -> str | None:
    """A header value fit for an audit line: printable, at most 64 characters."""
    if value is None:
        return None
    text = "".join(c for c in value.strip() if c.isprintable())[:64]
    return text or None


def _one(headers: CIMultiDictProxy[str], name: str) -> str | None:
    values = headers.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"the {name} header is given twice", code="ambiguous_person")
    return values[0] if values else None


def forwarded_person(headers: CIMultiDictProxy[str]) -> ForwardedPerson | None:
    """The person the headers name; None when they name nobody. A 400 when they try to but
    carry no usable e-mail address."""
    if not names_a_person(headers):
        return None
    raw = _one(headers, EMAIL)
    if raw is None:
        if JWT in headers:
            raise BadRequest(
                f"{JWT} is not read by this gateway: unset Open WebUI's"
                f" FORWARD_USER_INFO_HEADER_JWT_SECRET so that it sends {EMAIL}",
                code="unsupported_person_header",
            )
        raise BadRequest(
            f"the request names a person but carries no {EMAIL} header", code="invalid_person"
        )
    email = raw.strip().lower()
    if len(email) > _MAX_EMAIL or not email.isprintable() or not _EMAIL_RE.fullmatch(email):
        raise BadRequest(f"{EMAIL} is not an e-mail address", code="invalid_person")
    name = _one(headers, NAME)
    return ForwardedPerson(
        email=email,
        name=_shown(unquote(name) if name is not None else None),
        front_end_id=_shown(_one(headers, ID)),
    )
