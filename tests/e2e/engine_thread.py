"""The fake engine (tests/fakes) on its own event loop in a thread, for the end-to-end tests
that need a fault only a fake can make on demand (an engine cut off mid-stream), next to
components driven synchronously (Playwright, a gateway process)."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from fakes.engine import FakeEngine, running_engine


class EngineThread:
    """``with EngineThread(["tiny"]) as engine:`` — a FakeEngine served until the block ends."""

    def __init__(self, models: list[str]) -> None:
        self._models = models
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-engine", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._engine: FakeEngine | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # told to the starting thread, which raises it
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        async with running_engine(models=self._models) as engine:
            self._loop, self._stop, self._engine = (
                asyncio.get_running_loop(),
                asyncio.Event(),
                engine,
            )
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> FakeEngine:
        self._thread.start()
        if not self._ready.wait(15) or self._engine is None:
            raise RuntimeError(f"the fake engine did not start: {self._error!r}")
        return self._engine

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
