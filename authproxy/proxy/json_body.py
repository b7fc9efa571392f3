"""A request body read as JSON, and the one canonical encoding the engine gets instead.

Reading is the standard library's: it hands over every object's key/value pairs, so a key
given twice — also through an escape, ``"\\u006dodel"`` is ``model`` — is seen and refused
instead of silently resolved one way here and another way in the engine. It reads UTF-8 (a
byte-order mark is dropped) and UTF-16/32, which the engine then gets re-encoded as UTF-8.
Numbers that JSON has no spelling for (``NaN``, ``Infinity``, ``1e400``) are refused.

Writing is orjson's: compact, UTF-8, and about fifteen times faster than ``json.dumps`` on
long prompts, which is what makes re-encoding every body affordable (``bench/json_cost.py``).
"""

from __future__ import annotations

import json
import json.scanner
import math
from collections.abc import Callable
from typing import Any, NoReturn, cast

import orjson

from authproxy.errors import BadRequest

__all__ = ["encode", "parse", "scanner", "show_key"]


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NotFinite(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _no_constant(name: str) -> NoReturn:
    raise _NotFinite(name)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotFinite(text)
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_constant=_no_constant, parse_float=_finite
)


def scanner(decoder: json.JSONDecoder) -> Callable[[str, int], tuple[Any, int]]:
    """What ``decoder.decode`` and ``raw_decode`` call: the value at an index of a string, and
    where it ends (``StopIteration`` if there is none), without their frames around it."""
    scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(cast(Any, decoder))
    return scan


# JSON's whitespace is stripped first, then the value must fill the rest.
_scan = scanner(_DECODER)
_JSON_SPACE = " \t\n\r"


def show_key(key: str) -> str:
    """A client-chosen key for an error message: bounded, and escapes made visible."""
    return json.dumps(key[:40])


def _text(raw: bytes) -> str:
    # An object in UTF-8, the common case: "{" first and no NUL after it (no BOM, no UTF-16/32).
    utf8 = raw[:1] == b"{" and raw[1:2] != b"\x00"
    try:
        return raw.decode("utf-8" if utf8 else json.detect_encoding(raw))
    except UnicodeDecodeError:
        raise BadRequest(
            "the request body is not valid UTF-8 (nor UTF-16/32) text", code="invalid_json"
        ) from None


def parse(raw: bytes) -> Any:
    """The JSON value of ``raw``; a clear 400 for anything the engine must not be left to read
    its own way."""
    if not raw:
        raise BadRequest("the request body is empty; send a JSON object", code="invalid_json")
    text = _text(raw).strip(_JSON_SPACE)
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        raise BadRequest("the request body is not valid JSON", code="invalid_json") from None
    except _DuplicateKey as exc:
        raise BadRequest(
            f"the key {show_key(exc.key)} appears twice in one object of the request body",
            code="duplicate_key",
        ) from None
    except _NotFinite as exc:
        raise BadRequest(
            f"the request body holds the number {str(exc)[:40]}, which JSON cannot carry",
            code="invalid_number",
        ) from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply", code="too_deep") from None
    except ValueError:
        raise BadRequest("the request body is not valid JSON", code="invalid_json") from None
    if end != len(text):  # something after the value
        raise BadRequest("the request body is not valid JSON", code="invalid_json")
    return value


def encode(value: Any) -> bytes:
    """The canonical encoding: compact UTF-8 JSON, keys in the order given."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        reason = str(exc)
        if "ecursion" in reason:
            raise BadRequest("the request body is nested too deeply", code="too_deep") from None
        if "surrogate" in reason:
            raise BadRequest(
                "a string in the request body holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)",
                code="invalid_json",
            ) from None
        raise BadRequest(
            "a number in the request body is beyond what 64 bits hold", code="invalid_number"
        ) from None
