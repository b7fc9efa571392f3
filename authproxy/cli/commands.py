"""The CLI's commands: each one opens the store, calls the admin service, prints."""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractAsyncContextManager
from dataclasses import asdict

from authproxy.admin.entry import local_actor, open_admin
from authproxy.admin.service import QUOTA_FIELDS, AdminError, AdminService
from authproxy.cli.output import as_json, table, when
from authproxy.clock import now
from authproxy.config.schema import Config
from authproxy.limits.quota import Limits
from authproxy.store.records import UNLIMITED, ApiKey
from authproxy.text import parse_duration, whole_number

__all__ = [
    "UNSET",
    "admin_service",
    "cmd_admin",
    "cmd_audit",
    "cmd_init",
    "cmd_keys",
    "cmd_models",
    "cmd_usage",
    "cmd_users",
    "count",
    "key_id",
    "quota_value",
]


def admin_service(
    config: Config, *, create: bool = False
) -> AbstractAsyncContextManager[AdminService]:
    """The admin service as the CLI acts: ``cli:<login>``, from ``local``."""
    return open_admin(config, actor=local_actor("cli"), create=create)


UNSET = object()


def quota_value(text: str) -> int | None:
    """A quota on the command line: a number, ``unlimited``, or ``role`` (the role's default)."""
    if text == "role":
        return None
    if text == "unlimited":
        return UNLIMITED
    value = whole_number(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r}: want a number, `unlimited` or `role`")
    return value


def key_id(text: str) -> int:
    """A key id on the command line (the first column of `authproxy keys list`)."""
    value = whole_number(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r}: want a key id as `authproxy keys list` shows")
    return value


def count(text: str) -> int:
    value = whole_number(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r}: want a whole number")
    return value


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}"


def _limits_text(limits: Limits) -> str:
    return (
        f"{_limit(limits.tokens_per_day)} tokens/day, {_limit(limits.tokens_per_month)}"
        f" tokens/month, {_limit(limits.requests_per_minute)} requests/min,"
        f" {_limit(limits.max_concurrent)} concurrent"
    )


def _key_row(k: ApiKey) -> list[object]:
    t = now()
    if k.revoked_at is not None:
        status = "revoked"
    elif k.expires_at is not None and k.expires_at <= t:
        status = "expired"
    else:
        status = "active"
    return [
        k.id,
        k.user_name,
        k.prefix + "…",
        k.label,
        when(k.created_at),
        when(k.expires_at),
        when(k.last_used_at),
        status,
        "yes" if k.acts_for_users else "",
    ]


async def cmd_init(config: Config, args: argparse.Namespace) -> None:
    async with admin_service(config, create=True) as admin:
        new = await admin.init_admin(args.name)
    print(new.secret)
    print(
        f"created admin {args.name!r} in {config.data_dir}; the key above is shown only once",
        file=sys.stderr,
    )


async def cmd_users(config: Config, args: argparse.Namespace) -> None:
    async with admin_service(config) as admin:
        if args.action == "add":
            user = await admin.add_user(args.name, role=args.role, email=args.email)
            print(f"added user {user.name} (role {user.role})")
        elif args.action in ("disable", "enable"):
            user = await admin.set_disabled(args.name, args.action == "disable")
            print(f"{args.action}d user {user.name}")
        elif args.action == "quota":
            changes = {f: getattr(args, f) for f in QUOTA_FIELDS if getattr(args, f) is not UNSET}
            if not changes:
                raise AdminError("name at least one limit, e.g. --tokens-per-day 100000")
            limits = await admin.set_quota(args.name, **changes)
            print(f"limits of {args.name}: {_limits_text(limits)}")
        elif args.action == "role":
            user = await admin.set_role(args.name, args.role)
            print(f"user {user.name} now has role {user.role}")
        else:
            users = await admin.list_users()
            if args.json:
                as_json([asdict(u) for u in users])
                return
            table(
                ["name", "role", "email", "status", "created"],
                [
                    [
                        u.name,
                        u.role,
                        u.email,
                        "disabled" if u.disabled else "active",
                        when(u.created_at),
                    ]
                    for u in users
                ],
            )


