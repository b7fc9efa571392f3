"""What re-encoding every request body costs, and whether orjson earns its place.

Run from the repository root::

    python bench/json_cost.py           # about 20 seconds
    python bench/json_cost.py --quick   # a smoke run

For realistic bodies (a 1 KB chat, a 100 KB prompt in one message, 100 KB over 200 messages
with tools, 100 KB of CJK text), as clients send them (``json.dumps``' defaults), it times in
one run and on the same bytes:

* ``before``: ``json.loads`` of the client's bytes — what the gateway did before, when it
  forwarded those bytes unchanged (the baseline);
* ``json.dumps``: the gateway's path (``prepare`` + ``for_engine``: the parse with the
  duplicate-key hook, the checks, the prompt estimate, the canonical body) with the standard
  library encoding the body;
* ``orjson``: the same path as shipped, orjson encoding the body;
* ``orjson only``: ``orjson.loads`` + ``orjson.dumps``, for reference: orjson cannot report a
  key given twice, so it cannot do the parse.

It prints microseconds per body (best of several rounds) and ratios against the baseline and
against the all-stdlib path. It asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import random
import string
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson

from authproxy.config.schema import Quotas
from authproxy.proxy import json_body
from authproxy.proxy.endpoints import row
from authproxy.proxy.request_body import for_engine, prepare

CHAT = row("/v1/chat/completions")
SETTINGS = Quotas()


def _code_like(rng: random.Random, size: int) -> str:
    """Source-code-ish text: words, punctuation, quotes, newlines and indentation."""
    alphabet = string.ascii_letters + string.digits + "     ().,:;=_-+*/<>[]{}\"'#\n\t"
    return "".join(rng.choice(alphabet) for _ in range(size))


def bodies() -> dict[str, bytes]:
    rng = random.Random(20261202)
    cjk = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(34_000))  # ~100 KB UTF-8
    tool = {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file of the workspace",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }
    made: dict[str, dict[str, Any]] = {
        "1 KB chat": {
            "model": "tiny",
            "messages": [
                {"role": "system", "content": "You are a careful assistant."},
                {"role": "user", "content": _code_like(rng, 900)},
            ],
            "max_tokens": 256,
            "temperature": 0.2,
        },
        "100 KB, one message": {
            "model": "tiny",
            "messages": [{"role": "user", "content": _code_like(rng, 100_000)}],
            "stream": True,
        },
        "100 KB, 200 messages": {
            "model": "tiny",
            "messages": [
                {"role": ("user", "assistant")[i % 2], "content": _code_like(rng, 480)}
                for i in range(200)
            ],
            "tools": [tool] * 20,
            "stream": True,
        },
        "100 KB CJK": {"model": "tiny", "messages": [{"role": "user", "content": cjk}]},
    }
    # Clients send what json.dumps sends by default: ASCII with \\u escapes, ", " separators.
    return {name: json.dumps(body).encode() for name, body in made.items()}


def _best(fn: Callable[[], object], rounds: int, budget: float) -> float:
    """Microseconds per call: the best round of ``rounds``, each about ``budget`` seconds."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    per_round = max(1, int(budget / once))
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(per_round):
            fn()
        best = min(best, (time.perf_counter() - start) / per_round)
    return best * 1e6


def _stdlib_encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@contextlib.contextmanager
def _encoder(encode: Callable[[Any], bytes]) -> Iterator[None]:
    """The gateway's path with another canonical encoder, for the comparison."""
    shipped = json_body.encode
    setattr(json_body, "encode", encode)  # noqa: B010 - a module function swapped for a run
    try:
        yield
    finally:
        setattr(json_body, "encode", shipped)  # noqa: B010


def measure(raw: bytes, rounds: int, budget: float) -> dict[str, float]:
    def gateway() -> object:
        return for_engine(prepare(CHAT, raw, settings=SETTINGS), "tiny")

    with _encoder(_stdlib_encode):
        stdlib = _best(gateway, rounds, budget)
    return {
        "before": _best(lambda: json.loads(raw), rounds, budget),
        "json.dumps": stdlib,
        "orjson": _best(gateway, rounds, budget),
        "orjson only": _best(lambda: orjson.dumps(orjson.loads(raw)), rounds, budget),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    args = parser.parse_args(argv)
    rounds, budget = (3, 0.05) if args.quick else (7, 0.3)
    print(
        f"json_cost: Python {platform.python_version()}, orjson {orjson.__version__}, "
        f"{rounds} rounds of ~{budget:g} s, best round"
    )
    header = (
        f"{'body':<22}{'bytes':>8}{'before':>10}{'json.dumps':>12}{'orjson':>10}"
        f"{'orjson only':>13}{'orjson/before':>15}{'json.dumps/orjson':>19}"
    )
    print(header)
    for name, raw in bodies().items():
        t = measure(raw, rounds, budget)
        print(
            f"{name:<22}{len(raw):>8}{t['before']:>8.1f}us{t['json.dumps']:>10.1f}us"
            f"{t['orjson']:>8.1f}us{t['orjson only']:>11.1f}us"
            f"{t['orjson'] / t['before']:>14.2f}x{t['json.dumps'] / t['orjson']:>18.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
