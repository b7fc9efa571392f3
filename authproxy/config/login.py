"""Configuration of browser login: the OIDC provider, sessions, and local password login."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["CALLBACK_PATH", "Oidc", "PasswordLogin", "Sessions"]

CALLBACK_PATH = "/auth/callback"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not a URL (want https://host/...)")
    if parts.fragment:
        raise ValueError("must not carry a fragment")
    return value


class Oidc(_Strict):
    """Browser login (and optionally API bearer tokens) through an OpenID Connect provider."""

    issuer: str  # exactly as the provider's discovery document states it
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None  # null: a public client (PKCE only)
    redirect_url: str  # https://gateway.example.com/auth/callback, registered at the provider
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    # The gateway user name at a first sign-in; when absent: email_claim, then sub.
    username_claim: str = "preferred_username"
    email_claim: str = "email"
    role_claim: str = "groups"  # a string or a list of strings in the ID token or userinfo
    roles_map: dict[str, str] = Field(default_factory=dict)  # claim value -> role; first match wins
    default_role: str | None = None  # for users no mapping matches; null: the top-level default
    unknown_users: Literal["create", "reject"] = "create"
    link_existing_users: bool = False  # a first sign-in may take over a same-named unlinked user
    clock_skew: float = Field(default=60.0, ge=0, le=300)  # seconds of leeway on exp/iat/nbf
    token_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] | None = None
    metadata_ttl: float = Field(
        default=3600.0, gt=0
    )  # discovery document and JWKS cached this long
    timeout: float = Field(default=10.0, gt=0)  # seconds for each call to the provider
    accept_bearer_tokens: bool = False  # API calls with an IdP-issued JWT act as that user
    bearer_audience: str | None = None  # the `aud` such tokens must carry; null: client_id
    button_label: str = "Sign in with single sign-on"

    @field_validator("issuer", "redirect_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("redirect_url")
    @classmethod
    def _callback(cls, value: str) -> str:
        if urlsplit(value).path != CALLBACK_PATH:
            raise ValueError(f"must end in {CALLBACK_PATH} (the gateway's callback path)")
        return value

    @field_validator("scopes")
    @classmethod
    def _openid(cls, value: list[str]) -> list[str]:
        if "openid" not in value:
            raise ValueError("must include `openid`")
        return value

    @model_validator(mode="after")
    def _auth_method(self) -> Oidc:
        if self.token_auth_method not in (None, "none") and self.client_secret is None:
            raise ValueError(f"token_auth_method {self.token_auth_method} needs a client_secret")
        return self

    @property
    def auth_method(self) -> str:
        if self.token_auth_method is not None:
            return self.token_auth_method
        return "client_secret_basic" if self.client_secret is not None else "none"

    @property
    def audience_for_bearer(self) -> str:
        return self.bearer_audience or self.client_id


class Sessions(_Strict):
    """Server-side browser sessions."""

    idle_timeout: float = Field(default=12 * 3600.0, gt=0)  # ends after this long unused
    absolute_timeout: float = Field(default=7 * 86400.0, gt=0)  # ends this long after login
    cookie_name: str = Field(default="authproxy_session", pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @model_validator(mode="after")
    def _order(self) -> Sessions:
        if self.idle_timeout > self.absolute_timeout:
            raise ValueError("idle_timeout must not exceed absolute_timeout")
        return self


class PasswordLogin(_Strict):
    """Local accounts (`authproxy users passwd NAME`): installs without a provider, break-glass."""

    enabled: bool = True
    max_failures_per_user: int = Field(default=5, ge=1)  # failed logins per user name ...
    max_failures_per_address: int = Field(default=20, ge=1)  # ... and per client address ...
    window: float = Field(default=900.0, gt=0)  # ... within this many seconds; then refused
