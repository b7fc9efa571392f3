"""``authproxy init --engine PROFILE``: point the gateway at the engine a profile starts.

The config file is only ever created or appended to, never rewritten, so its comments and
layout survive: a missing file is created with the upstream; a file without an ``upstreams``
key gets one appended (checked by loading the result before it replaces the file); a file
that already lists upstreams is left alone and the entry to add is printed instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from authproxy.config.load import DEFAULT_CONFIG_NAME, ConfigError, load_config, resolve_path
from authproxy.engines.profile import HOST, EngineProfileError, load_profile, resolve_values

__all__ = ["add_init_options", "add_upstream", "prepare_init", "upstream_entry"]


def add_init_options(init: argparse.ArgumentParser) -> None:
    init.add_argument(
        "--engine",
        metavar="PROFILE",
        default=None,
        help="also add the upstream this engine profile serves to the config file",
    )
    init.add_argument(
        "--engine-port", type=int, metavar="P", default=None, help="the engine's port"
    )


def upstream_entry(profile_name: str, port: int | None) -> dict[str, Any]:
    profile = load_profile(profile_name)
    if port is None:  # the profile's default port
        port = int(resolve_values(profile, {"model": "x"})["port"])
    return {
        "name": profile.name,
        "url": f"http://{HOST}:{port}",
        "discover": True,  # the engine's /v1/models names the model
        "health_path": profile.health_path,
    }


def _snippet(entry: dict[str, Any]) -> str:
    return yaml.safe_dump([entry], sort_keys=False, default_flow_style=False)


def add_upstream(path: Path, entry: dict[str, Any]) -> str:
    """Add ``entry`` to the config at ``path``; returns what was done, for the user."""
    block = yaml.safe_dump({"upstreams": [entry]}, sort_keys=False, default_flow_style=False)
    if not path.exists():
        path.write_text(f"# authproxy gateway config (see README.md, Configuration)\n{block}")
        return f"created {path} with upstream {entry['name']} at {entry['url']}"
    text = path.read_text(encoding="utf-8")
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise EngineProfileError(f"{path} is not a mapping of keys; not edited")
    existing = raw.get("upstreams")
    if isinstance(existing, list) and any(
        isinstance(u, dict) and str(u.get("url", "")).rstrip("/") == entry["url"] for u in existing
    ):
        return f"{path} already has an upstream at {entry['url']}; not edited"
    if "upstreams" in raw:
        return (
            f"{path} already lists upstreams, so it was not edited; add this under"
            f" `upstreams:` yourself:\n{_snippet(entry)}"
        )
    new_text = text.rstrip("\n") + "\n" + block
    by_hand = f"add this yourself:\nupstreams:\n{_snippet(entry)}"
    try:
        appended_cleanly = yaml.safe_load(new_text) == {**raw, "upstreams": [entry]}
    except yaml.YAMLError:
        appended_cleanly = False
    if not appended_cleanly:  # e.g. a file written in flow style, `{listen: …}`
        return f"{path} was not edited (its layout does not allow appending); {by_hand}"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".authproxy-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(new_text)
    try:
        os.chmod(tmp, path.stat().st_mode & 0o777)
        load_config(tmp, env={})
    except ConfigError as exc:
        os.unlink(tmp)
        return f"{path} was not edited ({'; '.join(exc.problems)}); {by_hand}"
    os.replace(tmp, path)
    return f"added upstream {entry['name']} at {entry['url']} to {path}"


def prepare_init(args: argparse.Namespace) -> int | None:
    """Before ``init`` loads the config: add the engine's upstream. An exit status on failure."""
    try:
        entry = upstream_entry(args.engine, args.engine_port)
        path = resolve_path(getattr(args, "config", None), os.environ)
        message = add_upstream(path or Path(DEFAULT_CONFIG_NAME), entry)
    except (EngineProfileError, OSError, yaml.YAMLError) as exc:
        print(f"authproxy: init --engine: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"authproxy: {message}", file=sys.stderr)
    return None
