"""A fake OpenAI-compatible engine for functional tests and benchmarks.

In tests::

    async with running_engine(models=["tiny"]) as engine:
        ...  # point the gateway at engine.base_url; inspect engine.requests afterwards

Standalone (benchmark)::

    python -m tests.fakes.engine --port 8081 --models a,b --token-delay 0.01

Token accounting is deterministic: prompt tokens are the whitespace-separated words of all
message contents (plus the Anthropic `system`), or of `prompt` / `input` (a token id counts
one); the answer is 8 completion tokens, fewer if the limit (`n_predict`, else
`max_completion_tokens`, else `max_tokens`, as llama-server ranks them) is lower, exactly the
limit with `"ignore_eos": true`; one content chunk ("tok0 ", "tok1 ", ...) each. Faults are
chosen per request by a body field
`"fake": {"fault": ..., "after": N, "delay": s, "token_delay": s}` (see engine_common.FAULTS),
or for every request without one by `engine.fake = {...}`. Health probes (`GET /health`,
503 when `engine.healthy` is False) are counted in `engine.health_checks`, not recorded in
`engine.requests`; `engine.models` can be changed while it runs (discovery sees it), and so
can `engine.total_slots` (what `GET /props` announces, as llama-server does).

Besides chat, completions, embeddings and Anthropic messages, it speaks the Responses API
(engine_responses.py), Ollama's native NDJSON API (engine_ollama.py), and rerank, multipart
audio, speech, the tokenizer, count_tokens and the engines' admin paths (engine_extras.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from .engine_anthropic import messages
from .engine_common import STATE, EngineState, RecordedRequest, openai_error
from .engine_extras import add_extra_routes
from .engine_ollama import add_ollama_routes
from .engine_openai import chat_completions, completions, embeddings, list_models
from .engine_responses import add_response_routes

__all__ = ["FakeEngine", "RecordedRequest", "make_engine_app", "running_engine", "start_engine"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UNAUTHENTICATED_PATHS = frozenset({"/health"})


@web.middleware
async def _engine_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    if request.path == "/health":
        state.health_checks += 1
        return await handler(request)
    if state.record:
        raw = await request.read() if request.can_read_body else b""
        try:
            parsed: Any = await request.json() if raw else None
        except ValueError:
            parsed = None
        state.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query_string=request.query_string,
                headers=[
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers
                ],
                body=parsed,
                raw_body=raw,
            )
        )
    if (
        state.api_key is not None
        and request.path not in UNAUTHENTICATED_PATHS
        and request.headers.get("Authorization") != f"Bearer {state.api_key}"
    ):
        return openai_error(401, "Invalid API key", code="invalid_api_key")
    state.open_requests += 1
    try:
        return await handler(request)
    except asyncio.CancelledError:
        state.cancelled_requests += 1
        raise
    finally:
        state.open_requests -= 1


async def _health(request: web.Request) -> web.Response:
    if not request.app[STATE].healthy:
        return openai_error(503, "Loading model", etype="unavailable_error", code="unavailable")
    return web.json_response({"status": "ok"})


async def _slots(request: web.Request) -> web.Response:
    return web.json_response([{"id": 0, "is_processing": False}])


async def _props(request: web.Request) -> web.Response:
    slots = request.app[STATE].total_slots
    return web.json_response({"default_generation_settings": {}, "total_slots": slots})


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(text=f"fake_requests_total {len(request.app[STATE].requests)}\n")


def make_engine_app(
    *,
    models: Sequence[str] = ("tiny",),
    api_key: str | None = None,
    token_delay: float = 0.0,
    record: bool = True,
) -> web.Application:
    """The fake engine as an aiohttp app. Run it with `handler_cancellation=True`."""
    app = web.Application(middlewares=[_engine_middleware], client_max_size=64 * 1024 * 1024)
    app[STATE] = EngineState(
        models=list(models), api_key=api_key, token_delay=token_delay, record=record
    )
    app.router.add_get("/health", _health)
    app.router.add_get("/v1/models", list_models)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_post("/v1/messages", messages)
    app.router.add_get("/slots", _slots)
    app.router.add_get("/props", _props)
    app.router.add_post("/props", _props)
    app.router.add_get("/metrics", _metrics)
    add_response_routes(app)
    add_ollama_routes(app)
    add_extra_routes(app)
    return app


class FakeEngine:
    """A running fake engine on 127.0.0.1; counters and recorded requests are live views."""

    def __init__(self, runner: web.AppRunner, state: EngineState, port: int) -> None:
        self._runner = runner
        self._state = state
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._state.requests

    @property
    def open_streams(self) -> int:
        return self._state.open_streams

    @property
    def cancelled_streams(self) -> int:
        """Streams whose client went away after the headers and before the end."""
        return self._state.cancelled_streams

    @property
    def open_requests(self) -> int:
        return self._state.open_requests

    @property
    def cancelled_requests(self) -> int:
        """Requests (streamed or not, before or after headers) whose client went away."""
        return self._state.cancelled_requests

    @property
    def health_checks(self) -> int:
        return self._state.health_checks

    @property
    def healthy(self) -> bool:
        return self._state.healthy

    @healthy.setter
    def healthy(self, value: bool) -> None:
        self._state.healthy = value

    @property
    def models(self) -> list[str]:
        return self._state.models

    @models.setter
    def models(self, value: list[str]) -> None:
        self._state.models = list(value)

    @property
    def fake(self) -> dict[str, Any]:
        return self._state.fake

    @fake.setter
    def fake(self, value: dict[str, Any]) -> None:
        self._state.fake = dict(value)

    @property
    def total_slots(self) -> int:
        """What ``GET /props`` announces as ``total_slots`` (llama-server's ``--parallel``)."""
        return self._state.total_slots

    @total_slots.setter
    def total_slots(self, slots: int) -> None:
        self._state.total_slots = slots

    @property
    def token_delay(self) -> float:
        return self._state.token_delay

    @token_delay.setter
    def token_delay(self, seconds: float) -> None:
        self._state.token_delay = seconds

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Poll `predicate` until true; raise TimeoutError after `within` seconds."""
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110 - counters have no event to wait on
                await asyncio.sleep(0.01)

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> FakeEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def start_engine(
    *,
    models: Sequence[str] = ("tiny",),
    api_key: str | None = None,
    token_delay: float = 0.0,
    record: bool = True,
    port: int = 0,
) -> FakeEngine:
    """Start a fake engine on 127.0.0.1 (a free port unless `port` is given)."""
    app = make_engine_app(models=models, api_key=api_key, token_delay=token_delay, record=record)
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = int(runner.addresses[0][1])
    except BaseException:
        await runner.cleanup()
        raise
    return FakeEngine(runner, app[STATE], bound)


@contextlib.asynccontextmanager
async def running_engine(
    *,
    models: Sequence[str] = ("tiny",),
    api_key: str | None = None,
    token_delay: float = 0.0,
    record: bool = True,
    port: int = 0,
) -> AsyncIterator[FakeEngine]:
    engine = await start_engine(
        models=models, api_key=api_key, token_delay=token_delay, record=record, port=port
    )
    try:
        yield engine
    finally:
        await engine.close()


async def _serve(args: argparse.Namespace) -> None:
    models = [m for m in args.models.split(",") if m]
    engine = await start_engine(
        models=models,
        api_key=args.api_key,
        token_delay=args.token_delay,
        record=False,
        port=args.port,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake engine listening on {engine.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await engine.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible engine (127.0.0.1).")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--models", default="tiny", help="comma-separated model ids")
    parser.add_argument("--token-delay", type=float, default=0.0, help="seconds between tokens")
    parser.add_argument("--api-key", default=None, help="require Authorization: Bearer KEY")
    args = parser.parse_args(argv)
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(_serve(args))


if __name__ == "__main__":
    main()
