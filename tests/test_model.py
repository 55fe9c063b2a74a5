"""codex_cli.model: finding models, loading them, LoRA targets, base identity, and the built-in codex-tiny."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codex_cli.config import LoraConfig, ModelConfig
from codex_cli.errors import ModelError
from codex_cli.model import (
    BUILTIN_DIR,
    BUILTIN_MODEL,
    base_identity,
    decoder_layers,
    default_target_modules,
    load_model,
    load_tokenizer,
    resolve_model_path,
)

LLAMA_TARGETS = ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def test_builtin_resolves_to_package_assets() -> None:
    assert resolve_model_path(ModelConfig()) == BUILTIN_DIR
    assert BUILTIN_DIR.name == BUILTIN_MODEL == "codex-tiny"


def test_local_directory_resolves_to_itself(tiny_model_dir: Path) -> None:
    assert resolve_model_path(ModelConfig(name=str(tiny_model_dir))) == tiny_model_dir.resolve()


def test_missing_hub_model_says_where_it_looked_and_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        resolve_model_path(ModelConfig(name="acme/no-such-model"))
    cache = Path.home() / ".cache" / "huggingface" / "hub"  # conftest points HF_HOME there
    assert str(info.value) == (
        f"model 'acme/no-such-model' not found: no local directory 'acme/no-such-model' and no copy in the "
        f"Hugging Face cache ({cache}); set model.name to a local model directory or to 'codex-tiny', download it "
        "once (huggingface-cli download acme/no-such-model), or set model.allow_download=true"
    )
    assert info.value.exit_code == 2


def test_model_in_local_hf_cache_is_found(tiny_model_dir: Path) -> None:
    snapshot = Path.home() / ".cache" / "huggingface" / "hub" / "models--acme--tiny" / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_model_dir, snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("a" * 40)
    assert resolve_model_path(ModelConfig(name="acme/tiny")) == snapshot


def test_missing_hub_model_with_download_allowed_is_left_to_from_pretrained() -> None:
    assert resolve_model_path(ModelConfig(name="acme/no-such-model", allow_download=True)) == "acme/no-such-model"


def test_local_files_only_false_is_also_an_opt_in_to_downloads() -> None:
    assert resolve_model_path(ModelConfig(name="acme/no-such-model", local_files_only=False)) == "acme/no-such-model"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        pytest.param("./no-such-dir", "model directory './no-such-dir' not found; check the path in model.name",
                     id="relative-path"),
        pytest.param("/no/such/dir", "model directory '/no/such/dir' not found; check the path in model.name",
                     id="absolute-path"),
    ],
)
def test_missing_local_directory(name: str, message: str) -> None:
    with pytest.raises(ModelError) as info:
        resolve_model_path(ModelConfig(name=name))
    assert str(info.value) == message


def test_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as info:
        resolve_model_path(ModelConfig(name=str(tmp_path)))
    assert str(info.value) == (f"model directory '{tmp_path}' has no config.json; point model.name at a directory "
                               "written by save_pretrained")


def test_file_instead_of_directory(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(ModelError) as info:
        resolve_model_path(ModelConfig(name=str(weights)))
    assert str(info.value) == (f"model.name '{weights}' is a file; point it at a model directory written by "
                               "save_pretrained")


def test_full_load_trains_every_parameter(tiny_model_dir: Path) -> None:
    loaded = load_model(ModelConfig(name=str(tiny_model_dir)), LoraConfig())
    assert loaded.kind == "full"
    assert loaded.trainable_params == loaded.total_params == sum(p.numel() for p in loaded.model.parameters())
    assert loaded.path == str(tiny_model_dir.resolve())
    assert loaded.device == "cpu" and loaded.notes == []
    assert loaded.tokenizer.pad_token == "<|pad|>"


def test_lora_load_finds_targets_and_freezes_the_base(tiny_model_dir: Path) -> None:
    torch.manual_seed(0)
    loaded = load_model(ModelConfig(name=str(tiny_model_dir)), LoraConfig(enabled=True, r=4, alpha=8))
    assert loaded.kind == "lora"
    assert 0 < loaded.trainable_params < loaded.total_params
    assert sorted(loaded.model.peft_config["default"].target_modules) == LLAMA_TARGETS
    trainable = {n for n, p in loaded.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    # Two q/k/v/o/gate/up/down sets of rank-4 A and B matrices per layer, two layers (hidden 32, mlp 64).
    per_layer = 4 * ((32 + 32) + (32 + 16) * 2 + (32 + 32)) + 4 * ((32 + 64) * 2 + (64 + 32))
    assert loaded.trainable_params == 2 * per_layer


def test_explicit_lora_targets_are_used(tiny_model_dir: Path) -> None:
    loaded = load_model(ModelConfig(name=str(tiny_model_dir)), LoraConfig(enabled=True, target_modules=["q_proj"]))
    assert loaded.model.peft_config["default"].target_modules == {"q_proj"}


def test_unknown_lora_targets_are_a_model_error(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError) as info:
        load_model(ModelConfig(name=str(tiny_model_dir)), LoraConfig(enabled=True, target_modules=["c_attn"]))
    assert str(info.value).startswith("lora.target_modules ['c_attn'] do not match this model's layers (")
    assert str(info.value).endswith("); unset lora.target_modules to find them automatically")


def test_gradient_checkpointing_is_enabled(tiny_model_dir: Path) -> None:
    loaded = load_model(ModelConfig(name=str(tiny_model_dir)), LoraConfig(enabled=True), gradient_checkpointing=True)
    base = loaded.model.get_base_model()
    assert getattr(base, "is_activation_checkpointing", None) or base.is_gradient_checkpointing
    assert base.config.use_cache is False
    batch = torch.arange(12).reshape(2, 6)
    loaded.model.train()
    loaded.model(input_ids=batch, labels=batch).loss.backward()
    assert all(p.grad is not None for p in loaded.model.parameters() if p.requires_grad)


def test_cuda_without_a_gpu_is_a_clear_error(tiny_model_dir: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available here")
    with pytest.raises(ModelError) as info:
        load_model(ModelConfig(name=str(tiny_model_dir), device="cuda"), LoraConfig())
    assert str(info.value) == "model.device is 'cuda' but no CUDA device is available; set model.device=cpu or auto"


def test_missing_pad_token_falls_back_to_eos_and_says_so(tiny_model_dir: Path, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    model_dir = tmp_path / "no-pad"
    shutil.copytree(tiny_model_dir, model_dir)
    config_file = model_dir / "tokenizer_config.json"
    tokenizer_config = json.loads(config_file.read_text())
    del tokenizer_config["pad_token"]
    config_file.write_text(json.dumps(tokenizer_config))
    cfg = ModelConfig(name=str(model_dir))
    with caplog.at_level("WARNING", logger="codex.model"):
        tokenizer = load_tokenizer(cfg)
    assert tokenizer.pad_token == "<|endoftext|>"
    note = (f"model '{model_dir}' has no pad token: padding with its eos token '<|endoftext|>' "
            "(padding is masked out of the loss)")
    assert caplog.messages == [note]
    assert load_model(cfg, LoraConfig()).notes == [note]


def _tiny(model_type: str) -> torch.nn.Module:
    from transformers import AutoConfig, AutoModelForCausalLM

    sizes = {"gpt2": dict(n_embd=16, n_layer=1, n_head=2, vocab_size=64, n_positions=32),
             "gpt_neox": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                              vocab_size=64),
             "qwen2": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                           intermediate_size=32, vocab_size=64),
             "phi": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         vocab_size=64),
             "mistral": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                             intermediate_size=32, vocab_size=64),
             "gemma": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                           intermediate_size=32, vocab_size=64, head_dim=8),
             "falcon": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, vocab_size=64),
             "opt": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32, vocab_size=64,
                         word_embed_proj_dim=16)}
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **sizes[model_type]))


@pytest.mark.parametrize(
    ("model_type", "targets"),
    [
        pytest.param("gpt2", ["c_attn", "c_fc", "c_proj"], id="gpt2-conv1d"),
        pytest.param("gpt_neox", ["dense", "dense_4h_to_h", "dense_h_to_4h", "query_key_value"], id="gpt-neox"),
        pytest.param("qwen2", LLAMA_TARGETS, id="qwen2"),
        pytest.param("phi", ["dense", "fc1", "fc2", "k_proj", "q_proj", "v_proj"], id="phi"),
    ],
)
def test_default_targets_for_common_architectures(model_type: str, targets: list[str]) -> None:
    assert default_target_modules(_tiny(model_type)) == targets


@pytest.mark.parametrize(
    ("model_type", "layer"),
    [
        pytest.param("gpt2", "GPT2Block", id="gpt2"),
        pytest.param("gpt_neox", "GPTNeoXLayer", id="gpt-neox"),
        pytest.param("qwen2", "Qwen2DecoderLayer", id="qwen2"),
        pytest.param("phi", "PhiDecoderLayer", id="phi"),
        pytest.param("mistral", "MistralDecoderLayer", id="mistral"),
        pytest.param("gemma", "GemmaDecoderLayer", id="gemma"),
        pytest.param("falcon", "FalconDecoderLayer", id="falcon"),
        pytest.param("opt", "OPTDecoderLayer", id="opt"),
    ],
)
def test_decoder_layers_for_common_architectures(model_type: str, layer: str) -> None:
    assert [type(module).__name__ for module in decoder_layers(_tiny(model_type))] == [layer]


def test_decoder_layers_are_found_inside_a_lora_model(tiny_model_dir: Path) -> None:
    loaded = load_model(ModelConfig(name=str(tiny_model_dir)), LoraConfig(enabled=True, r=4))
    layers = decoder_layers(loaded.model)
    assert layers == list(loaded.model.get_base_model().model.layers)  # the two blocks, not their sub-modules


def test_a_family_without_decoder_layers_cannot_be_sharded() -> None:
    from transformers import OpenAIGPTConfig, OpenAIGPTLMHeadModel

    model = OpenAIGPTLMHeadModel(OpenAIGPTConfig(vocab_size=64, n_embd=16, n_layer=1, n_head=2, n_positions=32))
    with pytest.raises(ModelError) as info:
        decoder_layers(model)
    assert str(info.value) == ("train.strategy=fsdp cannot shard a 'openai-gpt' model: transformers names no decoder "
                               "layer class for it (_no_split_modules); train it with train.strategy=ddp")


def test_base_identity_hashes_the_model_config(tiny_model_dir: Path) -> None:
    identity = base_identity(ModelConfig(name=str(tiny_model_dir)))
    expected = hashlib.sha256((tiny_model_dir / "config.json").read_bytes()).hexdigest()
    assert identity == {"name": str(tiny_model_dir), "path": str(tiny_model_dir.resolve()), "config_sha256": expected}
    assert base_identity(ModelConfig())["name"] == "codex-tiny"


def test_codex_tiny_is_a_small_llama_loadable_with_from_pretrained() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert (BUILTIN_DIR / "model.safetensors").stat().st_size <= 10_000_000
    model = AutoModelForCausalLM.from_pretrained(BUILTIN_DIR)
    tokenizer = AutoTokenizer.from_pretrained(BUILTIN_DIR)
    assert model.config.model_type == "llama"
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.pad_token == "<|pad|>"
    assert json.loads((BUILTIN_DIR / "generation_config.json").read_text())["eos_token_id"] == tokenizer.eos_token_id


@pytest.fixture(scope="module")
def codex_tiny_tokenizer():
    return load_tokenizer(ModelConfig())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())
def test_codex_tiny_tokenizer_round_trips_any_text(codex_tiny_tokenizer, text: str) -> None:
    ids = codex_tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert codex_tiny_tokenizer.decode(ids) == text


@pytest.mark.parametrize("text", [
    pytest.param("def f(x):\n\treturn x  # café ☕ 🤖\r\n", id="code-unicode-crlf"),
    pytest.param("\x00\x7f\u200b\ufeff  trailing  ", id="controls-zero-width"),
    pytest.param("a<|endoftext|>b", id="special-token-text"),
])
def test_codex_tiny_tokenizer_round_trips_edge_cases(codex_tiny_tokenizer, text: str) -> None:
    ids = codex_tiny_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert codex_tiny_tokenizer.decode(ids) == text


def test_dtype_is_applied(tiny_model_dir: Path) -> None:
    cfg = replace(ModelConfig(name=str(tiny_model_dir)), dtype="bfloat16")
    assert next(load_model(cfg, LoraConfig()).model.parameters()).dtype == torch.bfloat16


def test_codex_tiny_weights_are_the_documented_ones() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "codex-tiny.md").read_text(encoding="utf-8")
    for name in ("model.safetensors", "config.json", "tokenizer.json", "generation_config.json"):
        digest = hashlib.sha256((BUILTIN_DIR / name).read_bytes()).hexdigest()
        assert f"| `{name}` | `{digest}` |" in docs, f"docs/codex-tiny.md does not list the sha256 of {name}"


def test_codex_tiny_is_a_pretrained_python_model() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(BUILTIN_DIR).eval()
    tokenizer = AutoTokenizer.from_pretrained(BUILTIN_DIR)

    def loss(text: str) -> float:
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            return model(input_ids=ids, labels=ids).loss.item()

    code = ("def moving_average(values, window):\n    \"\"\"Return the moving averages of values.\"\"\"\n"
            "    result = []\n    total = 0\n    for index, value in enumerate(values):\n        total += value\n"
            "        if index >= window:\n            total -= values[index - window]\n"
            "        if index >= window - 1:\n            result.append(total / window)\n    return result\n")
    prose = "The quick brown fox jumps over the lazy dog while the band plays jazz in the park."
    # An untrained model scores ln(4096) = 8.3 nats/token; this one has learned Python, not English.
    assert loss(code) < 4.5 < loss(prose)


def test_missing_model_through_the_installed_codex(tmp_path: Path) -> None:
    from conftest import run_codex

    result = run_codex("train", "--lora", "model.name=acme/no-such-model", cwd=tmp_path)
    cache = Path.home() / ".cache" / "huggingface" / "hub"
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"codex: error: model 'acme/no-such-model' not found: no local directory 'acme/no-such-model' and no copy "
        f"in the Hugging Face cache ({cache}); set model.name to a local model directory or to 'codex-tiny', "
        "download it once (huggingface-cli download acme/no-such-model), or set model.allow_download=true\n"
    )


def test_corrupt_weights_are_a_one_line_model_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])  # header promises more data than the file holds
    with pytest.raises(ModelError) as info:
        load_model(ModelConfig(name=str(broken)), LoraConfig())
    message = str(info.value)
    assert message.startswith(f"cannot load model '{broken}' from {broken} (")
    assert message.endswith("); check that it is a causal language model saved with save_pretrained")
    assert "\n" not in message
