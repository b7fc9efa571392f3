"""Changes made by the CLI in another process reach a running gateway within one second."""

from __future__ import annotations

import aiohttp

from .helpers import (
    MODELS,
    Gateway,
    bearer,
    poll_status,
    run_cli,
)

TAKES_EFFECT_WITHIN = 1.0  # the design's bound for revoke / expire / disable


async def _models_status(session: aiohttp.ClientSession, gw: Gateway, key: str) -> int:
    async with session.get(gw.url(MODELS), headers=bearer(key)) as r:
        await r.read()
        return r.status


async def test_key_revoked_by_cli_in_another_process(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    key = gateway.accounts.user_key
    assert await _models_status(session, gateway, key) == 200
    cli = await run_cli(
        "--config", str(gateway.config_path), "keys", "revoke", str(gateway.accounts.user_key_id)
    )
    assert cli.returncode == 0, cli.stderr
    took, _ = await poll_status(
        lambda: _models_status(session, gateway, key), 401, TAKES_EFFECT_WITHIN
    )
    assert took <= TAKES_EFFECT_WITHIN
    # Refused for good, and nobody else is affected.
    assert await _models_status(session, gateway, key) == 401
    assert await _models_status(session, gateway, gateway.accounts.admin_key) == 200


async def test_user_disabled_by_cli_in_another_process(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    key = gateway.accounts.user_key
    assert await _models_status(session, gateway, key) == 200
    cli = await run_cli("--config", str(gateway.config_path), "users", "disable", "alice")
    assert cli.returncode == 0, cli.stderr
    took, _ = await poll_status(
        lambda: _models_status(session, gateway, key), 401, TAKES_EFFECT_WITHIN
    )
    assert took <= TAKES_EFFECT_WITHIN
    assert await _models_status(session, gateway, gateway.accounts.restricted_key) == 200

    cli = await run_cli("--config", str(gateway.config_path), "users", "enable", "alice")
    assert cli.returncode == 0, cli.stderr
    await poll_status(lambda: _models_status(session, gateway, key), 200, TAKES_EFFECT_WITHIN)


async def test_key_created_by_cli_works_without_restart(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    cli = await run_cli("--config", str(gateway.config_path), "keys", "create", "alice")
    assert cli.returncode == 0, cli.stderr
    key = cli.stdout.strip()
    await poll_status(lambda: _models_status(session, gateway, key), 200, TAKES_EFFECT_WITHIN)
