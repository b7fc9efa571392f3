"""Where the gateway's CPU goes, by function group, from a py-spy raw profile.

    python -m bench.profile_groups /tmp/gw.plain.txt [--thread MainThread]

Each sample is charged to the group of its deepest frame that belongs to a group (so JSON
encoding inside the access log counts as JSON, aiohttp's writer called by our relay counts as
aiohttp); "inclusive" counts a sample for every group anywhere on its stack (so "auth"
includes the library calls authentication makes). Without ``--native`` C code (the HTTP
parser, uvloop, sqlite3, orjson) has no frames: its time shows in the Python caller.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from bench.profile_summary import Stack, parse

__all__ = ["GROUPS", "group_of", "summarize_groups"]

_BODY_MODULES = tuple(
    f"authproxy/proxy/{m}.py"
    for m in (
        "request_body", "json_body", "output_limits", "prompt_estimate", "request_encoding",
        "client_body",
    )
)  # fmt: skip
# Groups whose frames wrap the whole handler (middlewares, the loop): inclusive means nothing.
_WRAPPERS = frozenset({"middleware (ours)", "event loop", "aiohttp server", "forwarding (ours)"})
# (group, file prefixes, functions or None for any); the first rule that matches wins.
GROUPS: tuple[tuple[str, tuple[str, ...], frozenset[str] | None], ...] = (
    ("access log", ("authproxy/web/middleware.py",), frozenset({"_log_access"})),
    ("access log", ("logging/", "authproxy/web/log_redact.py"), None),
    ("JSON", ("json/", "orjson"), None),
    ("auth", ("authproxy/auth/", "authproxy/oidc/"), None),
    ("quota", ("authproxy/limits/",), None),
    ("metrics", ("authproxy/metrics/", "prometheus_client/"), None),
    (
        "usage parsing, SSE relay",
        ("authproxy/proxy/usage.py", "authproxy/proxy/sse_relay.py"),
        None,
    ),
    ("request body checks", _BODY_MODULES, None),
    (
        "accounting, store",
        ("authproxy/proxy/accounting.py", "authproxy/store/", "aiosqlite/"),
        None,
    ),
    ("forwarding (ours)", ("authproxy/proxy/", "authproxy/upstreams/"), None),
    ("middleware (ours)", ("authproxy/web/",), None),
    ("aiohttp client", ("aiohttp/client", "aiohttp/connector.py", "aiohappyeyeballs/"), None),
    ("aiohttp server", ("aiohttp/web", "aiohttp/http_writer.py"), None),
    ("aiohttp (shared)", ("aiohttp/", "multidict/", "yarl/"), None),
    ("event loop", ("asyncio/", "uvloop/"), None),
)


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/", "/lib/python3.12/", "/lib/python3.13/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if "/authproxy/" in path:
        return "authproxy/" + path.split("/authproxy/", 1)[1]
    return path


def group_of(frame: tuple[str, str]) -> str | None:
    path, func = _short(frame[0]), frame[1]
    for name, prefixes, funcs in GROUPS:
        if path.startswith(prefixes) and (funcs is None or func in funcs):
            return name
    return None


def summarize_groups(stacks: list[Stack]) -> str:
    total = sum(n for _, _, n in stacks)
    if total == 0:
        return "profile: no samples"
    charged: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for _, frames, n in stacks:
        groups = [group_of(f) for f in frames]
        for g in {g for g in groups if g is not None}:
            inclusive[g] += n
        deepest = next((g for g in reversed(groups) if g is not None), "(other)")
        charged[deepest] += n
    lines = [f"{total} samples; % charged to the deepest group (inclusive: anywhere on the stack)"]
    for name, n in charged.most_common():
        wraps = name in _WRAPPERS or name not in inclusive
        share = "      " if wraps else f"{100 * inclusive[name] / total:5.1f} %"
        lines.append(f"  {100 * n / total:5.1f} %  ({share})  {name}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="py-spy raw profile, by function group.")
    p.add_argument("file", type=Path)
    p.add_argument("--thread", default="MainThread", help="only this thread ('' for all)")
    args = p.parse_args(argv)
    stacks = parse(args.file.read_text(errors="replace"))
    if args.thread:
        stacks = [s for s in stacks if s[0] == args.thread] or stacks
    print(summarize_groups(stacks))


if __name__ == "__main__":
    main()
