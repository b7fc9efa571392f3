"""The body the engine gets: parsed once, refused where an engine could read it differently,
re-encoded canonically with the gateway's decisions written in."""

from __future__ import annotations

import codecs
import json
from typing import Any

import pytest

from authproxy.config.schema import PromptEstimate, Quotas
from authproxy.errors import BadRequest
from authproxy.proxy.endpoints import Endpoint, row
from authproxy.proxy.request_body import (
    PreparedRequest,
    estimate_prompt_tokens,
    for_engine,
    prepare,
)

CHAT = row("/v1/chat/completions")
COMPLETIONS = row("/v1/completions")
EMBED = row("/v1/embeddings")
MESSAGES = row("/v1/messages")
SETTINGS = Quotas()
DEFAULT = SETTINGS.default_max_tokens


def _prepare(raw: bytes, endpoint: Endpoint = CHAT) -> PreparedRequest:
    return prepare(endpoint, raw, settings=SETTINGS)


def _sent(raw: bytes, endpoint: Endpoint = CHAT, model: str = "m") -> dict[str, Any]:
    body = for_engine(_prepare(raw, endpoint), model)

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        assert len({k for k, _ in pairs}) == len(pairs), pairs
        return dict(pairs)

    sent: dict[str, Any] = json.loads(body.decode("utf-8"), object_pairs_hook=no_duplicates)
    return sent


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        # What Go's encoding/json (Ollama, LocalAI) would read as the last `model`.
        (b'{"model": "allowed", "MODEL": "forbidden"}', "ambiguous_key"),
        (b'{"model": "allowed", "\\u004dodel": "forbidden"}', "ambiguous_key"),
        (b'{"model": "allowed", "\\u006dodel": "forbidden"}', "duplicate_key"),
        (b'{"model": "a", "model": "b"}', "duplicate_key"),
        (b'{"model": "m", "Max_Tokens": 4000}', "ambiguous_key"),
        ('{"model": "m", "max_to\u212aens": 4000}'.encode(), "ambiguous_key"),  # Kelvin sign
        ('{"model": "m", "\u017ftream": true}'.encode(), "ambiguous_key"),  # long s
        (b'{"model": "m", "N": 4}', "ambiguous_key"),
        (b'{"model": "m", "foo": 1, "FOO": 2}', "ambiguous_key"),
        (b'{"model": "m", "messages": [{"role": "user", "content": "a", "content": "b"}]}',
         "duplicate_key"),
        (b'{"model": "m", "stream": true, "stream_options": {"include_usage": true, '
         b'"include_usage": false}}', "duplicate_key"),
        (b'{"model": "m", "stream": true, "stream_options": {"include_usage": true, '
         b'"Include_Usage": false}}', "ambiguous_key"),
    ],
)  # fmt: skip
def test_keys_an_engine_could_read_another_way_are_refused(raw: bytes, code: str) -> None:
    with pytest.raises(BadRequest) as info:
        _prepare(raw)
    assert info.value.code == code


@pytest.mark.parametrize(
    "field", ["max_tokens", "max_completion_tokens", "n_predict", "max_output_tokens"]
)
@pytest.mark.parametrize("value", ["-1", "0", "5.5", "5.0", '"5"', "true", "[5]", "1e3"])
def test_limits_that_are_not_a_positive_whole_number_are_refused(field: str, value: str) -> None:
    with pytest.raises(BadRequest) as info:
        _prepare(f'{{"model": "m", "{field}": {value}}}'.encode())
    assert info.value.code == "invalid_max_tokens"
    assert field in info.value.message


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"model": "m", "n": 0}', "invalid_n"),
        (b'{"model": "m", "n": 1.5}', "invalid_n"),
        (b'{"model": "m", "best_of": "2"}', "invalid_n"),
        (b'{"model": "m", "n_cmpl": 2}', "too_many_outputs"),
        (b'{"model": "m", "stream": true, "stream_options": {"include_usage": "yes"}}',
         "invalid_stream_options"),
        (b'{"model": "m", "stream": true, "stream_options": {"include_usage": null}}',
         "invalid_stream_options"),
        (b'{"model": "m", "stream_options": {"include_usage": 1}}', "invalid_stream_options"),
        (b'{"model": "m", "temperature": NaN}', "invalid_number"),
        (b'{"model": "m", "temperature": -Infinity}', "invalid_number"),
        (b'{"model": "m", "temperature": 1e400}', "invalid_number"),
        (b'{"model": "m", "seed": 123456789012345678901234567890}', "invalid_number"),
        (b'{"model": "m", "messages": [{"content": "\\ud800"}]}', "invalid_json"),
        (b'{"model": "m", "x": "\xed\xa0\x80"}', "invalid_json"),  # a surrogate in UTF-8
        (b'{"model": "m", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deep"),
        (b'{"model": "m", "x": ' + b"[" * 400 + b"]" * 400 + b"}", "too_deep"),
    ],
    ids=lambda v: v[:60].decode("latin-1") if isinstance(v, bytes) else str(v),
)  # fmt: skip
def test_bad_values_are_refused(raw: bytes, code: str) -> None:
    with pytest.raises(BadRequest) as info:
        _prepare(raw)
    assert info.value.code == code


