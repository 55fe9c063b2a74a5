"""The README's main job, exactly as a new user types it: built-in model, bundled data, no arguments."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import run_codex


@pytest.mark.slow
def test_default_lora_run_then_inspect(tmp_path: Path) -> None:
    train = run_codex("train", "--epochs", "1", "--lora", cwd=tmp_path, env={"COLUMNS": "100"})
    assert train.returncode == 0, train.stderr
    ckpts = tmp_path / "artifacts" / "ckpts"
    latest = json.loads((ckpts / "latest.json").read_text())
    checkpoint = ckpts / latest["checkpoint"]
    assert (checkpoint / "adapter_model.safetensors").is_file()
    assert (checkpoint / "adapter_config.json").is_file()
    meta = json.loads((checkpoint / "metadata.json").read_text())
    assert meta["kind"] == "lora" and meta["epoch"] == 1
    assert meta["base_model"]["name"] == "codex-tiny"
    assert meta["config"]["seed"] == 1234
    events = [json.loads(line) for line in (ckpts / "metrics.jsonl").read_text().splitlines()]
    assert [e["eval_loss"] for e in events if "eval_loss" in e] == [meta["metrics"]["eval_loss"]]
    before, after = map(float, re.search(r"eval loss\W+([0-9.]+) -> ([0-9.]+)", train.stdout).groups())
    assert after < before - 0.5, (before, after)  # the LoRA run visibly lowers the bundled eval loss

    inspect = run_codex("ckpt", "inspect", "artifacts/ckpts", cwd=tmp_path, env={"COLUMNS": "100"})
    assert inspect.returncode == 0, inspect.stderr
    assert f"★ {latest['checkpoint']}" in inspect.stdout

    again = run_codex("train", "--epochs", "1", "--lora", cwd=tmp_path)
    assert again.returncode != 0
    assert again.stderr.count("\n") == 1 and "--resume" in again.stderr
