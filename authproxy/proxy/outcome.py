"""What happened to one forwarded request, filled in as it goes: for its usage row and the
access log line."""

from __future__ import annotations

from dataclasses import dataclass

from authproxy.proxy.usage import Tokens

__all__ = ["Outcome"]


@dataclass(slots=True)
class Outcome:
    status: int = 0
    tokens: Tokens | None = None
    estimated_completion: int = 0
    ttft_ms: float | None = None
    error: str | None = None
    reached: bool = False  # an engine got the request and may have begun on the prompt
    engine_refused: bool = False  # the engine answered with an error or a redirect: ran nothing
    # A stream's last event reached the client: a client that leaves after it cut nothing short.
    delivered: bool = False

    def client_left(self) -> None:
        """The client went away while the answer was on its way: an error, unless it had the
        whole stream already."""
        if not self.delivered:
            self.error = "client_disconnected"
