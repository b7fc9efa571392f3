"""Records the tests build: one factory per record, every field a default a test may override.

A test names only what it is about (``usage_row(ts=5.0, user_id=alice.id, status=502)``); the
rest is a plausible chat completion.
"""

from __future__ import annotations

from authproxy.store.records import UsageRow

CHAT = "/v1/chat/completions"


def usage_row(
    *,
    ts: float = 0.0,
    request_id: str = "r",
    user_id: int | None = None,
    key_id: int | None = None,
    model: str | None = "m",
    upstream: str | None = "up",
    endpoint: str = CHAT,
    status: int = 200,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    duration_ms: float = 1.0,
    ttft_ms: float | None = None,
    stream: bool = False,
    usage_source: str = "engine",
) -> UsageRow:
    """One request's usage row, as the gateway writes it."""
    return UsageRow(
        ts=ts,
        request_id=request_id,
        user_id=user_id,
        key_id=key_id,
        model=model,
        upstream=upstream,
        endpoint=endpoint,
        status=status,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        duration_ms=duration_ms,
        ttft_ms=ttft_ms,
        stream=stream,
        usage_source=usage_source,
    )
