"""``codex ckpt export``: standalone Hugging Face directories that load without codex."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ckpt_fixtures import codex_logits, make_checkpoint, plain_transformers_logits

from codex_cli.checkpoint import layout
from codex_cli.checkpoint.export import export_checkpoint
from codex_cli.config import ModelConfig
from codex_cli.errors import CheckpointError, UsageError

PROMPT = "def add(a, b):"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("ckpts")
    make_checkpoint(tiny_model_dir, root, "epoch-0001", kind="lora", step=4)
    make_checkpoint(tiny_model_dir, root, "epoch-0002", kind="full", step=8, latest=False)
    return root


def test_exports_load_with_plain_transformers(ckpts: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    lora, full = ckpts / "epoch-0001", ckpts / "epoch-0002"
    results = {
        "adapter": export_checkpoint(lora, tmp_path / "adapter", merge=False, model_cfg=ModelConfig()),
        "merged": export_checkpoint(lora, tmp_path / "merged", merge=True, model_cfg=ModelConfig()),
        "full": export_checkpoint(full, tmp_path / "full", merge=False, model_cfg=ModelConfig()),
    }
    assert {k: r.layout for k, r in results.items()} == {"adapter": "base+adapter", "merged": "lora-merged",
                                                         "full": "full"}
    assert results["adapter"].files == ["adapter_config.json", "adapter_model.safetensors", "config.json",
                                        "generation_config.json", "model.safetensors", "tokenizer.json",
                                        "tokenizer_config.json"]
    assert "adapter_config.json" not in results["merged"].files and "model.safetensors" in results["merged"].files
    jobs = {"auto": {k: r.out for k, r in results.items()},
            "peft": {"peft-on-checkpoint": [str(tiny_model_dir), str(lora)]}}
    out = plain_transformers_logits(jobs, PROMPT, tmp_path)
    assert out["codex_cli imported"] is False
    expected_lora, expected_full = codex_logits(lora, PROMPT), codex_logits(full, PROMPT)
    for key in ("adapter", "merged", "peft-on-checkpoint"):
        assert out[key] == pytest.approx(expected_lora, abs=1e-5), key
    assert out["full"] == pytest.approx(expected_full, abs=1e-6)
    assert out["adapter"] != pytest.approx(out["full"], abs=1e-3)


def test_full_export_copies_files_byte_for_byte(ckpts: Path, tmp_path: Path) -> None:
    result = export_checkpoint(ckpts / "epoch-0002", tmp_path / "out", merge=False, model_cfg=ModelConfig())
    assert result.files == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                            "tokenizer_config.json"]
    for name in result.files:
        assert (tmp_path / "out" / name).read_bytes() == (ckpts / "epoch-0002" / name).read_bytes()


def test_export_into_empty_directory_and_latest(ckpts: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    result = export_checkpoint(ckpts, tmp_path / "out", merge=False, model_cfg=ModelConfig())
    assert result.source == str(ckpts / "epoch-0001") and result.layout == "base+adapter"


def test_merge_of_a_full_checkpoint_is_refused(ckpts: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        export_checkpoint(ckpts / "epoch-0002", tmp_path / "out", merge=True, model_cfg=ModelConfig())
    assert str(err.value) == (f"--merge applies to LoRA checkpoints and '{ckpts / 'epoch-0002'}' is a full checkpoint; "
                              "export it without --merge")
    assert os.listdir(tmp_path) == []


def test_existing_target_is_refused(ckpts: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(UsageError) as err:
        export_checkpoint(ckpts / "epoch-0001", tmp_path / "out", merge=False, model_cfg=ModelConfig())
    assert str(err.value) == (f"export target '{tmp_path / 'out'}' already exists and is not an empty directory; "
                              "choose a new path")
    assert os.listdir(tmp_path / "out") == ["keep.txt"]


def test_corrupt_checkpoint_is_not_exported(ckpts: Path, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(ckpts / "epoch-0002", tmp_path / "bad"))
    data = bytearray((bad / layout.MODEL_WEIGHTS).read_bytes())
    data[-1] ^= 0x07
    (bad / layout.MODEL_WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors does not match its SHA256"):
        export_checkpoint(bad, tmp_path / "out", merge=False, model_cfg=ModelConfig())
    assert sorted(os.listdir(tmp_path)) == ["bad"]
