"""The project's Caddyfile, run by Debian's real Caddy in front of the real gateway and engine.

client ──HTTPS──▶ Caddy (127.0.0.1, tls internal) ──▶ authproxy ──▶ llama-server (tiny model)
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import openai
import pytest

from .caddy import SITE, Caddy, find_caddy
from .gateway import Gateway
from .llama_server import LlamaServer

pytestmark = pytest.mark.skipif(
    find_caddy() is None, reason="caddy missing: tests/setup/system_packages.sh installs it"
)
FORGED = "203.0.113.7"  # a documentation address a client claims to be


@dataclass
class Stack:
    caddy: Caddy
    gateway: Gateway
    key: str

    def access_line(self, request_id: str, within: float = 5.0) -> dict[str, Any]:
        """The gateway's JSON access-log line for one request (the log is its stderr)."""
        deadline = time.monotonic() + within
        while True:
            for line in self.gateway.log_path.read_text(errors="replace").splitlines():
                if line.startswith("{") and f'"request_id":"{request_id}"' in line:
                    entry: dict[str, Any] = json.loads(line)
                    return entry
            if time.monotonic() > deadline:
                raise AssertionError(f"no access log line for {request_id}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def stack(llama_server: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    gateway = Gateway(
        workdir=tmp_path_factory.mktemp("gateway-behind-caddy"),
        settings={"upstreams": [{"name": "llama", "url": llama_server.base_url, "discover": True}]},
    )
    key = gateway.run("init").strip()
    with gateway, Caddy(workdir=tmp_path_factory.mktemp("caddy"), upstream_port=gateway.port) as c:
        yield Stack(c, gateway, key)


def _session(stack: Stack, source: str = "127.0.0.1") -> aiohttp.ClientSession:
    """A client connecting from ``source`` (any 127.x address is this host's loopback)."""
    connector = aiohttp.TCPConnector(
        ssl=stack.caddy.ssl_context(), family=socket.AF_INET, local_addr=(source, 0)
    )
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))


def _via_caddy(stack: Stack, path: str) -> dict[str, Any]:
    """Request arguments for `path` through Caddy: TLS to 127.0.0.1, SNI and Host `localhost`."""
    return {
        "url": f"https://127.0.0.1:{stack.caddy.https_port}{path}",
        "server_hostname": SITE,
        "headers": {"Host": f"{SITE}:{stack.caddy.https_port}"},
    }


async def test_a_streamed_completion_arrives_chunk_by_chunk_over_https(stack: Stack) -> None:
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Count."}],
        "stream": True,
        "max_tokens": 1500,
        "ignore_eos": True,  # llama-server: generate all 1500 tokens
    }
    request = _via_caddy(stack, "/v1/chat/completions")
    request["headers"]["Authorization"] = f"Bearer {stack.key}"
    arrivals: list[float] = []
    async with _session(stack) as session:
        sent = time.monotonic()
        async with session.post(json=body, **request) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
            async for raw in resp.content:
                line = raw.decode().strip()
                if line.startswith("data: {") and '"content"' in line:
                    arrivals.append(time.monotonic() - sent)
    first, last = arrivals[0], arrivals[-1]
    buckets = {int(t / 0.05) for t in arrivals}  # 50 ms slots in which chunks arrived
    figures = f"{len(arrivals)} chunks, first {first:.3f}s, last {last:.3f}s, {len(buckets)} slots"
    print(f"\nstream through Caddy: {figures}")
    assert len(arrivals) >= 1000, figures
    # Buffering anywhere (Caddy, gateway) would deliver everything at the end, at once.
    assert first < 0.5 * last, figures
    assert last - first >= 0.3, figures
    assert len(buckets) >= 6, figures


async def test_the_gateway_sees_the_client_address_and_not_a_forged_one(stack: Stack) -> None:
    async def seen_as(session: aiohttp.ClientSession, request: dict[str, Any]) -> str:
        request_id = uuid.uuid4().hex
        request["headers"].update({"X-Request-Id": request_id, "X-Forwarded-For": FORGED,
                                   "Forwarded": f"for={FORGED}", "X-Real-IP": FORGED})  # fmt: skip
        request["headers"]["Authorization"] = f"Bearer {stack.key}"
        async with session.get(**request) as resp:
            assert resp.status == 200
        client: str = stack.access_line(request_id)["client"]
        return client

    direct = {"url": stack.gateway.base_url + "/v1/models", "headers": {}}
    for source in ("127.0.0.1", "127.0.0.2"):
        async with _session(stack, source) as session:
            # Through Caddy: the TCP peer Caddy accepted, whatever the client claims.
            assert await seen_as(session, _via_caddy(stack, "/v1/models")) == source
            # Straight to the gateway: it believes X-Forwarded-For from a trusted proxy
            # (127.0.0.1), so it is Caddy replacing the header that defeats the forgery...
            believed = FORGED if source == "127.0.0.1" else source
            assert await seen_as(session, dict(direct, headers={})) == believed
    # ...and from 127.0.0.2 (not a trusted proxy) the header was ignored, as it should be.


# The body one byte over the limit is sent from bytes on purpose; aiohttp's advice to stream so
# large a body is about its event loop, not about what this test checks.
@pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes:ResourceWarning")
async def test_security_headers_and_the_body_limit(stack: Stack) -> None:
    async with _session(stack) as session:
        async with session.get(**_via_caddy(stack, "/healthz")) as resp:
            assert resp.status == 200
            headers = resp.headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "Server" not in headers

        # One byte over 32 MiB (the gateway's max_request_mb: 32): Caddy answers 413 itself,
        # in the OpenAI error shape, and the gateway never sees the request.
        request = _via_caddy(stack, "/v1/chat/completions")
        request_id = uuid.uuid4().hex
        request["headers"].update({"Authorization": f"Bearer {stack.key}",
                                   "X-Request-Id": request_id})  # fmt: skip
        async with session.post(data=b"x" * (32 * 1024 * 1024 + 1), **request) as resp:
            assert resp.status == 413
            error = (await resp.json())["error"]
        assert error["code"] == "request_too_large"
        with pytest.raises(AssertionError, match="no access log line"):
            stack.access_line(request_id, within=0.5)


def test_the_readme_client_settings_work_over_https(stack: Stack) -> None:
    """README, "Connect your tools": the openai SDK and curl, trusting Caddy's internal CA."""
    base_url = f"{stack.caddy.base_url}/v1"
    client = openai.OpenAI(
        base_url=base_url,
        api_key=stack.key,
        http_client=openai.DefaultHttpxClient(
            verify=ssl.create_default_context(cafile=str(stack.caddy.root_cert))
        ),
        max_retries=0,
    )
    with client:
        stream = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "Hi"}],
            max_tokens=16,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0

    curl = shutil.which("curl")
    assert curl, "curl is part of the test setup"
    done = subprocess.run(
        [curl, "-sS", "--fail", "--cacert", str(stack.caddy.root_cert),
         "--resolve", f"{SITE}:{stack.caddy.https_port}:127.0.0.1",
         f"{base_url}/models", "-H", f"Authorization: Bearer {stack.key}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [m["id"] for m in json.loads(done.stdout)["data"]] == ["tiny"]
