"""The paths the gateway serves, by raw path. Anything not listed here is refused."""

from __future__ import annotations

from dataclasses import dataclass

from authproxy.proxy import output_limits
from authproxy.proxy.output_limits import OutputRule
from authproxy.proxy.usage import Dialect


@dataclass(frozen=True, slots=True)
class Endpoint:
    path: str
    dialect: Dialect
    can_stream: bool
    takes_stream_options: bool  # accepts stream_options.include_usage (OpenAI streams)
    output: OutputRule | None  # where the reserved output limit goes; None: generates nothing


FORWARDED: dict[str, Endpoint] = {
    e.path: e
    for e in (
        Endpoint("/v1/chat/completions", "openai", True, True, output_limits.CHAT),
        Endpoint("/v1/completions", "openai", True, True, output_limits.COMPLETIONS),
        Endpoint("/v1/embeddings", "openai", False, False, None),
        Endpoint("/v1/messages", "anthropic", True, False, output_limits.MESSAGES),
    )
}

MODELS_PATH = "/v1/models"
METRICS_PATH = "/metrics"  # admin key, or a direct local scrape without one (metrics_http.py)
# Browser login: public (they make their own checks: CSRF tokens, state, rate limits).
AUTH_PATHS = frozenset({"/auth/login", "/auth/oidc", "/auth/callback", "/auth/logout"})
# Pages for a signed-in browser; without a session they redirect to the sign-in page.
PAGE_PATHS = frozenset({"/", "/account", "/account/keys", "/account/keys/revoke"})
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", *AUTH_PATHS})
KNOWN_PATHS = frozenset({*FORWARDED, MODELS_PATH, METRICS_PATH, *PUBLIC_PATHS, *PAGE_PATHS})
