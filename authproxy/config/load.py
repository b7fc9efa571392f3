"""Loading the configuration: which file, reading it, ``AUTHPROXY_*`` overrides, and every
problem reported at once (``ConfigError``, one ``path: problem`` line each).

Resolution order: ``--config PATH``, then ``$AUTHPROXY_CONFIG``, then ``./authproxy.yaml`` if it
exists, else the embedded defaults. ``AUTHPROXY_<PATH>`` environment variables override single
values (``AUTHPROXY_UPSTREAMS__LOCAL__API_KEY``: ``__`` separates levels, a list element is named
by its ``name`` or its index), which is how secrets stay out of the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from authproxy.config.schema import Config
from authproxy.text import whole_number

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "ENV_PREFIX",
    "NOT_CONFIG_KEYS",
    "ConfigError",
    "load_config",
    "resolve_path",
]

ENV_PREFIX = "AUTHPROXY_"
DEFAULT_CONFIG_NAME = "authproxy.yaml"
# Read elsewhere: the file to load, and the server secret (authproxy/auth/secret.py).
NOT_CONFIG_KEYS = (ENV_PREFIX + "CONFIG", ENV_PREFIX + "SECRET")


class ConfigError(Exception):
    """All problems found in a configuration, one ``path: problem`` line each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for item in err.errors():
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        msg = msg.removeprefix("Value error, ")
        problems.append(f"{_loc(tuple(item['loc']))}: {msg}")
    return problems


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    problems = []
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in NOT_CONFIG_KEYS:
            continue
        path = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        node: Any = raw
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if isinstance(node, list):
                match = [
                    e
                    for e in node
                    if isinstance(e, dict) and str(e.get("name", "")).lower() == part
                ]
                index = whole_number(part, maximum=len(node) - 1)
                if not match and index is not None:
                    match = [node[index]]
                if not match or last:
                    problems.append(f"{name}: no list element named `{part}`")
                    break
                node = match[0]
                continue
            if not isinstance(node, dict):
                problems.append(f"{name}: cannot set below a plain value")
                break
            if last:
                node[part] = yaml.safe_load(value) if value.strip() else value
            else:
                node = node.setdefault(part, {})
    return problems


def _defaults_as_raw() -> dict[str, Any]:
    return Config().model_dump(mode="json", exclude_none=False)


def resolve_path(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get(ENV_PREFIX + "CONFIG"):
        return Path(env[ENV_PREFIX + "CONFIG"])
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.exists() else None


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Load, apply environment overrides, validate; ``ConfigError`` lists every problem."""
    env = os.environ if env is None else env
    file = resolve_path(path, env)
    source = str(file) if file else "embedded defaults"
    raw: dict[str, Any]
    if file is None:
        raw = {}
    else:
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(source, [f"cannot read: {exc.strerror or exc}"]) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(source, [f"not valid YAML: {exc}".replace("\n", " ")]) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(source, ["(top level): must be a mapping of keys"])
        raw = loaded
    env_overrides = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    if env_overrides:
        merged = _defaults_as_raw()
        merged.update(raw)
        raw = merged
    problems = _apply_env(raw, env)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, problems + _format_errors(exc)) from None
    if problems:
        raise ConfigError(source, problems)
    if file is not None and not config.data_dir.is_absolute():
        # A relative data_dir in a file is relative to that file, not to the cwd.
        config = config.model_copy(update={"data_dir": (file.parent / config.data_dir)})
    return config
