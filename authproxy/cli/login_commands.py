"""CLI for browser login: ``users passwd NAME`` and ``sessions list [USER] | revoke USER``."""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import asdict
from typing import Any

from authproxy.admin.service import AdminError
from authproxy.cli.commands import admin_service
from authproxy.cli.output import as_json, table, when
from authproxy.config.schema import Config
from authproxy.login.passwords import PasswordPolicyError, hash_password

__all__ = ["add_parsers", "cmd_passwd", "cmd_sessions"]


def _read_password(stdin: bool) -> str:
    """From a prompt (twice) on a terminal; from the first line of stdin otherwise."""
    if stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        if not line:
            raise AdminError("no password on standard input")
        return line.rstrip("\r\n")
    first = getpass.getpass("New password: ")
    if getpass.getpass("Again: ") != first:
        raise AdminError("the two passwords differ")
    return first


async def cmd_passwd(config: Config, args: argparse.Namespace) -> None:
    new_hash = None
    if not args.clear:
        try:
            new_hash = hash_password(_read_password(args.stdin))
        except PasswordPolicyError as exc:
            raise AdminError(str(exc)) from None
    async with admin_service(config) as admin:
        user = await admin.set_password(args.name, new_hash)
    done = "cleared the password of" if args.clear else "set the password of"
    print(f"{done} {user.name}; their browser sessions were ended")


async def cmd_sessions(config: Config, args: argparse.Namespace) -> None:
    async with admin_service(config) as admin:
        if args.action == "revoke":
            ended = await admin.end_sessions(args.user)
            print(f"ended {ended} session(s) of {args.user}")
            return
        sessions = await admin.list_sessions(args.user)
    if args.json:
        as_json([asdict(s) for s in sessions])
        return
    table(
        ["id", "user", "via", "from", "started", "last seen", "ends"],
        [
            [
                s.id,
                s.user_name,
                s.via,
                s.source,
                when(s.created_at),
                when(s.last_seen_at),
                when(s.expires_at),
            ]
            for s in sessions
        ],
    )


def add_parsers(
    users: argparse._SubParsersAction[Any],
    sub: argparse._SubParsersAction[Any],
    common: argparse.ArgumentParser,
    parser_class: type[argparse.ArgumentParser],
) -> None:
    pw = users.add_parser(
        "passwd",
        parents=[common],
        help="set a user's password for the browser login (prompt, or first line of stdin)",
    )
    pw.add_argument("name")
    pw.add_argument("--stdin", action="store_true", help="read it from standard input")
    pw.add_argument("--clear", action="store_true", help="remove the password instead")

    sessions = sub.add_parser("sessions", parents=[common], help="browser sessions")
    s = sessions.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=parser_class
    )
    sl = s.add_parser("list", parents=[common], help="list live sessions")
    sl.add_argument("user", nargs="?")
    sl.add_argument("--json", action="store_true")
    sr = s.add_parser("revoke", parents=[common], help="end every session of a user, at once")
    sr.add_argument("user")
