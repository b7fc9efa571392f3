"""``authproxy engine list|params|command|run|unit``: launch profiles for inference engines.

These commands need no gateway config: they render a profile (``authproxy/engines/profile.py``)
for one model, then print it, run it (``authproxy/engines/runner.py``) or wrap it in a service
definition (``authproxy/engines/units.py``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from authproxy.engines.profile import (
    EngineProfileError,
    Profile,
    Rendered,
    available,
    load_profile,
    render,
)
from authproxy.engines.runner import EngineRunner, resolve_binary
from authproxy.engines.units import launchd_agent, systemd_unit

__all__ = ["add_parser", "run"]


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: want KEY=VALUE")
    return key.strip().replace("-", "_"), value


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    engine = sub.add_parser("engine", help="print, run or install an inference engine")
    actions = engine.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(engine)
    )
    actions.add_parser("list", help="the shipped engine profiles")
    params = actions.add_parser("params", help="a profile's parameters, defaults and reasons")
    params.add_argument("profile", metavar="PROFILE")
    for action, text in (
        ("command", "print the engine's command line"),
        ("run", "run the engine, wait until it is healthy, stop it on SIGTERM"),
        ("unit", "print a systemd unit (launchd agent on macOS profiles) for it"),
    ):
        a = actions.add_parser(action, help=text)
        a.add_argument("profile", metavar="PROFILE", help="a profile name or a .yaml file")
        a.add_argument("--model", metavar="M", help="model file, directory or Hugging Face id")
        a.add_argument("--port", type=int, metavar="P", help="loopback port for the engine")
        a.add_argument(
            "--set",
            dest="overrides",
            type=_key_value,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="any other profile parameter (see `authproxy engine params PROFILE`)",
        )
        if action == "command":
            a.add_argument("--json", action="store_true")
        if action == "run":
            a.add_argument(
                "--timeout",
                type=float,
                default=900.0,
                metavar="S",
                help="give up when the engine is not healthy after S seconds (default 900)",
            )


def _given(profile: Profile, args: argparse.Namespace) -> dict[str, str]:
    given = dict(args.overrides)
    if args.model is not None:
        given["model"] = args.model
    if args.port is not None:
        given["port"] = str(args.port)
    return given


def _absolute_paths(profile: Profile, given: dict[str, str]) -> dict[str, str]:
    """A service starts in /, so local files are named by absolute path in it."""
    out = dict(given)
    for name, value in given.items():
        param = profile.params.get(name)
        if param is None or param.type not in ("file", "model") or not value:
            continue
        if param.type == "file" or value.startswith(("./", "../", "~")) or Path(value).exists():
            out[name] = str(Path(value).expanduser().absolute())
    return out


def _run_args(profile_ref: str, given: dict[str, str]) -> list[str]:
    args = ["engine", "run", profile_ref]
    args += [a for key in ("model", "port") if key in given for a in (f"--{key}", given[key])]
    for key, value in given.items():
        if key not in ("model", "port"):
            args += ["--set", f"{key}={value}"]
    return args


def _pin_binary(profile: Profile, given: dict[str, str]) -> dict[str, str]:
    """Name the engine binary by the absolute path found here: a service's PATH is short."""
    program = given.get("binary") or profile.params["binary"].default or ""
    try:
        return {**given, "binary": resolve_binary(program)}
    except EngineProfileError as exc:
        print(f"authproxy: note: {exc}; the service will search its own PATH", file=sys.stderr)
        return given


def _print_command(rendered: Rendered, as_json: bool) -> None:
    if as_json:
        body = {
            "argv": rendered.argv,
            "env": rendered.env,
            "health_url": rendered.health_url,
            "model_name": rendered.served_name,
        }
        print(json.dumps(body, indent=2))
        return
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in rendered.env.items())
    print((env + " " if env else "") + shlex.join(rendered.argv))


def _list() -> None:
    for name in available():
        profile = load_profile(name)
        print(f"{name:<22} {profile.description}")


def _params(profile: Profile) -> None:
    for name, param in profile.params.items():
        default = "(required)" if param.default is None else repr(param.default)
        print(f"{name:<24} {default:<16} {' '.join(param.help.split())}")


def run(args: argparse.Namespace) -> int:
    """Entry point from ``authproxy.cli.main``; returns the exit status."""
    try:
        if args.action == "list":
            _list()
            return 0
        profile = load_profile(args.profile)
        if args.action == "params":
            _params(profile)
            return 0
        given = _given(profile, args)
        if args.action == "unit":
            given = _pin_binary(profile, _absolute_paths(profile, given))
        rendered = render(profile, given)
        if args.action == "command":
            _print_command(rendered, args.json)
            return 0
        if args.action == "unit":
            shipped = args.profile == profile.name
            ref = profile.name if shipped else str(Path(args.profile).absolute())
            service = launchd_agent if profile.platform == "macos" else systemd_unit
            print(service(rendered, _run_args(ref, given)), end="")
            return 0
        return EngineRunner(rendered=rendered, timeout=args.timeout).run()
    except EngineProfileError as exc:
        print(f"authproxy: {exc}", file=sys.stderr)
        return 1
