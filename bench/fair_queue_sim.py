"""Issue 13 on virtual time: how long a light user waits behind a heavy user's backlog, first
come first served (the engine's own queue) against the gateway's fair queue in front of it.

Run from the repository root (it takes well under a second; nothing real is started)::

    python bench/fair_queue_sim.py
    python bench/fair_queue_sim.py --batch-cost 0.2    # an engine that batches well (a GPU)
    python bench/fair_queue_sim.py --charge stream     # charge each token as it streams

The engine model: ``slots`` sequences decode together, one token each per step; a step with k
sequences takes ``step × (1 + batch_cost × (k − 1))``, ``step`` chosen so that one heavy
request alone takes ``--heavy-seconds``. ``batch_cost`` 1 (the default) is a CPU build where
two sequences take twice as long as one — what issue 13 measured (12 heavy requests on 2 slots,
the light user's first token after 42 s). Requests beyond the slots wait in the engine's FIFO
queue, as in llama-server. Prompts are short; prefill is not modelled. With the fair queue the
gateway lets ``slots`` requests through (``max_inflight: 2``) and charges each request's
tokens when it ends, before its slot is handed on, as the gateway does (``proxy/slots.py``);
``--charge stream`` charges the prompt on entry and each token as it streams instead.
The run is deterministic; it prints figures, FIFO being the baseline, and asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from collections import deque
from collections.abc import AsyncIterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from support.virtual_time import run_virtual

from authproxy.queue.fair_queue import FairQueue

PROMPT_TOKENS = 30


@dataclass(slots=True)
class _Sequence:
    left: int
    tokens: asyncio.Queue[None]


class Engine:
    """A decoder with ``slots`` sequences in flight and a FIFO queue for the rest."""

    def __init__(self, *, slots: int, step: float, batch_cost: float) -> None:
        self.slots, self.step, self.batch_cost = slots, step, batch_cost
        self._queued: deque[_Sequence] = deque()
        self._running: list[_Sequence] = []
        self._work = asyncio.Event()

    async def run(self) -> None:
        while True:
            while self._queued and len(self._running) < self.slots:
                self._running.append(self._queued.popleft())
            if not self._running:
                self._work.clear()
                await self._work.wait()
                continue
            await asyncio.sleep(self.step * (1 + self.batch_cost * (len(self._running) - 1)))
            for seq in self._running:
                seq.left -= 1
                seq.tokens.put_nowait(None)
            self._running = [seq for seq in self._running if seq.left]

    async def generate(self, tokens: int) -> AsyncIterator[None]:
        seq = _Sequence(tokens, asyncio.Queue())
        self._queued.append(seq)
        self._work.set()
        for _ in range(tokens):
            await seq.tokens.get()
            yield


@dataclass(frozen=True, slots=True)
class Result:
    ttft: float  # seconds from sending to the first token
    done: float  # seconds from sending to the last


async def _stream(
    engine: Engine, tokens: int, queue: FairQueue | None, user: str, *, as_it_streams: bool
) -> Result:
    loop = asyncio.get_running_loop()
    sent, first = loop.time(), None
    on_entry = PROMPT_TOKENS if as_it_streams else 0
    async with queue.slot(user=user, prompt_tokens=on_entry) if queue else nullcontext() as ticket:
        async for _ in engine.generate(tokens):
            first = first or loop.time()
            if ticket is not None and as_it_streams:
                ticket.charge(output_tokens=1)
        if ticket is not None:
            ticket.settle(input_tokens=PROMPT_TOKENS, output_tokens=tokens)
    assert first is not None
    return Result(first - sent, loop.time() - sent)


async def scenario(args: argparse.Namespace, *, fair: bool) -> tuple[Result, list[Result]]:
    step = args.heavy_seconds / args.heavy_tokens
    engine = Engine(slots=args.slots, step=step, batch_cost=args.batch_cost)
    queue = FairQueue(capacity=args.slots, timeout=3600, max_per_user=64) if fair else None
    running = asyncio.create_task(engine.run())

    streaming = args.charge == "stream"

    async def light() -> Result:
        await asyncio.sleep(args.light_at)
        return await _stream(engine, args.light_tokens, queue, "light", as_it_streams=streaming)

    heavy = [
        _stream(engine, args.heavy_tokens, queue, "heavy", as_it_streams=streaming)
        for _ in range(args.heavy)
    ]
    light_result, *heavy_results = await asyncio.gather(light(), *heavy)
    running.cancel()
    return light_result, heavy_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--heavy", type=int, default=12, help="concurrent heavy requests")
    parser.add_argument("--heavy-tokens", type=int, default=256)
    parser.add_argument("--heavy-seconds", type=float, default=3.4, help="one heavy, alone")
    parser.add_argument("--light-tokens", type=int, default=8)
    parser.add_argument("--light-at", type=float, default=1.0, help="seconds after the heavy")
    parser.add_argument("--batch-cost", type=float, default=1.0)
    parser.add_argument("--charge", choices=["end", "stream"], default="end")
    args = parser.parse_args()

    together = args.heavy_seconds * (1 + args.batch_cost * (args.slots - 1))
    print(
        f"{args.slots} slots; heavy user: {args.heavy} concurrent requests of "
        f"{args.heavy_tokens} tokens ({args.heavy_seconds:g} s alone, {together:.1f} s "
        f"{args.slots} at a time); light user: {args.light_tokens} tokens at t = "
        f"{args.light_at:g} s\n"
    )
    print(f"{'':22}{'light TTFT':>11}{'light done':>12}   heavy done: first  median    last")
    rows = {}
    for name, fair in (("FIFO (engine queue)", False), ("fair queue", True)):
        light, heavy = run_virtual(scenario(args, fair=fair))
        ends = sorted(r.done for r in heavy)
        rows[name] = light, ends
        print(
            f"{name:22}{light.ttft:>10.1f}s{light.done:>11.1f}s"
            f"{ends[0]:>18.1f}s{statistics.median(ends):>7.1f}s{ends[-1]:>7.1f}s"
        )
    (fifo, fifo_heavy), (fair_light, fair_heavy) = rows.values()
    print(
        f"\nlight TTFT, fair / FIFO: {fair_light.ttft / fifo.ttft:.2f} "
        f"({fifo.ttft / fair_light.ttft:.1f}x sooner); one heavy request takes {together:.1f} s; "
        f"the heavy user's last request ends {fair_heavy[-1] - fifo_heavy[-1]:+.2f} s later"
    )


if __name__ == "__main__":
    main()
