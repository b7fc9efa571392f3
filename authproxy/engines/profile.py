"""Engine launch profiles: typed YAML files that render an engine's argv for one model.

A profile (``deploy/profiles/NAME.yaml``, shipped inside the package as ``authproxy/profiles``)
names its parameters with defaults and reasons, and an argv whose items may hold ``{param}``
placeholders. An item can be a list (a flag and its value): the whole group is left out when
one of its placeholders is empty, which is how optional flags are written. The engine always
binds 127.0.0.1: no profile offers a host parameter.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

__all__ = [
    "HOST",
    "REQUIRED_PARAMS",
    "EngineProfileError",
    "Param",
    "Profile",
    "Rendered",
    "available",
    "load_profile",
    "model_stem",
    "parse_profile",
    "render",
    "resolve_values",
]

HOST = "127.0.0.1"
REQUIRED_PARAMS = ("binary", "model", "port", "name")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_BUILTINS = ("model_stem",)


class EngineProfileError(ValueError):
    """A profile that cannot be loaded or rendered; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _scalar_text(value: Any) -> Any:
    """YAML numbers become text; YAML booleans (``on``, ``yes``) are refused as ambiguous."""
    if isinstance(value, bool):
        raise ValueError('a YAML boolean; quote it (e.g. "on")')
    return str(value) if isinstance(value, int | float) else value


class Param(_Strict):
    help: str
    default: str | None = None  # None: the user must give it
    type: Literal["text", "int", "float", "file", "model", "args"] = "text"
    choices: list[str] | None = None

    @field_validator("default", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _scalar_text(value)


class Profile(_Strict):
    name: str
    description: str
    engine: str
    platform: Literal["linux", "macos"] = "linux"
    health_path: str
    params: dict[str, Param]
    argv: list[str | list[str]]
    env: dict[str, str] = {}
    unit: dict[str, str | list[str]] = {}  # extra [Service] settings for a generated unit

    @field_validator("env", "unit", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {
            k: [_scalar_text(x) for x in v] if isinstance(v, list) else _scalar_text(v)
            for k, v in value.items()
        }

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        missing = [p for p in REQUIRED_PARAMS if p not in self.params]
        if missing:
            raise ValueError(f"params: missing {', '.join(missing)}")
        known = set(self.params) | set(_BUILTINS)
        texts = [t for item in self.argv for t in ([item] if isinstance(item, str) else item)]
        texts += list(self.env.values())
        texts += [p.default for p in self.params.values() if p.default is not None]
        unknown = sorted({m for t in texts for m in _PLACEHOLDER.findall(t)} - known)
        if unknown:
            raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}")
        if not self.health_path.startswith("/"):
            raise ValueError("health_path must start with /")
        return self


def available() -> list[str]:
    """Names of the profiles shipped with the package."""
    root = resources.files("authproxy.engines") / "profiles"
    return sorted(e.name.removesuffix(".yaml") for e in root.iterdir() if e.name.endswith(".yaml"))


def load_profile(name: str) -> Profile:
    """A shipped profile by name, or any profile file by path (``./my-engine.yaml``)."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EngineProfileError(f"cannot read profile {name}: {exc.strerror}") from None
        return parse_profile(text, name=path.stem)
    if name not in available():
        raise EngineProfileError(
            f"unknown engine profile {name!r} (available: {', '.join(available())})"
        )
    text = (resources.files("authproxy.engines") / "profiles" / f"{name}.yaml").read_text("utf-8")
    return parse_profile(text, name=name)


def parse_profile(text: str, *, name: str) -> Profile:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        message = f"profile {name}: not valid YAML: {exc}".replace("\n", " ")
        raise EngineProfileError(message) from None
    if not isinstance(raw, dict):
        raise EngineProfileError(f"profile {name}: must be a mapping")
    try:
        return Profile.model_validate({**raw, "name": name})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}:"
            f" {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise EngineProfileError(f"profile {name}: {'; '.join(problems)}") from None


def model_stem(model: str) -> str:
    """The served name a model gets by default: its file or directory name, without .gguf.

    ``/m/qwen2.5-7b-q4_k_m.gguf`` → ``qwen2.5-7b-q4_k_m``; ``org/Llama-3.1-8B`` → ``Llama-3.1-8B``.
    """
    return model.rstrip("/").rsplit("/", 1)[-1].removesuffix(".gguf")


@dataclass(frozen=True, kw_only=True)
class Rendered:
    """One profile filled in: what to execute, with which environment, and where it answers."""

    profile: Profile
    values: dict[str, str]
    argv: list[str]
    env: dict[str, str]

    @property
    def port(self) -> int:
        return int(self.values["port"])

    @property
    def served_name(self) -> str:
        return self.values["name"]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def health_url(self) -> str:
        return self.base_url + self.profile.health_path


def _check(name: str, param: Param, value: str) -> str | None:
    if param.choices is not None and value not in param.choices:
        return f"{name}={value!r}: want one of {', '.join(param.choices)}"
    try:
        if param.type == "int" and value:
            int(value)
        elif param.type == "float" and value:
            float(value)
        elif param.type == "args":
            shlex.split(value)
    except ValueError as exc:
        return f"{name}={value!r}: {'want a number' if param.type != 'args' else exc}"
    if name == "port" and not 0 < int(value) < 65536:
        return f"port={value}: want 1-65535"
    return None


def resolve_values(profile: Profile, given: dict[str, str]) -> dict[str, str]:
    """Defaults overlaid with what the user gave; every problem reported in one message."""
    given = {k.replace("-", "_"): v for k, v in given.items()}
    problems = [f"unknown parameter {k!r}" for k in given if k not in profile.params]
    if problems:
        problems.append(f"{profile.name} takes: {', '.join(profile.params)}")
    builtins = {"model_stem": model_stem(given.get("model") or "")}
    values: dict[str, str] = {}
    for name, param in profile.params.items():
        if name in given:
            value = given[name]
        elif param.default is not None:
            value = _substitute(param.default, builtins)
        else:
            problems.append(f"{name} is required ({param.help})")
            continue
        problem = _check(name, param, value)
        if problem:
            problems.append(problem)
        values[name] = value
    if problems:
        raise EngineProfileError(f"{profile.name}: {'; '.join(problems)}")
    return values


def _is_args(profile: Profile, name: str) -> bool:
    param = profile.params.get(name)
    return param is not None and param.type == "args"


def _substitute(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def render(profile: Profile, given: dict[str, str]) -> Rendered:
    values = resolve_values(profile, given)
    everything = {**values, "model_stem": model_stem(values["model"])}
    argv: list[str] = []
    for item in profile.argv:
        group = [item] if isinstance(item, str) else item
        names = [m for t in group for m in _PLACEHOLDER.findall(t)]
        if any(not everything[n].strip() for n in names):
            continue  # an optional flag whose value was left empty
        for text in group:
            split = [n for n in _PLACEHOLDER.findall(text) if _is_args(profile, n)]
            if split and text == "{" + split[0] + "}":
                argv.extend(shlex.split(everything[split[0]]))
            else:
                argv.append(_substitute(text, everything))
    env = {k: _substitute(v, everything) for k, v in profile.env.items()}
    return Rendered(
        profile=profile, values=values, argv=argv, env={k: v for k, v in env.items() if v}
    )