def test_the_limit_goes_under_every_name_and_the_clients_others_go() -> None:
    raw = b'{"model": "m", "max_tokens": 5, "n_predict": 4000, "max_new_tokens": 9, "x": 1}'
    prepared = _prepare(raw)
    # The client's limit is the one the engines rank first (llama-server: n_predict).
    assert prepared.limit == 4000 and prepared.reserved_output == 4000
    sent = _sent(raw)
    assert sent == {"model": "m", "x": 1, "max_completion_tokens": 4000, "max_tokens": 4000}


def test_no_limit_given_gets_the_default_written() -> None:
    assert _sent(b'{"model": "m", "max_tokens": null}') == {
        "model": "m",
        "max_completion_tokens": DEFAULT,
        "max_tokens": DEFAULT,
    }
    assert _sent(b'{"model": "m", "prompt": "p"}', COMPLETIONS) == {
        "model": "m",
        "prompt": "p",
        "max_tokens": DEFAULT,
    }
    assert _sent(b'{"model": "m", "messages": []}', MESSAGES) == {
        "model": "m",
        "messages": [],
        "max_tokens": DEFAULT,
    }


def test_embeddings_generate_nothing_and_keep_their_fields() -> None:
    prepared = _prepare(b'{"model": "m", "input": ["a", "b"], "dimensions": 8}', EMBED)
    assert prepared.reserved_output == 0
    assert _sent(b'{"model": "alias", "input": "a", "n": 3}', EMBED, "engine-id") == {
        "model": "engine-id",
        "input": "a",
        "n": 3,
    }


@pytest.mark.parametrize(
    ("raw", "endpoint", "outputs"),
    [
        (b'{"model": "m", "n": 3, "max_tokens": 10}', CHAT, 3),
        (b'{"model": "m", "n": 2, "best_of": 4, "max_tokens": 10}', COMPLETIONS, 4),
        (b'{"model": "m", "prompt": ["a", "b", "c"], "n": 2, "max_tokens": 10}', COMPLETIONS, 6),
        (b'{"model": "m", "prompt": [1, 2, 3], "max_tokens": 10}', COMPLETIONS, 1),
        (b'{"model": "m", "prompt": [[1, 2], [3]], "max_tokens": 10}', COMPLETIONS, 2),
    ],
)
def test_every_output_is_reserved_for(raw: bytes, endpoint: Endpoint, outputs: int) -> None:
    prepared = prepare(endpoint, raw, settings=Quotas(max_outputs=6))
    assert (prepared.outputs, prepared.reserved_output) == (outputs, outputs * 10)
    if outputs > 1:  # by default one output per request
        with pytest.raises(BadRequest) as info:
            _prepare(raw, endpoint)
        assert info.value.code == "too_many_outputs"


def test_stream_usage_is_the_gateways_whatever_the_client_wrote() -> None:
    for options in (b"", b', "stream_options": null', b', "stream_options": {"x": 1}'):
        raw = b'{"model": "m", "stream": true' + options + b"}"
        prepared = _prepare(raw)
        assert prepared.strip_usage
        assert _sent(raw)["stream_options"]["include_usage"] is True
    asked = b'{"model": "m", "stream": true, "stream_options": {"include_usage": true}}'
    assert not _prepare(asked).strip_usage
    assert _sent(asked)["stream_options"] == {"include_usage": True}
    not_streaming = _sent(b'{"model": "m", "stream": false, "stream_options": null}')
    assert "stream_options" not in not_streaming and not_streaming["stream"] is False


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_bodies_reach_the_engine_as_utf8(codec: str) -> None:
    text = '{"model": "m", "stream": true, "messages": [{"role": "user", "content": "é 中 𝄞"}]}'
    raw = codecs.encode(text, codec)
    sent = _sent(raw)
    assert sent["messages"][0]["content"] == "é 中 𝄞"
    assert sent["stream_options"] == {"include_usage": True}


