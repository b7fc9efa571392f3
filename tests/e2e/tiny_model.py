"""Write a tiny random-weight llama-architecture GGUF model for end-to-end tests.

The model is a few hundred kilobytes, written with the ``gguf`` package; nothing is
downloaded.  Its vocabulary is SentencePiece-style and byte level (``<unk>``, ``<s>``,
``</s>`` and the 256 byte tokens ``<0x00>`` .. ``<0xFF>``), so any text tokenizes.

The weights are random but shaped so that the output is predictable in kind: one
embedding dimension carries a large constant that dominates the final hidden state, and
the output matrix maps that dimension to a positive logit only for lowercase ASCII
letters and the space.  The model therefore never samples ``</s>``, a control token or
an invalid UTF-8 byte: every completion is plain ASCII text that runs until
``max_tokens`` (``finish_reason == "length"``, ``completion_tokens == max_tokens``).
That keeps the tests that count tokens exact.

The same call writes the same bytes every time (fixed seed, no timestamps).
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import numpy.typing as npt

MODEL_NAME = "tiny"
ARCH = "llama"
SEED = 20240611

N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 128
N_CTX = 8192  # long enough for requests that must stay busy for a while
RMS_EPS = 1e-5
ROPE_BASE = 10000.0

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
N_SPECIAL = 3
N_VOCAB = N_SPECIAL + 256

# Text the model may produce: lowercase letters and the space.
ALLOWED_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz ")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_HIDDEN_CONST = 8.0  # the constant in embedding dimension 0
_WEIGHT_STD = 0.02
_LOGIT_SCALE = 1.0  # output weight on dimension 0 for allowed tokens (plus noise)

F32 = npt.NDArray[np.float32]
F16 = npt.NDArray[np.float16]


def byte_token(value: int) -> str:
    """The vocabulary piece of a raw byte, e.g. ``<0x41>``."""
    return f"<0x{value:02X}>"


def token_id_of_byte(value: int) -> int:
    """Token id of the byte token for ``value``."""
    return N_SPECIAL + value


def _vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"] + [byte_token(b) for b in range(256)]
    scores = [0.0] * len(tokens)
    types = [
        int(gguf.TokenType.UNKNOWN),
        int(gguf.TokenType.CONTROL),
        int(gguf.TokenType.CONTROL),
    ] + [int(gguf.TokenType.BYTE)] * 256
    return tokens, scores, types


def _matrix(rng: np.random.Generator, rows: int, cols: int) -> F16:
    """A (rows, cols) weight; GGUF stores it with ne = [cols, rows]."""
    return (rng.standard_normal((rows, cols)) * _WEIGHT_STD).astype(np.float16)


def _ones(n: int) -> F32:
    return np.ones(n, dtype=np.float32)


def _embedding(rng: np.random.Generator) -> F16:
    emb = rng.standard_normal((N_VOCAB, N_EMBD)) * _WEIGHT_STD
    emb[:, 0] = _HIDDEN_CONST
    return emb.astype(np.float16)


def _output(rng: np.random.Generator) -> F16:
    out = rng.standard_normal((N_VOCAB, N_EMBD)) * _WEIGHT_STD
    allowed = np.array(
        [tid >= N_SPECIAL and (tid - N_SPECIAL) in ALLOWED_BYTES for tid in range(N_VOCAB)]
    )
    noise = rng.uniform(0.0, 0.5, size=N_VOCAB)
    out[:, 0] = np.where(allowed, _LOGIT_SCALE + noise, -_LOGIT_SCALE * 4)
    return out.astype(np.float16)


def _tensors() -> list[tuple[str, F16 | F32]]:
    rng = np.random.default_rng(SEED)
    head_dim = N_EMBD // N_HEAD
    n_embd_kv = head_dim * N_HEAD_KV
    tensors: list[tuple[str, F16 | F32]] = [("token_embd.weight", _embedding(rng))]
    for i in range(N_LAYER):
        p = f"blk.{i}."
        tensors += [
            (p + "attn_norm.weight", _ones(N_EMBD)),
            (p + "attn_q.weight", _matrix(rng, N_EMBD, N_EMBD)),
            (p + "attn_k.weight", _matrix(rng, n_embd_kv, N_EMBD)),
            (p + "attn_v.weight", _matrix(rng, n_embd_kv, N_EMBD)),
            (p + "attn_output.weight", _matrix(rng, N_EMBD, N_EMBD)),
            (p + "ffn_norm.weight", _ones(N_EMBD)),
            (p + "ffn_gate.weight", _matrix(rng, N_FF, N_EMBD)),
            (p + "ffn_up.weight", _matrix(rng, N_FF, N_EMBD)),
            (p + "ffn_down.weight", _matrix(rng, N_EMBD, N_FF)),
        ]
    tensors += [("output_norm.weight", _ones(N_EMBD)), ("output.weight", _output(rng))]
    return tensors


def _add_metadata(writer: gguf.GGUFWriter) -> None:
    writer.add_name(MODEL_NAME)
    writer.add_file_type(int(gguf.LlamaFileType.MOSTLY_F16))
    writer.add_vocab_size(N_VOCAB)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_rope_freq_base(ROPE_BASE)
    writer.add_layer_norm_rms_eps(RMS_EPS)

    tokens, scores, types = _vocab()
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(UNK_ID)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)


def write_tiny_model(path: Path) -> Path:
    """Write the tiny model to ``path`` (a ``.gguf`` file) and return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), ARCH)
    try:
        _add_metadata(writer)
        for name, data in _tensors():
            writer.add_tensor(name, data)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    tmp.replace(path)
    return path
