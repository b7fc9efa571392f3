"""The benchmark's table: metric, direct, gateway, added or ratio, target, PASS / MISS."""

from __future__ import annotations

from dataclasses import dataclass, fields

from bench.latency import Summary
from bench.load import LoadResult

P50_TARGET_MS = 0.3
P99_TARGET_MS = 1.0
STREAM_RATIO_TARGET = 0.80


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    direct: str
    gateway: str
    delta: str
    target: str
    verdict: str


def latency_rows(kind: str, direct: Summary, gateway: Summary) -> list[Row]:
    rows = []
    for label, d, g, limit in (
        ("p50", direct.p50_ms, gateway.p50_ms, P50_TARGET_MS),
        ("p99", direct.p99_ms, gateway.p99_ms, P99_TARGET_MS),
    ):
        added = g - d
        rows.append(
            Row(
                metric=f"{kind} latency {label}, c=1 (ms)",
                direct=f"{d:.3f}",
                gateway=f"{g:.3f}",
                delta=f"{added:+.3f} ms",
                target=f"added <= {limit:g} ms",
                verdict="PASS" if added <= limit else "MISS",
            )
        )
    return rows


def throughput_row(kind: str, connections: int, direct: LoadResult, gateway: LoadResult) -> Row:
    ratio = gateway.rps / direct.rps if direct.rps > 0 else 0.0
    streaming = kind == "stream"
    return Row(
        metric=f"{kind} throughput, c={connections} (req/s)",
        direct=f"{direct.rps:.0f}",
        gateway=f"{gateway.rps:.0f}",
        delta=f"{100 * ratio:.1f} %",
        target=f">= {100 * STREAM_RATIO_TARGET:.0f} % of direct" if streaming else "(info)",
        verdict=("PASS" if ratio >= STREAM_RATIO_TARGET else "MISS") if streaming else "",
    )


def render(rows: list[Row]) -> str:
    header = Row("metric", "direct", "gateway", "added / ratio", "target", "")
    table = [header, *rows]
    names = [f.name for f in fields(Row)]
    widths = [max(len(getattr(r, name)) for r in table) for name in names]
    lines = []
    for i, row in enumerate(table):
        cells = [getattr(row, name) for name in names]
        line = "  ".join(
            c.ljust(w) if j in (0, 4, 5) else c.rjust(w)
            for j, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        lines.append(line.rstrip())
        if i == 0:
            lines.append("-" * len(line))
    return "\n".join(lines)


def cpu_line(label: str, result: LoadResult) -> str:
    """Two lines: rate and latency, then each process's CPU (% of one core, µs per request)."""
    head = f"  {label:<15} {result.rps:7.0f} req/s"
    if result.p50_ms is not None and result.p99_ms is not None:
        head += f", latency p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
    if result.errors:
        head += f", {result.errors} FAILED requests"
    parts = []
    for name, pct in result.cpu_percent.items():
        if pct < 0.5:
            continue
        us = result.cpu_us_per_request.get(name)
        parts.append(f"{name} {pct:.0f} %" + (f" ({us:.0f} µs/req)" if us else ""))
    return f"{head}\n  {'':<15} CPU: {', '.join(parts)}"
