"""Engine launch profiles: loading, validation and rendering (no sockets, no engines)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from authproxy.engines.profile import (
    HOST,
    EngineProfileError,
    available,
    load_profile,
    model_stem,
    parse_profile,
    render,
)

REPO = Path(__file__).resolve().parents[2]
SAMPLE_MODEL = {
    "llama-server-cpu": "/srv/models/qwen2.5-7b-instruct-q4_k_m.gguf",
    "llama-server-metal": "/Users/me/models/qwen2.5-7b-instruct-q4_k_m.gguf",
    "llama-server-vulkan": "/srv/models/qwen2.5-7b-instruct-q4_k_m.gguf",
    "vllm-cuda": "Qwen/Qwen2.5-7B-Instruct",
}

# Options of `vllm serve`, from vLLM's own argument definitions: EngineArgs in
# vllm/engine/arg_utils.py (commit 99d7eb5d) and FrontendArgs in
# vllm/entrypoints/openai/cli_args.py (commit 00522333). vLLM needs CUDA to import, so its
# --help cannot run here; the profile may only use flags from this list.
VLLM_SERVE_FLAGS = {
    "--host", "--port", "--served-model-name", "--tensor-parallel-size", "--dtype",
    "--max-model-len", "--gpu-memory-utilization", "--kv-cache-dtype",
    "--enable-prefix-caching", "--disable-uvicorn-access-log", "--max-num-seqs",
    "--api-key", "--quantization", "--enforce-eager", "--generation-config",
    "--enable-auto-tool-choice", "--tool-call-parser",
}  # fmt: skip


def test_the_documented_profiles_ship_in_the_package() -> None:
    assert set(available()) >= set(SAMPLE_MODEL)
    shipped = REPO / "authproxy" / "engines" / "profiles"
    assert shipped.resolve() == (REPO / "deploy" / "profiles").resolve()
    assert sorted(p.stem for p in (REPO / "deploy" / "profiles").glob("*.yaml")) == available()


@pytest.mark.parametrize("name", sorted(SAMPLE_MODEL))
def test_every_profile_renders_a_loopback_argv(name: str) -> None:
    profile = load_profile(name)
    rendered = render(profile, {"model": SAMPLE_MODEL[name], "port": "9123"})
    argv = rendered.argv
    assert argv[0] == profile.params["binary"].default
    assert SAMPLE_MODEL[name] in argv
    assert argv[argv.index("--host") + 1] == HOST
    assert argv.count("--host") == 1
    assert argv[argv.index("--port") + 1] == "9123"
    assert not [a for a in argv if "{" in a or "}" in a], argv
    assert "" not in argv
    assert rendered.health_url == f"http://127.0.0.1:9123{profile.health_path}"
    assert "host" not in profile.params  # nobody can point an engine at a public interface
    expected = "Qwen2.5-7B-Instruct" if name == "vllm-cuda" else "qwen2.5-7b-instruct-q4_k_m"
    assert rendered.served_name == expected


def test_vllm_profile_uses_only_options_vllm_serve_has() -> None:
    rendered = render(load_profile("vllm-cuda"), {"model": "Qwen/Qwen2.5-7B-Instruct"})
    assert rendered.argv[1:3] == ["serve", "Qwen/Qwen2.5-7B-Instruct"]  # positional model
    flags = {a for a in rendered.argv if a.startswith("--")}
    assert flags <= VLLM_SERVE_FLAGS, flags - VLLM_SERVE_FLAGS
    assert {"--max-model-len", "--gpu-memory-utilization", "--enable-prefix-caching"} <= flags
    assert rendered.env["VLLM_NO_USAGE_STATS"] == "1"
    assert "CUDA_VISIBLE_DEVICES" not in rendered.env  # empty `gpus`: every GPU


def test_values_and_optional_flags() -> None:
    profile = load_profile("vllm-cuda")
    rendered = render(
        profile,
        {
            "model": "/data/m/",
            "gpus": "0,1",
            "tensor-parallel-size": "2",  # dashes work like underscores
            "extra": "--max-num-seqs 64 --quantization 'fp8'",
            "tool_call_parser": "hermes",
        },
    )
    argv = rendered.argv
    tools = argv.index("--enable-auto-tool-choice")
    assert argv[tools + 1 : tools + 3] == ["--tool-call-parser", "hermes"]
    assert argv[argv.index("--tensor-parallel-size") + 1] == "2"
    assert argv[-4:] == ["--max-num-seqs", "64", "--quantization", "fp8"]
    assert rendered.env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert rendered.served_name == "m"

    cpu = load_profile("llama-server-cpu")
    plain = render(cpu, {"model": "/m/x.gguf"}).argv
    assert "--api-key-file" not in plain  # an empty optional value drops the whole flag
    keyed = render(cpu, {"model": "/m/x.gguf", "api_key_file": "/etc/k"}).argv
    assert keyed[keyed.index("--api-key-file") + 1] == "/etc/k"


def test_bad_input_is_one_message_naming_every_problem() -> None:
    profile = load_profile("llama-server-cpu")
    with pytest.raises(EngineProfileError) as info:
        render(profile, {"thread": "4", "parallel": "many", "flash_attn": "maybe"})
    message = str(info.value)
    assert "\n" not in message
    for part in ("unknown parameter 'thread'", "model is required", "parallel='many'",
                 "flash_attn='maybe'", "takes: binary, model"):  # fmt: skip
        assert part in message
    with pytest.raises(EngineProfileError, match="port=70000"):
        render(profile, {"model": "/m/x.gguf", "port": "70000"})
    with pytest.raises(EngineProfileError, match=r"unknown engine profile 'tgi'.*vllm-cuda"):
        load_profile("tgi")


def test_model_stem() -> None:
    assert model_stem("/m/qwen2.5-7b-q4_k_m.gguf") == "qwen2.5-7b-q4_k_m"
    assert model_stem("meta-llama/Llama-3.1-8B-Instruct") == "Llama-3.1-8B-Instruct"
    assert model_stem("/data/models/mistral/") == "mistral"


GOOD = """
description: d
engine: e
health_path: /health
params:
  binary: {default: e, help: h}
  model: {help: h}
  port: {default: 1, help: h}
  name: {default: "{model_stem}", help: h}
argv: ["{binary}", [--port, "{port}"]]
"""


def test_profile_files_are_validated() -> None:
    assert parse_profile(GOOD, name="ok").params["port"].default == "1"  # numbers become text
    cases = {
        "unknown placeholder(s) prot": GOOD.replace('"{port}"', '"{prot}"'),
        "params: missing name": GOOD.replace('  name: {default: "{model_stem}", help: h}\n', ""),
        "YAML boolean": GOOD.replace("default: e,", "default: on,"),
        "colour: Extra inputs": GOOD + "colour: blue\n",
        "health_path must start with /": GOOD.replace("/health", "health"),
    }
    for expected, text in cases.items():
        with pytest.raises(EngineProfileError, match=re.escape(expected)):
            parse_profile(text, name="bad")


def test_a_profile_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    assert render(load_profile(str(path)), {"model": "m"}).argv == ["e", "--port", "1"]
    with pytest.raises(EngineProfileError, match="cannot read profile"):
        load_profile(str(tmp_path / "missing.yaml"))
