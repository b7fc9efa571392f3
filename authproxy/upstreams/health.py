"""Whether an upstream gets traffic: a small state machine fed by active probes and by
failures seen on real requests.

* Unknown (never checked) counts as routable, so a gateway without checks still forwards.
* The first probe decides at once, so readiness is truthful right after start.
* Afterwards ``unhealthy_after`` consecutive failed probes take an upstream out and
  ``healthy_after`` consecutive good ones put it back, so one lost probe does not flap it.
* A failure on a real request (refused, reset, no answer in time) takes it out at once
  ("passive ejection"): the next request should not pay for the same discovery. Only active
  probes bring it back, because no traffic goes to an ejected upstream to prove it well.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

__all__ = ["HealthState", "ProbeResult", "probe"]


@dataclass(slots=True, kw_only=True)
class HealthState:
    healthy: bool | None = None  # None: not checked yet
    successes: int = 0  # consecutive good probes
    failures: int = 0  # consecutive failed probes
    reason: str | None = None  # why it is out, for logs and the admin

    @property
    def routable(self) -> bool:
        return self.healthy is not False

    def probe_succeeded(self, *, healthy_after: int) -> bool:
        """Record a good probe; True when this put the upstream (back) into rotation."""
        self.failures = 0
        self.successes += 1
        if self.healthy is None or (self.healthy is False and self.successes >= healthy_after):
            return self._set(healthy=True, reason=None)
        return False

    def probe_failed(self, reason: str, *, unhealthy_after: int) -> bool:
        """Record a failed probe; True when this took the upstream out of rotation."""
        self.successes = 0
        self.failures += 1
        if self.healthy is False:
            self.reason = reason
            return False
        if self.healthy is None or self.failures >= unhealthy_after:
            return self._set(healthy=False, reason=reason)
        return False

    def eject(self, reason: str) -> bool:
        """A real request failed to reach it: out at once; True when this changed the state."""
        self.successes = 0
        if self.healthy is False:
            self.reason = reason
            return False
        return self._set(healthy=False, reason=reason)

    def _set(self, *, healthy: bool, reason: str | None) -> bool:
        self.healthy = healthy
        self.reason = reason
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeResult:
    """One GET of an engine's health path: the status it answered, or why none came back."""

    timeout: float
    status: int | None = None
    error: TimeoutError | aiohttp.ClientError | None = None

    @property
    def ok(self) -> bool:
        """Only 2xx counts: llama-server answers 503 while it loads its model."""
        return self.status is not None and 200 <= self.status < 300

    @property
    def problem(self) -> str | None:
        """Why the check failed, as the gateway logs it (None: it passed)."""
        if self.ok:
            return None
        if self.status is not None:
            return f"health check answered HTTP {self.status}"
        if isinstance(self.error, TimeoutError):
            return f"health check got no answer within {self.timeout:g}s"
        return f"health check failed: {self.error or type(self.error).__name__}"

    @property
    def detail(self) -> str:
        """A word or two for the admin's table: ok, HTTP 503, timed out, connection refused."""
        if self.ok:
            return "ok"
        if self.status is not None:
            return f"HTTP {self.status}"
        if isinstance(self.error, TimeoutError):
            return "timed out"
        if isinstance(self.error, aiohttp.ClientConnectorError):
            return "connection refused"
        return type(self.error).__name__


async def probe(
    session: aiohttp.ClientSession,
    url: str,
    *,
    headers: dict[str, str],
    timeout: float,
) -> ProbeResult:
    """GET the engine's health path, once; redirects are never followed (a redirecting
    health path is a misconfiguration, not health). The gateway's monitor and the admin's
    status both ask through here."""
    try:
        async with session.get(
            url,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            return ProbeResult(timeout=timeout, status=resp.status)
    except (TimeoutError, aiohttp.ClientError) as exc:
        return ProbeResult(timeout=timeout, error=exc)
