"""How many tokens a request may make the engine generate, in each API dialect.

The engines do not agree on the name of "at most N tokens": llama-server takes ``n_predict``
before ``max_completion_tokens`` before ``max_tokens``, vLLM ``max_completion_tokens`` before
``max_tokens``, Ollama's OpenAI side only ``max_tokens``, the Responses API
``max_output_tokens``, Ollama's native API ``options.num_predict``. So the gateway takes every
one of these names out of the client's body and writes the limit it reserved under the names
the endpoint's row lists — the ones every engine serving that endpoint honours. Whatever the
client wrote, the engine runs the reserved limit.

Several choices (``n``, llama-server's ``n_cmpl``, vLLM's ``best_of``) and several prompts in
one completions request multiply what is generated; the reservation multiplies with them.
Adding a dialect (the Responses API, Ollama's ``/api/chat``) is adding a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from authproxy.errors import BadRequest

__all__ = [
    "CHAT",
    "CHOICE_FIELDS",
    "COMPLETIONS",
    "LIMIT_FIELDS",
    "MESSAGES",
    "OLLAMA",
    "RESPONSES",
    "FieldPath",
    "OutputAsk",
    "OutputRule",
    "prompt_count",
    "read_ask",
    "write_limit",
]

FieldPath = tuple[str, ...]  # ("max_tokens",) or, nested, ("options", "num_predict")

# Every spelling of the output limit the gateway knows, in the order the engines rank them
# when a body carries several: the first one present is what the client asked for.
LIMIT_FIELDS: tuple[str, ...] = (
    "n_predict",
    "max_completion_tokens",
    "max_output_tokens",
    "max_new_tokens",
    "max_tokens",
)
CHOICE_FIELDS: tuple[str, ...] = ("n", "n_cmpl", "best_of")


@dataclass(frozen=True, slots=True)
class OutputRule:
    """One dialect's row: where the reserved limit is written, and what multiplies it."""

    write: tuple[FieldPath, ...]
    prompts_field: str | None = None  # a list of prompts here is one completion each
    # Made from ``write`` once (every request reads them):
    # top-level objects a nested limit is written into (Ollama's ``options``): the gateway
    # takes them over too, the client's other settings in them kept;
    containers: frozenset[str] = field(init=False, compare=False)
    # each container with the names the gateway writes in it, by their case-folded form;
    container_names: tuple[tuple[str, dict[str, str]], ...] = field(init=False, compare=False)
    nested: tuple[FieldPath, ...] = field(init=False, compare=False)  # the paths in containers

    def __post_init__(self) -> None:
        nested = tuple(path for path in self.write if len(path) > 1)
        containers = frozenset(path[0] for path in nested)
        names = tuple(
            (c, {p[1].casefold(): p[1] for p in nested if len(p) == 2 and p[0] == c})
            for c in sorted(containers)
        )
        object.__setattr__(self, "nested", nested)
        object.__setattr__(self, "containers", containers)
        object.__setattr__(self, "container_names", names)


CHAT = OutputRule(write=(("max_completion_tokens",), ("max_tokens",)))
COMPLETIONS = OutputRule(write=(("max_tokens",),), prompts_field="prompt")
MESSAGES = OutputRule(write=(("max_tokens",),))
RESPONSES = OutputRule(write=(("max_output_tokens",),))
# Ollama's native API reads only options.num_predict (-1: no limit, -2: fill the context).
OLLAMA = OutputRule(write=(("options", "num_predict"),))


class OutputAsk(NamedTuple):
    """What a body asks for: its limit (None: none given) and how many outputs it makes."""

    limit: int | None
    outputs: int
    choices: dict[str, int]  # the choice fields as given (validated), forwarded unchanged


def _positive_int(body: Mapping[str, Any], name: str, what: str, code: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None  # absent, or null: "the server's default", as the engines read it
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"`{name}` must be a whole number of at least 1 ({what})", code=code)
    return value


def prompt_count(value: Any) -> int:
    """Prompts in a completions ``prompt``: a list of token ids is one, any other list one per
    element; a string (or anything else) one."""
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return 1
        return len(value)
    return 1


def _nested_ask(rule: OutputRule, body: Mapping[str, Any]) -> int | None:
    """The client's limit in a nested field of the row (Ollama's ``options.num_predict``); a
    negative one is Ollama's "no limit", which leaves the gateway's default."""
    for path in rule.nested:
        container = body.get(path[0])
        value = container.get(path[1]) if isinstance(container, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            continue
        given = _positive_int(
            container if isinstance(container, dict) else {},
            path[1],
            "tokens to generate, or negative for the default",
            "invalid_max_tokens",
        )
        if given is not None:
            return given
    return None


def read_ask(rule: OutputRule, body: Mapping[str, Any], *, max_outputs: int) -> OutputAsk:
    limit = _nested_ask(rule, body) if rule.nested else None
    choices: dict[str, int] = {}
    # Most bodies carry one of these eight fields at most: only those present are checked.
    for name in LIMIT_FIELDS:
        if body.get(name) is not None:
            given = _positive_int(body, name, "tokens to generate", "invalid_max_tokens")
            if limit is None:
                limit = given
    for name in CHOICE_FIELDS:
        if body.get(name) is not None:
            given = _positive_int(body, name, "outputs to generate", "invalid_n")
            if given is not None:
                choices[name] = given
    prompts = prompt_count(body.get(rule.prompts_field)) if rule.prompts_field else 1
    outputs = max(choices.values()) * prompts if choices else prompts
    if outputs > max_outputs:
        raise BadRequest(
            f"at most {max_outputs} output(s) per request on this gateway (n, n_cmpl, best_of "
            f"or several prompts); this one asks for {outputs}",
            code="too_many_outputs",
        )
    return OutputAsk(limit=limit, outputs=outputs, choices=choices)


def write_limit(rule: OutputRule, into: dict[str, Any], limit: int) -> None:
    """The reserved limit under every field of the row (``into`` holds no limit field yet, and
    the client's value of each container)."""
    for path in rule.write:
        target = into
        for part in path[:-1]:
            nested = target.get(part)
            target[part] = nested = dict(nested) if isinstance(nested, dict) else {}
            target = nested
        target[path[-1]] = limit