async def cmd_keys(config: Config, args: argparse.Namespace) -> None:
    async with admin_service(config) as admin:
        if args.action == "create":
            expires = parse_duration(args.expires) if args.expires else None
            new = await admin.create_key(
                args.user,
                label=args.label,
                expires_in=expires,
                acts_for_users=args.acts_for_users,
            )
            print(new.secret)
        elif args.action == "revoke":
            record = await admin.revoke_key(args.key_id)
            print(f"revoked key {record.id} ({record.prefix}…) of {record.user_name}")
        else:
            keys = await admin.list_keys(args.user)
            if args.json:
                as_json([asdict(k) for k in keys])
                return
            table(
                [
                    "id",
                    "user",
                    "prefix",
                    "label",
                    "created",
                    "expires",
                    "last used",
                    "status",
                    "acts for users",
                ],
                [_key_row(k) for k in keys],
            )


async def cmd_models(config: Config, args: argparse.Namespace) -> None:
    async with admin_service(config) as admin:
        if args.action in ("enable", "disable"):
            await admin.set_model_enabled(args.name, args.action == "enable")
            print(f"{args.action}d model {args.name}")
            return
        overview = await admin.models_overview()
    rows = [
        {
            "model": m.name,
            "alias_of": m.alias_of,
            "upstreams": ",".join(m.upstreams) or "-",
            "enabled": m.enabled,
        }
        for m in overview.models
    ]
    if args.json:
        as_json(rows)
        return
    table(
        ["model", "alias of", "upstreams", "status"],
        [
            [
                r["model"],
                r["alias_of"] or "-",
                r["upstreams"],
                "enabled" if r["enabled"] else "disabled",
            ]
            for r in rows
        ],
    )
    if overview.unreachable:
        print(f"(could not ask {', '.join(overview.unreachable)} for its models)")


async def cmd_usage(config: Config, args: argparse.Namespace) -> None:
    since = now() - parse_duration(args.since)
    async with admin_service(config) as admin:
        report = await admin.usage_against_quotas(since=since, user_name=args.user)
        by_model = await admin.usage(since=since, user_name=args.user)
    if args.json:
        as_json({"users": [asdict(r) for r in report], "by_model": [asdict(r) for r in by_model]})
        return

    def against(used: int, limit: int | None) -> str:
        if limit is None:
            return f"{used:,}"
        return f"{used:,} / {limit:,} ({100 * used / limit:.0f}%)" if limit else f"{used:,} / 0"

    table(
        ["user", "role", f"requests ({args.since})", "prompt", "completion", "today", "month"],
        [
            [
                r.user.name + (" (disabled)" if r.user.disabled else ""),
                r.user.role,
                r.requests,
                r.prompt_tokens,
                r.completion_tokens,
                against(r.tokens_today, r.limits.tokens_per_day),
                against(r.tokens_month, r.limits.tokens_per_month),
            ]
            for r in report
        ],
    )
    if by_model:
        print()
        table(
            ["user", "model", "requests", "prompt", "completion"],
            [
                [m.user_name, m.model, m.requests, m.prompt_tokens, m.completion_tokens]
                for m in by_model
            ],
        )


async def cmd_audit(config: Config, args: argparse.Namespace) -> None:
    since = now() - parse_duration(args.since)
    async with admin_service(config) as admin:
        entries = await admin.audit_log(since=since, limit=args.limit)
    if args.json:
        as_json([asdict(e) for e in entries])
        return
    table(
        ["time", "actor", "action", "target", "detail", "from"],
        [[when(e.ts), e.actor, e.action, e.target, e.detail, e.source] for e in entries],
    )


# -- admin TUI (admin_tui/) -------------------------------------------------------------------


async def cmd_admin(config: Config, args: argparse.Namespace) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise AdminError("the admin UI needs a terminal (use the other commands in scripts)")
    from admin_tui.launch import run_admin  # Textual is loaded for this command only

    await run_admin(config, start=args.screen)
