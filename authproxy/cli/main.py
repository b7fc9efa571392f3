"""``authproxy``: the command line. Bad input ends with one clear line and a non-zero exit."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

from authproxy.admin.service import AdminError
from authproxy.auth.secret import SecretFileError
from authproxy.cli import commands, db, engine, engine_init, login_commands
from authproxy.config.load import ConfigError, load_config
from authproxy.config.schema import Config
from authproxy.store.base import StoreError

__all__ = ["COMMANDS", "Command", "main"]


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line like every other CLI error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"authproxy: {message} (see `{self.prog} --help`)\n")


Command = Callable[[Config, argparse.Namespace], Coroutine[Any, Any, None]]


def _actions(
    sub: argparse._SubParsersAction[Any], common: argparse.ArgumentParser, name: str, help: str
) -> argparse._SubParsersAction[Any]:
    """``authproxy NAME ACTION …``: a command whose first argument names what to do."""
    command: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=help)
    return command.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_OneLineParser
    )


def _parser() -> argparse.ArgumentParser:
    common = _OneLineParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="the YAML config (default: $AUTHPROXY_CONFIG, ./authproxy.yaml,"
        " else the embedded defaults)",
    )
    p = _OneLineParser(
        prog="authproxy", parents=[common], description="Auth gateway for self-hosted LLM engines."
    )
    sub = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_OneLineParser
    )

    serve = sub.add_parser("serve", parents=[common], help="run the gateway")
    # `workers: N`: how the supervisor starts each worker (web/supervisor.py); not for people
    serve.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--ready-fd", type=int, default=None, help=argparse.SUPPRESS)
    init = sub.add_parser(
        "init",
        parents=[common],
        help="create data dir, database, secret and the first admin; print its key",
    )
    init.add_argument("--name", default="admin", help="the first admin's user name")
    engine_init.add_init_options(init)  # deploy: --engine PROFILE
    sub.add_parser("check-config", parents=[common], help="validate the config and exit")

    u = _actions(sub, common, "users", "manage users")
    add = u.add_parser("add", parents=[common], help="add a user")
    add.add_argument("name")
    add.add_argument("--role", default=None)
    add.add_argument("--email", default=None)
    ul = u.add_parser("list", parents=[common], help="list users")
    ul.add_argument("--json", action="store_true")
    for action in ("disable", "enable"):
        a = u.add_parser(action, parents=[common], help=f"{action} a user")
        a.add_argument("name")
    role = u.add_parser("role", parents=[common], help="change a user's role")
    role.add_argument("name")
    role.add_argument("role")
    quota = u.add_parser(
        "quota",
        parents=[common],
        help="set a user's limits: a number, `unlimited`, or `role` (back to the role's)",
    )
    quota.add_argument("name")
    for flag, dest in (
        ("--tokens-per-day", "tokens_per_day"),
        ("--tokens-per-month", "tokens_per_month"),
        ("--rpm", "requests_per_minute"),
        ("--concurrent", "max_concurrent"),
    ):
        quota.add_argument(
            flag, dest=dest, type=commands.quota_value, metavar="N", default=commands.UNSET
        )

    login_commands.add_parsers(u, sub, common, _OneLineParser)

    k = _actions(sub, common, "keys", "manage API keys")
    kc = k.add_parser("create", parents=[common], help="create a key; prints only the key")
    kc.add_argument("user")
    kc.add_argument("--label", default=None)
    kc.add_argument("--expires", default=None, metavar="DURATION", help="e.g. 30d, 12h")
    kc.add_argument(
        "--acts-for-users",
        action="store_true",
        help="a service key (Open WebUI): may name the person each request is for",
    )
    kl = k.add_parser("list", parents=[common], help="list keys")
    kl.add_argument("user", nargs="?")
    kl.add_argument("--json", action="store_true")
    kr = k.add_parser("revoke", parents=[common], help="revoke a key by its id")
    kr.add_argument("key_id", type=commands.key_id)

    m = _actions(sub, common, "models", "list, enable, disable models")
    ml = m.add_parser("list", parents=[common], help="configured and discovered models")
    ml.add_argument("--json", action="store_true")
    for action in ("enable", "disable"):
        a = m.add_parser(action, parents=[common], help=f"{action} a model")
        a.add_argument("name")

    usage = sub.add_parser("usage", parents=[common], help="tokens and requests per user")
    usage.add_argument("user", nargs="?")
    usage.add_argument("--since", default="7d", metavar="DURATION")
    usage.add_argument("--json", action="store_true")

    audit = sub.add_parser("audit", parents=[common], help="admin actions and failed logins")
    audit.add_argument("--since", default="7d", metavar="DURATION")
    audit.add_argument("--limit", type=commands.count, default=200)
    audit.add_argument("--json", action="store_true")
    engine.add_parser(sub)  # deploy: `authproxy engine …` (needs no config)
    db.add_parser(sub, common, _OneLineParser)  # `authproxy db copy --to postgresql://…`

    # -- admin TUI (admin_tui/) -----------------------------------------------------------
    admin = sub.add_parser("admin", parents=[common], help="the admin terminal UI (over SSH)")
    admin.add_argument(
        "--screen",
        default="dashboard",
        choices=["dashboard", "users", "keys", "models", "audit"],
        help="the screen to open on",
    )
    # -- end admin TUI --------------------------------------------------------------------
    return p


COMMANDS: dict[str, Command] = {
    "init": commands.cmd_init,
    "users": commands.cmd_users,
    "keys": commands.cmd_keys,
    "models": commands.cmd_models,
    "usage": commands.cmd_usage,
    "audit": commands.cmd_audit,
    "sessions": login_commands.cmd_sessions,
    "db": db.cmd_db,
    "admin": commands.cmd_admin,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # deploy: engine commands need no config; `init --engine` edits it before it is loaded
    if args.command == "engine":
        return engine.run(args)
    if args.command == "init" and args.engine and (failed := engine_init.prepare_init(args)):
        return failed
    try:
        config = load_config(getattr(args, "config", None))
    except ConfigError as exc:
        if args.command == "check-config":
            print(f"{exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
        else:
            print(f"authproxy: config {exc.source}: {'; '.join(exc.problems)}", file=sys.stderr)
        return 1
    if args.command == "check-config":
        print(f"ok: {len(config.upstreams)} upstream(s), roles {', '.join(config.roles)}")
        return 0
    if args.command == "serve":
        from authproxy.serve import serve
        from authproxy.web.listen import ListenError

        try:
            return serve(
                config,
                config_path=getattr(args, "config", None),
                worker=args.worker,
                ready_fd=args.ready_fd,
            )
        except ListenError as exc:  # the port is taken: nothing was started
            print(f"authproxy: {exc}", file=sys.stderr)
            return 1
        except (OSError, StoreError, SecretFileError) as exc:
            print(f"authproxy: cannot start: {exc}", file=sys.stderr)
            return 1
    logging.getLogger("authproxy").setLevel(logging.ERROR)  # commands say what failed themselves
    try:
        command = COMMANDS[args.command]
        if args.command == "users" and args.action == "passwd":
            command = login_commands.cmd_passwd
        asyncio.run(command(config, args))
    except (AdminError, StoreError, SecretFileError, ValueError) as exc:
        print(f"authproxy: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `authproxy audit | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    return 0