def test_the_estimate_counts_every_prompt_byte_and_the_template_allowances() -> None:
    allowance = PromptEstimate()
    text = "x" * 400 + "é中𝄞"  # 400 + 2 + 3 + 4 bytes in UTF-8
    body = {"model": "m", "max_tokens": 3, "messages": [{"role": "user", "content": text}]}
    estimate = estimate_prompt_tokens(body)
    assert estimate >= len(text.encode()) + allowance.per_message + allowance.per_request
    # The gateway's own fields are not prompt material.
    assert estimate_prompt_tokens({**body, "max_tokens": 99999, "stream": True}) == estimate
    assert _prepare(json.dumps(body).encode()).prompt_estimate == estimate
    assert estimate_prompt_tokens({}) == allowance.per_request


def test_inline_images_count_an_allowance_not_their_base64() -> None:
    image = "data:image/png;base64," + "A" * 200_000
    part = {"type": "image_url", "image_url": {"url": image}}
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}]}
    allowance = PromptEstimate()
    estimate = estimate_prompt_tokens(body)
    assert allowance.per_media < estimate < allowance.per_media + 200


OLLAMA_CHAT = row("/api/chat")


def test_ollamas_limit_is_options_num_predict() -> None:
    # A negative num_predict is Ollama's "no limit": the gateway's default applies.
    raw = b'{"model": "m", "options": {"num_predict": -1, "temperature": 0}, "max_tokens": 7}'
    assert _sent(raw, OLLAMA_CHAT) == {
        "model": "m",
        "options": {"num_predict": 7, "temperature": 0},
    }
    asked = b'{"model": "m", "options": {"num_predict": 12}}'
    assert _sent(asked, OLLAMA_CHAT) == {"model": "m", "options": {"num_predict": 12}}
    none = b'{"model": "m", "options": {"num_predict": -2}}'
    assert _sent(none, OLLAMA_CHAT)["options"] == {"num_predict": DEFAULT}
    assert _prepare(asked, OLLAMA_CHAT).stream is True  # Ollama streams unless told not to
    assert _prepare(b'{"model": "m", "stream": false}', OLLAMA_CHAT).stream is False


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        # Go's encoding/json matches keys case-insensitively and takes the last match.
        (b'{"model": "m", "options": {"num_predict": 5, "NUM_PREDICT": 9000}}', "ambiguous_key"),
        (b'{"model": "m", "options": {"Num_Predict": 9000}}', "ambiguous_key"),
        (b'{"model": "m", "options": {"num_predict": 5, "num_predict": 9}}', "duplicate_key"),
        (b'{"model": "m", "options": {"seed": 1, "SEED": 2}}', "ambiguous_key"),
        (b'{"model": "m", "Options": {"num_predict": 9000}}', "ambiguous_key"),
        (b'{"model": "m", "options": "odd"}', "invalid_options"),
        (b'{"model": "m", "options": {"num_predict": 0}}', "invalid_max_tokens"),
        (b'{"model": "m", "options": {"num_predict": 2.5}}', "invalid_max_tokens"),
    ],
)
def test_ollama_options_are_read_one_way(raw: bytes, code: str) -> None:
    with pytest.raises(BadRequest) as info:
        _prepare(raw, OLLAMA_CHAT)
    assert info.value.code == code


def test_ollama_show_takes_name_where_model_is_absent_and_forwards_model() -> None:
    show = row("/api/show")
    assert _prepare(b'{"name": "m"}', show).model == "m"
    assert _sent(b'{"name": "m", "verbose": true}', show, model="engine-id") == {
        "verbose": True,
        "model": "engine-id",
    }
    assert _prepare(b'{"model": "a", "name": "b"}', show).model == "a"  # as Ollama reads it
    with pytest.raises(BadRequest) as info:
        _prepare(b'{"model": "a", "NAME": "b"}', show)
    assert info.value.code == "ambiguous_key"


def test_the_engine_body_leaves_the_request_as_it_was_and_the_clamp_copies_all_but_the_limit() -> (
    None
):
    prepared = _prepare(
        b'{"model": "m", "messages": [], "n": 1, "max_tokens": 9, "stream": true}'
    )._replace(pinned="a", previous_response_id="resp_1", target="/x")
    before = prepared._replace()
    sent = for_engine(prepared, "engine-id")
    assert json.loads(sent)["model"] == "engine-id"
    assert prepared == before and not prepared.body  # failover sends the same to the next
    assert for_engine(prepared, "engine-id") == sent
    clamped = prepared.with_limit(3)
    assert clamped == prepared._replace(limit=3)
    assert prepared.limit == 9
    with pytest.raises(AttributeError):
        clamped.limit = 9  # type: ignore[misc]
