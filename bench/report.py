"""The benchmark's tables: each path's figures side by side, then the targets with PASS / MISS.

Targets (issue 15), all ratios to figures measured in the same run:
* plain requests/s at c64 >= 75 % of the floor's (the bare aiohttp proxy);
* added p50 latency at c1 <= 1.3 x the floor's;
* CPU per streamed chunk <= 1.2 x the floor's;
* streaming chunks/s at c16 against the real llama-server >= 90 % of direct;
* time to first token added at c1 <= 1 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PATHS", "Figures", "Verdict", "render_figures", "render_verdicts", "verdicts"]

PATHS = ("direct", "caddy", "floor", "gateway")
LABELS = {
    "direct": "direct",
    "caddy": "Caddy reverse_proxy",
    "floor": "bare aiohttp proxy (floor)",
    "gateway": "authproxy",
}
RPS_OF_FLOOR = 0.75
ADDED_P50_OF_FLOOR = 1.3
CPU_CHUNK_OF_FLOOR = 1.2
STREAM_OF_DIRECT = 0.90
TTFT_ADDED_MS = 1.0


@dataclass(slots=True)
class Figures:
    """One path's measurements; None where the path was not measured."""

    rps: float | None = None  # plain requests/s at c64, static upstream
    cpu_us_per_request: float | None = None  # the proxy's CPU per plain request
    p50_ms: float | None = None  # plain request at c1
    cpu_us_per_chunk: float | None = None  # the proxy's CPU per streamed chunk (fake engine)
    chunks_per_s: float | None = None  # llama-server streams at c16
    ttft_ms: float | None = None  # llama-server, c1, p50


@dataclass(frozen=True, slots=True)
class Verdict:
    target: str
    measured: str
    passed: bool | None  # None: not measured


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _added(value: float | None, base: float | None) -> str:
    return "-" if value is None or base is None else f"{value - base:+.2f}"


def render_figures(figures: dict[str, Figures], *, connections: int, streams: int) -> str:
    direct = figures["direct"]
    header = (
        "path",
        f"c{connections} req/s",
        "CPU µs/req",
        "p50 c1 ms",
        "added",
        "CPU µs/chunk",
        f"chunks/s c{streams}",
        "TTFT c1 ms",
        "added",
    )
    rows = [header]
    for path in PATHS:
        f = figures.get(path)
        if f is None:
            continue
        rows.append(
            (
                LABELS[path],
                _num(f.rps, ",.0f"),
                _num(f.cpu_us_per_request, ".0f"),
                _num(f.p50_ms, ".3f"),
                "" if path == "direct" else _added(f.p50_ms, direct.p50_ms),
                _num(f.cpu_us_per_chunk, ".1f"),
                _num(f.chunks_per_s, ",.0f"),
                _num(f.ttft_ms, ".2f"),
                "" if path == "direct" else _added(f.ttft_ms, direct.ttft_ms),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b <= 0 else a / b


def verdicts(figures: dict[str, Figures]) -> list[Verdict]:
    d, f, g = figures["direct"], figures["floor"], figures["gateway"]
    out: list[Verdict] = []
    rps = _ratio(g.rps, f.rps)
    # What one core would serve, 1 / CPU per request: the ratio a busy machine disturbs least.
    by_cpu = _ratio(f.cpu_us_per_request, g.cpu_us_per_request)
    measured = "-"
    if rps is not None:
        measured = f"{rps:.0%} ({_num(g.rps, ',.0f')} vs {_num(f.rps, ',.0f')})"
        if by_cpu is not None:
            measured += f"; by CPU per request {by_cpu:.0%}"
    out.append(
        Verdict(
            f"c64 requests/s >= {RPS_OF_FLOOR:.0%} of the floor's",
            measured,
            None if rps is None else rps >= RPS_OF_FLOOR,
        )
    )
    g_add = None if g.p50_ms is None or d.p50_ms is None else g.p50_ms - d.p50_ms
    f_add = None if f.p50_ms is None or d.p50_ms is None else f.p50_ms - d.p50_ms
    add = _ratio(g_add, f_add)
    out.append(
        Verdict(
            f"added p50 at c1 <= {ADDED_P50_OF_FLOOR:g}x the floor's",
            "-" if add is None else f"{add:.2f}x (+{g_add:.3f} vs +{f_add:.3f} ms)",
            None if add is None else add <= ADDED_P50_OF_FLOOR,
        )
    )
    cpu = _ratio(g.cpu_us_per_chunk, f.cpu_us_per_chunk)
    out.append(
        Verdict(
            f"CPU per streamed chunk <= {CPU_CHUNK_OF_FLOOR:g}x the floor's",
            "-"
            if cpu is None
            else f"{cpu:.2f}x ({g.cpu_us_per_chunk:.1f} vs {f.cpu_us_per_chunk:.1f} µs)",
            None if cpu is None else cpu <= CPU_CHUNK_OF_FLOOR,
        )
    )
    stream = _ratio(g.chunks_per_s, d.chunks_per_s)
    out.append(
        Verdict(
            f"streaming chunks/s >= {STREAM_OF_DIRECT:.0%} of direct (llama-server)",
            "-"
            if stream is None
            else f"{stream:.0%} ({_num(g.chunks_per_s, ',.0f')} vs {_num(d.chunks_per_s, ',.0f')})",
            None if stream is None else stream >= STREAM_OF_DIRECT,
        )
    )
    ttft = None if g.ttft_ms is None or d.ttft_ms is None else g.ttft_ms - d.ttft_ms
    out.append(
        Verdict(
            f"time to first token added at c1 <= {TTFT_ADDED_MS:g} ms",
            "-" if ttft is None else f"{ttft:+.2f} ms ({g.ttft_ms:.2f} vs {d.ttft_ms:.2f} ms)",
            None if ttft is None else ttft <= TTFT_ADDED_MS,
        )
    )
    return out


def render_verdicts(items: list[Verdict]) -> str:
    width = max(len(v.target) for v in items)
    lines = []
    for v in items:
        mark = "-" if v.passed is None else ("PASS" if v.passed else "MISS")
        lines.append(f"  {mark:<4}  {v.target.ljust(width)}  {v.measured}")
    return "\n".join(lines)
