from __future__ import annotations

import json

from authproxy.proxy.sse_relay import SseRelay
from authproxy.proxy.usage import usage_from_body


def _chunk(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


CONTENT = _chunk({"choices": [{"index": 0, "delta": {"content": "hi"}}]})
USAGE_ONLY = _chunk({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
DONE = b"data: [DONE]\n\n"


def test_body_usage_is_read_without_parsing_everything() -> None:
    body = json.dumps(
        {"data": [{"embedding": [0.1] * 1000}], "usage": {"prompt_tokens": 5, "total_tokens": 5}}
    ).encode()
    tokens = usage_from_body(body, "openai")
    assert (tokens.prompt, tokens.completion) == (5, None)


def test_body_without_usage_or_broken() -> None:
    assert not usage_from_body(b'{"choices": []}', "openai").known
    assert not usage_from_body(b'{"usage": {', "openai").known
    # A "usage" that is only text inside a string is escaped and never matches.
    assert not usage_from_body(json.dumps({"text": 'say "usage": {}'}).encode(), "openai").known


def test_anthropic_body() -> None:
    body = b'{"content": [], "usage": {"input_tokens": 4, "output_tokens": 9}}'
    tokens = usage_from_body(body, "anthropic")
    assert (tokens.prompt, tokens.completion) == (4, 9)


def test_usage_chunk_is_stripped_when_the_client_did_not_ask() -> None:
    relay = SseRelay(dialect="openai", strip_usage=True)
    out = relay.feed(CONTENT + USAGE_ONLY + DONE)
    assert out == CONTENT + DONE
    assert (relay.tokens.prompt, relay.tokens.completion) == (7, 3)
    assert relay.done and relay.content_events == 1


def test_usage_chunk_is_kept_when_the_client_asked() -> None:
    relay = SseRelay(dialect="openai", strip_usage=False)
    assert relay.feed(CONTENT + USAGE_ONLY + DONE) == CONTENT + USAGE_ONLY + DONE
    assert relay.tokens.completion == 3


def test_usage_on_a_content_chunk_is_removed_but_the_content_kept() -> None:
    mixed = _chunk(
        {
            "choices": [{"delta": {"content": "x"}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2},
        }
    )
    relay = SseRelay(dialect="openai", strip_usage=True)
    out = relay.feed(mixed)
    parsed = json.loads(out.removeprefix(b"data: "))
    assert "usage" not in parsed and parsed["choices"][0]["delta"]["content"] == "x"
    assert relay.tokens.completion == 2


def test_events_split_across_reads_are_reassembled() -> None:
    relay = SseRelay(dialect="openai", strip_usage=True)
    data = CONTENT + USAGE_ONLY + DONE
    out = b"".join(relay.feed(data[i : i + 7]) for i in range(0, len(data), 7))
    assert out == CONTENT + DONE
    assert relay.tokens.prompt == 7


def test_crlf_separated_events() -> None:
    relay = SseRelay(dialect="openai", strip_usage=False)
    event = CONTENT.replace(b"\n\n", b"\r\n\r\n")
    assert relay.feed(event + event) == event + event
    assert relay.content_events == 2


def test_cut_off_tail_is_handed_back() -> None:
    relay = SseRelay(dialect="openai", strip_usage=False)
    assert relay.feed(CONTENT + b'data: {"cho') == CONTENT
    assert relay.finish() == b'data: {"cho'
    assert not relay.done


def test_anthropic_stream_takes_output_from_message_delta_only() -> None:
    events = [
        b'event: message_start\ndata: {"type":"message_start",'
        b'"message":{"usage":{"input_tokens":12,"output_tokens":1}}}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta",'
        b'"delta":{"type":"text_delta","text":"a"}}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":5}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    relay = SseRelay(dialect="anthropic", strip_usage=False)
    assert relay.feed(b"".join(events)) == b"".join(events)
    assert (relay.tokens.prompt, relay.tokens.completion) == (12, 5)
    assert relay.done


def test_anthropic_cut_before_message_delta_has_no_completion_count() -> None:
    relay = SseRelay(dialect="anthropic", strip_usage=False)
    relay.feed(
        b'data: {"type":"message_start",'
        b'"message":{"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'
        b'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"a"}}\n\n'
    )
    assert relay.tokens.prompt == 3 and relay.tokens.completion is None
    assert relay.content_events == 1 and not relay.done


def test_plain_events_split_anywhere_pass_through_whole_and_counted() -> None:
    stream = CONTENT * 5 + DONE
    for size in (1, 7, 50, len(stream)):
        relay = SseRelay(dialect="openai", strip_usage=True)
        out = b""
        for i in range(0, len(stream), size):
            piece = relay.feed(stream[i : i + size])
            assert not piece or piece.endswith(b"\n\n")  # only whole events go on
            out += piece
        assert out == stream
        assert relay.content_events == 5 and relay.done


def test_a_stream_read_at_once_keeps_its_content_and_drops_only_the_usage_chunk() -> None:
    # The events before the usage chunk go on as one slice, the usage chunk is read alone.
    stream = CONTENT * 20 + USAGE_ONLY + DONE
    for size in (len(stream), 100, 33):
        relay = SseRelay(dialect="openai", strip_usage=True)
        out = b"".join(relay.feed(stream[i : i + size]) for i in range(0, len(stream), size))
        assert out + relay.finish() == CONTENT * 20 + DONE
        assert relay.content_events == 20 and relay.done
        assert (relay.tokens.prompt, relay.tokens.completion) == (7, 3)


def test_an_answer_whose_usage_is_not_json_or_nested_past_any_stack_counts_as_unknown() -> None:
    deep = b'{"usage": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for body in (deep, b'{"usage": nope}', b'{"usage":', b'{"usage" 3}'):
        tokens = usage_from_body(body, "openai")
        assert (tokens.prompt, tokens.completion, tokens.known) == (None, None, False)
    whole = usage_from_body(b'{"usage": {"prompt_tokens": 4, "completion_tokens": 2}}', "openai")
    assert (whole.prompt, whole.completion) == (4, 2)
