"""Hypothesis strategies for request bodies: the fields the gateway decides on, in good and bad
shapes, in other spellings and twice, among ordinary JSON — then sent in odd encodings.

Never generated: the fake engine's `fake` fault switch and `ignore_eos` (a huge limit would
then really be generated), so every failure is the gateway's.
"""

from __future__ import annotations

import codecs
import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages")
DECIDED = (
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "n_predict",
    "max_output_tokens",
    "max_new_tokens",
    "n",
    "n_cmpl",
    "best_of",
    "user",
)


@dataclass(frozen=True)
class Case:
    path: str
    body: bytes
    content_encoding: str | None

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return f"Case({self.path!r}, {self.body[:300]!r}, {self.content_encoding!r})"


_text = st.text(max_size=30)
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_json = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)
_limit: st.SearchStrategy[Any] = st.integers(0, 9).flatmap(
    lambda i: (
        st.integers(min_value=1, max_value=3000)
        if i < 6
        else st.one_of(
            st.none(),
            st.integers(min_value=-3, max_value=0),
            st.floats(min_value=-5, max_value=5000, allow_nan=False),
            st.sampled_from(["5", True, [5], {"n": 1}]),
        )
    )
)
_flag: st.SearchStrategy[Any] = st.integers(0, 9).flatmap(
    lambda i: st.booleans() if i < 7 else st.sampled_from([None, "true", 1, 0, []])
)
_options = st.one_of(
    st.none(),
    st.integers(),
    st.dictionaries(
        st.sampled_from(["include_usage", "INCLUDE_USAGE", "Include_Usage", "x"]), _flag, max_size=3
    ),
)
_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool"]), "content": _text},
    optional={"name": _text, "Content": _text},
)
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "model": st.one_of(st.sampled_from(["tiny", "big", "nope", ""]), _leaf),
    "stream": _flag,
    "stream_options": _options,
    "n": _limit,
    "n_cmpl": _limit,
    "best_of": _limit,
    "user": _leaf,
    "messages": st.one_of(st.lists(_message, max_size=4), _json),
    "prompt": st.one_of(_text, st.lists(_text, max_size=3), st.lists(st.integers(0, 300))),
    "input": st.one_of(_text, st.lists(_text, max_size=3)),
    "system": st.one_of(_text, _json),
}


def _variant(name: str) -> st.SearchStrategy[str]:
    """Other spellings an engine matching keys case-insensitively would take for `name`."""
    return st.sampled_from(
        [
            name.upper(),
            name.title(),
            name.replace("k", "\u212a"),  # the Kelvin sign folds to k
            name.replace("s", "\u017f"),  # the long s folds to s
            name.capitalize(),
        ]
    )


def _value_for(name: str) -> st.SearchStrategy[Any]:
    return _VALUES.get(name, _limit)


_plain_key = st.sampled_from([*DECIDED, "messages", "prompt", "input", "system"])
_other_key = _text.filter(lambda k: k not in ("fake", "ignore_eos"))
_key = st.integers(0, 19).flatmap(
    lambda i: (
        st.sampled_from(DECIDED).flatmap(_variant)
        if i == 0
        else (_other_key if i < 4 else _plain_key)
    )
)
_pair = _key.flatmap(lambda k: st.tuples(st.just(k), _value_for(k.casefold())))


def _dumps(value: Any, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


def _escape_first(key: str) -> str:
    """The key with its first character as a \\u escape: the same key once decoded."""
    if not key or ord(key[0]) > 0xFFFF:
        return json.dumps(key)[1:-1]
    return f"\\u{ord(key[0]):04x}" + json.dumps(key[1:])[1:-1]


@st.composite
def _object_text(draw: st.DrawFn) -> str:
    pairs: list[tuple[str, Any]] = []
    if draw(st.integers(0, 9)) > 0:
        pairs.append(("model", draw(st.sampled_from(["tiny", "big"]))))
    pairs += draw(st.lists(_pair, max_size=6, unique_by=lambda p: p[0].casefold()))
    if pairs and draw(st.integers(0, 5)) == 0:  # a key again, later: as it is or respelled
        again = draw(st.sampled_from(pairs))[0]
        again = draw(st.one_of(st.just(again), _variant(again)))
        pairs.append((again, draw(_value_for(again.casefold()))))
    pairs = draw(st.permutations(pairs))
    ascii_only = draw(st.booleans())
    parts = []
    for key, value in pairs:
        name = (
            _escape_first(key) if key and draw(st.integers(0, 7)) == 0 else _dumps(key, True)[1:-1]
        )
        parts.append(f'"{name}":{_dumps(value, ascii_only)}')
    text = "{" + ",".join(parts) + "}"
    oddity = draw(st.integers(0, 14))
    if oddity == 1:
        text = (
            text[:-1]
            + (',"x":' if parts else '"x":')
            + draw(st.sampled_from(["NaN", "-Infinity", "1e400", '"\\ud800"', "1" * 30]))
            + "}"
        )
    elif oddity == 2:
        depth = draw(st.sampled_from([5, 300, 3000]))
        text = text[:-1] + (',"x":' if parts else '"x":') + "[" * depth + "]" * depth + "}"
    elif oddity == 3:
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    return text


@st.composite
def cases(draw: st.DrawFn) -> Case:
    text = draw(_object_text())
    codec = draw(st.sampled_from(["utf-8"] * 8 + ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"]))
    body = codecs.encode(text, codec, "surrogatepass")
    if draw(st.integers(0, 19)) == 0:
        body = draw(st.binary(max_size=40))
    encoding = draw(st.sampled_from([None] * 8 + ["gzip", "deflate", "identity", "br", "x-other"]))
    packed = draw(st.integers(0, 9)) > 0  # now and then the header lies: not compressed
    if encoding == "gzip" and packed:
        body = gzip.compress(body)
    elif encoding == "deflate" and packed:
        body = zlib.compress(body)
    return Case(draw(st.sampled_from(PATHS)), body, encoding)
