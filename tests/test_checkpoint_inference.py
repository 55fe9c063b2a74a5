"""Loading checkpoints for inference (what serve and ``codex ckpt load`` use)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ckpt_fixtures import load_tiny, make_checkpoint, write_metadata

from codex_cli.checkpoint import layout
from codex_cli.checkpoint.inference import check_load, load_for_inference
from codex_cli.config import ModelConfig
from codex_cli.errors import CheckpointError

PROMPT = "def add(a, b):"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("ckpts")
    make_checkpoint(tiny_model_dir, root, "epoch-0001", kind="lora", step=4)
    make_checkpoint(tiny_model_dir, root, "epoch-0002", kind="full", step=8)
    return root


@pytest.fixture
def lora_copy(ckpts: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ckpts / "epoch-0001", tmp_path / "epoch-0001"))


def _logits(model, tokenizer):
    import torch

    with torch.no_grad():
        return model(**tokenizer(PROMPT, return_tensors="pt")).logits


def test_lora_checkpoint_is_base_plus_adapter(ckpts: Path, tiny_model_dir: Path) -> None:
    import torch
    from peft import PeftModel

    loaded = load_for_inference(ckpts / "epoch-0001", ModelConfig())
    assert (loaded.kind, loaded.name, loaded.checkpoint_path) == ("lora", "epoch-0001", str(ckpts / "epoch-0001"))
    assert loaded.base == str(tiny_model_dir.resolve()) and loaded.metadata["global_step"] == 4
    assert not loaded.model.training
    expected = PeftModel.from_pretrained(load_tiny(tiny_model_dir), str(ckpts / "epoch-0001")).eval()
    got = _logits(loaded.model, loaded.tokenizer)
    assert torch.equal(got, _logits(expected, loaded.tokenizer))
    assert not torch.allclose(got, _logits(load_tiny(tiny_model_dir), loaded.tokenizer))  # the adapter matters


def test_full_checkpoint_and_latest_of_a_directory(ckpts: Path) -> None:
    import torch

    loaded = load_for_inference(ckpts, ModelConfig())  # latest.json names epoch-0002
    assert (loaded.kind, loaded.name, loaded.base) == ("full", "epoch-0002", None)
    expected = _logits(load_tiny(ckpts / "epoch-0002"), loaded.tokenizer)
    assert torch.equal(_logits(loaded.model, loaded.tokenizer), expected)


def test_plain_model_directory(tiny_model_dir: Path) -> None:
    loaded = load_for_inference(tiny_model_dir, ModelConfig())
    assert (loaded.kind, loaded.checkpoint_path, loaded.metadata) == ("model", None, None)
    assert not loaded.model.training


def test_hash_mismatch_refused_unless_verify_is_off(lora_copy: Path) -> None:
    weights = lora_copy / layout.ADAPTER_WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-2] ^= 0x10
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as err:
        load_for_inference(lora_copy, ModelConfig())
    assert str(err.value) == (f"checkpoint '{lora_copy}' is corrupt: adapter_model.safetensors does not match its "
                              "SHA256 in metadata.json (changed or corrupted); restore it or use another checkpoint")
    assert load_for_inference(lora_copy, ModelConfig(), verify=False).kind == "lora"


def _set_base(checkpoint: Path, **base: object) -> None:
    meta = json.loads((checkpoint / layout.METADATA_FILE).read_text())
    meta["base_model"].update(base)
    write_metadata(checkpoint, meta)


def test_missing_base_model(lora_copy: Path, tmp_path: Path) -> None:
    gone = str(tmp_path / "gone")
    _set_base(lora_copy, name=gone, path=gone)
    with pytest.raises(CheckpointError) as err:
        load_for_inference(lora_copy, ModelConfig())
    assert str(err.value) == (f"base model of checkpoint '{lora_copy}' not found (tried '{gone}'); make that base "
                              "model available again to load this LoRA checkpoint")


def test_changed_base_model(lora_copy: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    _set_base(lora_copy, config_sha256="0" * 64)
    with pytest.raises(CheckpointError) as err:
        load_for_inference(lora_copy, ModelConfig())
    assert str(err.value) == (f"base model '{tiny_model_dir}' is not the one checkpoint '{lora_copy}' was trained on "
                              "(its config.json SHA256 differs); make the original base model available")


def test_adapter_that_does_not_fit_its_base(lora_copy: Path, tmp_path: Path) -> None:
    from conftest import build_tiny_model

    other = build_tiny_model(tmp_path / "wider", hidden=48)
    _set_base(lora_copy, name=str(other), path=str(other), config_sha256=None)
    with pytest.raises(CheckpointError) as err:
        load_for_inference(lora_copy, ModelConfig())
    message = str(err.value)
    assert message.startswith(f"cannot load the adapter of checkpoint '{lora_copy}' onto base model '{other}' (")
    assert message.endswith("); the checkpoint does not fit this base") and "\n" not in message


def test_check_load_reports_one_forward_pass(ckpts: Path) -> None:
    report = check_load(ckpts / "epoch-0001", ModelConfig(), prompt=PROMPT)
    assert report["kind"] == "lora" and report["integrity"] == "verified (sha256)"
    assert report["logits_shape"][0] == 1 and report["logits_shape"][1] == report["prompt_tokens"] > 0
    assert report["logits_shape"][2] == 320 and report["global_step"] == 4
