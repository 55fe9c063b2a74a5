"""The write side of checkpoints: layout, metadata, atomic writes under kill -9, latest.json, retention, metrics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from training_support import make_config, run_training, write_jsonl

from codex_cli.checkpoint import store
from codex_cli.checkpoint.layout import METADATA_FILE, read_latest, verify_checkpoint

METADATA_KEYS = {
    "schema_version", "codex_version", "torch_version", "transformers_version", "peft_version", "created_at", "kind",
    "reason", "base_model", "config", "epoch", "global_step", "samples_seen", "tokens_seen", "metrics", "parameters",
    "files",
}


class SimulatedCrash(BaseException):
    """Stands in for SIGKILL: raised where the process would die, nothing after it runs."""


@pytest.fixture
def crash_at(monkeypatch: pytest.MonkeyPatch):
    def arm(point: str) -> None:
        def die() -> None:
            raise SimulatedCrash(point)

        monkeypatch.setattr(store, "_die", die)
        monkeypatch.setenv(store.CRASH_ENV, point)

    return arm


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "train.jsonl")


def test_lora_checkpoint_is_standard_peft_with_full_metadata(tiny_model_dir: Path, tmp_path: Path, data: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true", "train.max_steps=2",
                      "serve.api_key=sk-test-secret-value-123")
    run_training(cfg)
    ckpt = tmp_path / "ck" / "step-00000002"
    meta = verify_checkpoint(ckpt)
    assert METADATA_KEYS <= meta.keys()
    assert (meta["kind"], meta["reason"], meta["global_step"], meta["epoch"]) == ("lora", "steps", 2, 0)
    assert meta["config"]["serve"]["api_key"] == "[SECRET]" and meta["config"]["lora"]["enabled"] is True
    assert meta["base_model"]["name"] == str(tiny_model_dir) and len(meta["base_model"]["config_sha256"]) == 64
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json",
            "trainer_state/optimizer.safetensors", "trainer_state/rng.safetensors",
            "trainer_state/trainer_state.json"} <= meta["files"].keys()
    assert METADATA_FILE not in meta["files"]
    assert not any(b"sk-test-secret-value-123" in p.read_bytes() for p in (tmp_path / "ck").rglob("*") if p.is_file())
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(ckpt))
    assert any("lora_A" in name for name, _ in model.named_parameters())
    assert AutoTokenizer.from_pretrained(ckpt).decode(
        AutoTokenizer.from_pretrained(ckpt)("x = 1")["input_ids"]) == "x = 1"
    assert json.loads((tmp_path / "ck" / "latest.json").read_text())["checkpoint"] == "step-00000002"


def test_full_checkpoint_loads_with_transformers_alone(tiny_model_dir: Path, tmp_path: Path, data: Path) -> None:
    from transformers import AutoModelForCausalLM

    run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=1"))
    ckpt = tmp_path / "ck" / "step-00000001"
    assert verify_checkpoint(ckpt)["kind"] == "full"
    model = AutoModelForCausalLM.from_pretrained(ckpt)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.equal(model.model.embed_tokens.weight, base.model.embed_tokens.weight)  # it trained


@pytest.mark.parametrize("point", ["write-weights:2", "write-state:2", "before-rename:2", "before-latest:2"])
def test_kill_during_a_write_leaves_latest_on_the_previous_complete_checkpoint(
        tiny_model_dir: Path, tmp_path: Path, data: Path, crash_at, point: str) -> None:
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true", "checkpoint.every_steps=1")
    crash_at(point)
    with pytest.raises(SimulatedCrash):
        run_training(cfg)
    assert read_latest(tmp_path / "ck") == "step-00000001"
    verify_checkpoint(tmp_path / "ck" / "step-00000001")


def test_kill_during_the_first_write_leaves_no_latest(tiny_model_dir: Path, tmp_path: Path, data: Path,
                                                      crash_at) -> None:
    crash_at("before-rename")
    with pytest.raises(SimulatedCrash):
        run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=1"))
    assert read_latest(tmp_path / "ck") is None
    assert [p.name for p in (tmp_path / "ck").iterdir() if p.is_dir()] == [f".tmp-step-00000001-{os.getpid()}"]


def _fake_checkpoint(ckpt_dir: Path, name: str, step: int, eval_loss: float | None) -> None:
    (ckpt_dir / name).mkdir(parents=True)
    meta = {"schema_version": 1, "kind": "lora", "files": {}, "global_step": step,
            "created_at": f"2026-01-01T00:00:{step:02d}Z", "metrics": {"eval_loss": eval_loss}}
    (ckpt_dir / name / METADATA_FILE).write_text(json.dumps(meta))


@pytest.mark.parametrize(("keep_best", "left"), [
    pytest.param(False, ["epoch-0003", "epoch-0004"], id="keep-last-2"),
    pytest.param(True, ["epoch-0001", "epoch-0003", "epoch-0004"], id="keep-last-2-and-best"),
])
def test_retention_keeps_the_newest_and_the_best(tmp_path: Path, keep_best: bool, left: list[str]) -> None:
    for step, loss in ((1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)):
        _fake_checkpoint(tmp_path, f"epoch-{step:04d}", step, loss)
    store.write_latest(tmp_path, "epoch-0004", global_step=4, epoch=4)
    store.apply_retention(tmp_path, keep_last=2, keep_best=keep_best)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == left


def test_retention_runs_after_each_save_and_never_drops_latest(tiny_model_dir: Path, tmp_path: Path,
                                                               data: Path) -> None:
    cfg = make_config(tiny_model_dir, data, tmp_path / "ck", "lora.enabled=true", "checkpoint.every_steps=1",
                      "train.max_steps=5", "checkpoint.keep_last=2")
    run_training(cfg)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir() if p.is_dir()) == ["step-00000004", "step-00000005"]
    assert read_latest(tmp_path / "ck") == "step-00000005"


def test_truncate_metrics_drops_lines_after_the_checkpoint_and_a_torn_line(tmp_path: Path) -> None:
    for step in (1, 2, 3):
        store.append_metrics(tmp_path, {"step": step, "loss": 1.0})
    with open(tmp_path / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 4, "lo')
    assert store.truncate_metrics(tmp_path, after_step=2) == 2
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_leftover_complete_checkpoint_with_the_same_name_is_replaced(tiny_model_dir: Path, tmp_path: Path,
                                                                       data: Path) -> None:
    stale = tmp_path / "ck" / "step-00000001"
    stale.mkdir(parents=True)
    (stale / "junk").write_text("from a run that died before updating latest.json")
    run_training(make_config(tiny_model_dir, data, tmp_path / "ck", "train.max_steps=1"))
    assert not (stale / "junk").exists()
    verify_checkpoint(stale)


def test_crash_point_is_inert_without_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(store.CRASH_ENV, raising=False)
    store.crash_point("step", 1)  # returns: no env var, no crash
    monkeypatch.setenv(store.CRASH_ENV, "step:2")
    store.crash_point("step", 1)  # another step: no crash
